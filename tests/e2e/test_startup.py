"""Start-up through the Procfile's command: a bad configuration is one line naming the variable and a non-zero
exit status, before any worker starts; a worker that fails makes the whole command fail."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .server import ROOT, free_port, procfile_command


def start(tmp_path, **env) -> subprocess.CompletedProcess:
    environ = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "HOME": str(tmp_path), "PORT": str(free_port()), "DB_PATH": str(tmp_path / "atm.db"),
               "SECRET_KEY": "x", "PIN_KEY": "startup-pin-key-0123456789", **env}
    return subprocess.run(["bash", "-c", f"exec {procfile_command()}"], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("env, names", [
    ({"MAX_DEBT": "abc"}, "MAX_DEBT"),
    ({"DATABASE_URL": "postgresql://bank:s3cret@127.0.0.1:1/atm"}, "DATABASE_URL"),  # nothing listens on port 1
    ({"DATABASE_URL": "postgres://bank:s3cret@127.0.0.1:5432/no_such_database_here"}, "DATABASE_URL"),
    ({"DATABASE_URL": "mysql://bank:s3cret@db.example/atm"}, "DATABASE_URL"),
    ({"DYNO": "web.1"}, "DATABASE_URL"),
])
def test_a_bad_configuration_is_one_line_and_a_failing_exit_status(tmp_path, env, names):
    done = start(tmp_path, **env)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith(f"atm-web: configuration error: {names}"), done.stderr
    assert "s3cret" not in done.stderr + done.stdout
    assert not (tmp_path / "atm.db").exists() or env.get("DATABASE_URL", "").startswith("postgres")


def test_a_worker_that_fails_to_start_fails_the_command(tmp_path):
    """hypercorn's own run loop reports 0 here (hypercorn#269); ours passes the worker's status on."""
    code = ("import sys; sys.path.insert(0, 'tests/e2e'); from atm_web.serving.serve import run_hypercorn; "
            f"sys.exit(run_hypercorn('failing_app:app', ['--bind', '127.0.0.1:{free_port()}', '--workers', '2']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])
