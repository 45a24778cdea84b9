"""Several builds of the app side by side, beside the original design, in ONE run of alternating rounds: how a
change is shown to be no slower than what it replaced (absolute figures drift on this shared machine; ratios
measured in one run do not).

    .venv/bin/python tests/bench/compare.py NAME=CHECKOUT[@postgresql][+VARIABLE=VALUE...] ...
    e.g. git worktree add /tmp/before HEAD~3
         .venv/bin/python tests/bench/compare.py before=/tmp/before now=. now-pg=.@postgresql \
             pg-1=.@postgresql+WEB_CONCURRENCY=1

Each app is started with its checkout's own Procfile `web:` command (on a loopback port, 2 workers), on a
temporary SQLite file, or with @postgresql on a new database of the server DATABASE_URL names (default
postgresql://postgres@127.0.0.1:5432/test), dropped afterwards. Knobs: BENCH_SECONDS (10), BENCH_ROUNDS (3),
BENCH_CONNECTIONS (16,64), BENCH_SCENARIOS (as for bench.py; default the two deposit scenarios).
"""
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench.bench import CONNECTIONS, ROUNDS, SCENARIOS, SECONDS, Reference, postgres_database, run_load
from tests.e2e.server import free_port

VENV_BIN = Path(sys.executable).parent
WANTED = list(SCENARIOS) if os.environ.get("BENCH_SCENARIOS") else ["deposit, 10k accounts", "deposit, one hot account"]


class Build:
    """One checkout's app, started as its Procfile says."""

    def __init__(self, spec: str, tmp: str):
        self.name, _, where = spec.partition("=")
        where, *settings = where.split("+")
        root, _, engine = where.partition("@")
        self.root = Path(root).resolve()
        self.port = free_port()
        env = {**os.environ, "PORT": str(self.port), "SECRET_KEY": "compare",
               "PIN_KEY": "compare-pin-key-0123456789", "WEB_CONCURRENCY": "2",
               "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        env.pop("DATABASE_URL", None)
        env.update(setting.split("=", 1) for setting in settings)
        self.drop = lambda: None
        if engine == "postgresql":
            env["DATABASE_URL"], self.drop = postgres_database(
                os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
        else:
            env["DB_PATH"] = f"{tmp}/{self.name}.db"
        web = next(line for line in (self.root / "Procfile").read_text().splitlines() if line.startswith("web:"))
        command = web[4:].strip().replace("0.0.0.0", "127.0.0.1")
        self.proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=self.root, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self._wait()
        made = subprocess.run([str(VENV_BIN / "flask"), "--app", "atm_web", "create-token", "compare"],
                              cwd=self.root, env=env, capture_output=True, text=True, timeout=60)
        self.token = made.stdout.strip().splitlines()[-1]

    def _wait(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/is_alive")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start")

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=15)
        self.drop()


def main(specs: list[str]) -> None:
    print(f"{ROUNDS} rounds x {SECONDS}s per cell, alternating; medians; deposits carry a token", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        builds = [Build(spec, tmp) for spec in specs]
        reference = Reference(tmp).__enter__()
        reference.token = ""
        servers = {build.name: build for build in builds} | {"reference": reference}
        try:
            for scenario in WANTED:
                assert scenario in SCENARIOS, scenario
                for connections in CONNECTIONS:
                    rates: dict[str, list[float]] = {}
                    for server in servers.values():  # warm-up
                        run_load(server.port, scenario, connections, 1, server.token)
                    for round_ in range(ROUNDS):
                        order = list(servers.items())
                        for name, server in (order if round_ % 2 == 0 else order[::-1]):
                            cell = run_load(server.port, scenario, connections, SECONDS, server.token)
                            rates.setdefault(name, []).append(cell["rps"])
                    base = statistics.median(rates["reference"])
                    print(f"{scenario}, c={connections}: " + ", ".join(
                        f"{name} {statistics.median(r):.0f} req/s ({statistics.median(r) / base:.2f}x)"
                        for name, r in rates.items()), flush=True)
        finally:
            for build in builds:
                build.stop()
            reference.__exit__(None, None, None)


if __name__ == "__main__":
    main(sys.argv[1:])
