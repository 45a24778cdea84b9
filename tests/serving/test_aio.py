"""The process loop (atm_web/serving/aio.py) at interpreter exit: what was opened on it is closed, and its thread ends.

A uvloop loop left running in a daemon thread while Python finalizes can crash the process (CI saw
`flask --app atm_web init-db` on PostgreSQL end with SIGSEGV, -11, after printing its result); how often is
down to timing, so the test checks the cause: at the very end of the exit, the loop's thread is gone and the
database is closed.
"""
import subprocess
import sys
import textwrap

from conftest import ROOT

AT_EXIT = textwrap.dedent("""
    import atexit, sys, threading

    def report():  # registered before atm_web is imported, so it runs after atm_web's own exit handler
        loops = [thread.name for thread in threading.enumerate() if thread.name == "atm-web-loop"]
        print("loop thread:", "running" if loops else "ended")
        print("database:", "closed" if database._writer is None else "open")

    atexit.register(report)
    from atm_web import create_app
    where = sys.argv[1]
    key = "DATABASE_URL" if where.startswith("postgresql://") else "DB_PATH"
    database = create_app({"SECRET_KEY": "exit", "PIN_KEY": "exit-pin-key-0123456789", key: where}).extensions["atm_db"]
    assert database._writer is not None
    print("opened")
""")


def test_at_exit_the_database_is_closed_and_the_loop_thread_ends(database):
    done = subprocess.run([sys.executable, "-c", AT_EXIT, str(database)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["opened", "loop thread: ended", "database: closed"], done.stderr
