"""What the Procfile and `make run` start: check the configuration and the database once, then serve with hypercorn.

    python -m atm_web.serving.serve --bind 0.0.0.0:$PORT --workers 2 [other hypercorn options]

Started alone, hypercorn would print a bad value's error once per worker and then exit 0 (its run loop drops the
workers' exit status: hypercorn issue #269), which a platform or a script reads as success. Here the app is made
once before any worker starts: a bad variable or an unreachable database is one line naming it and exit status
2. And should a worker still fail later, its exit status becomes hypercorn's.
"""
import sys

APP = "wsgi:app"
HYPERCORN_DEFAULTS = ["--worker-class", "uvloop"]


def preflight() -> str | None:
    """The configuration error that would stop every worker, or None when the app starts."""
    from atm_web import create_app
    from atm_web.config import ConfigError
    from atm_web.serving import aio
    try:
        app = create_app()
    except ConfigError as error:
        return str(error)
    print(f"atm-web: the ledger is on {app.extensions['atm_db'].describe()}", file=sys.stderr)
    aio.run(app.extensions["atm_db"].close())
    return None


def run_hypercorn(app_path: str, argv: list[str]) -> int:
    """hypercorn's own command line on app_path, its exit status non-zero if any worker's was."""
    import hypercorn.run
    from hypercorn.__main__ import main

    failures = []
    join = getattr(hypercorn.run, "_join_exited", None)
    if join is not None:
        def recording_join(processes):
            status = join(processes)
            if status:
                failures.append(status)
            return status
        hypercorn.run._join_exited = recording_join
    status = main([*HYPERCORN_DEFAULTS, *argv, app_path])
    if status or not failures:
        return status
    return failures[0] if failures[0] > 0 else 1  # a worker killed by a signal has a negative exitcode


def main(argv: list[str] | None = None) -> int:
    problem = preflight()
    if problem is not None:
        print(f"atm-web: configuration error: {problem}", file=sys.stderr)
        return 2
    return run_hypercorn(APP, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
