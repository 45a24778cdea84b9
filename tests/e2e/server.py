"""Start the real server the way the Procfile does, on a free loopback port, and talk HTTP to it."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def burst(count, work, timeout: float = 120):
    """Run work(n) on `count` threads released together; their results in order (an exception's repr for a
    call that raised, None for one still running after the timeout), so an assertion on them shows what
    went wrong."""
    results, start = [None] * count, threading.Barrier(count, timeout=30)

    def run(n):
        start.wait()
        try:
            results[n] = work(n)
        except Exception as error:
            results[n] = repr(error)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results


def procfile_command() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            # Tests only ever listen on loopback.
            return line[len("web:"):].strip().replace("0.0.0.0", "127.0.0.1")
    raise RuntimeError("Procfile has no web: line")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The Procfile's web process serving the app on a test database (a SQLite file's path, or a PostgreSQL
    database's URL); a context manager. Its output goes to log_path (default: beside the SQLite file)."""

    def __init__(self, database, workers: int | None = None, log_path=None, **env):
        self.port = free_port()
        location = str(database)
        self.env = {**os.environ, "PORT": str(self.port), "SECRET_KEY": "e2e-secret",
                    "PIN_KEY": "e2e-pin-key-0123456789",
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.env.pop("DATABASE_URL", None)
        if location.startswith("postgresql://"):
            self.env["DATABASE_URL"] = location
            assert log_path is not None, "a server on PostgreSQL needs a log_path"
        else:
            self.env["DB_PATH"] = location
        self.env.update(env)
        if workers is not None:
            self.env["WEB_CONCURRENCY"] = str(workers)
        self.log_path = Path(log_path) if log_path else Path(location).with_suffix(".server.log")
        self.proc = None
        self.token = None

    def flask(self, *args, input_text: str | None = None) -> subprocess.CompletedProcess:
        """Run `flask --app atm_web ARGS` on this server's database, as an operator would."""
        return subprocess.run([sys.executable, "-m", "flask", "--app", "atm_web", *args], cwd=ROOT, env=self.env,
                              input=input_text or "", capture_output=True, text=True, timeout=60)

    def create_token(self, name="e2e", read_only=False) -> str:
        """A new token from the CLI (its last line), used by request() from now on."""
        done = self.flask("create-token", name, *(["--read-only"] if read_only else []))
        assert done.returncode == 0, done.stderr
        self.token = done.stdout.strip().splitlines()[-1]
        return self.token

    def start(self, timeout: float = 30):
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (open while the server runs; stop() closes it)
        self.proc = subprocess.Popen(["bash", "-c", f"exec {procfile_command()}"], cwd=ROOT, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.output()}")
            try:
                if self.request("GET", "/is_alive", timeout=2)[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not answer in {timeout}s: {self.output()}")

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        if self.proc:
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def __enter__(self):
        self.start()
        if self.token is None:
            self.create_token()
        return self

    def __exit__(self, *exc):
        self.stop()

    def connection(self, timeout: float = 15) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, conn=None, timeout: float = 15, headers=None):
        """(status, parsed JSON or text) over conn (kept alive) or a new connection."""
        own = conn is None
        conn = conn or self.connection(timeout)
        try:
            data = json.dumps(body) if body is not None else None
            hdrs = {"Content-Type": "application/json"} if data is not None else {}
            if self.token:
                hdrs["Authorization"] = f"Bearer {self.token}"
            conn.request(method, path, body=data, headers={**hdrs, **(headers or {})})
            response = conn.getresponse()
            raw = response.read().decode()
            kind = response.getheader("Content-Type", "")
            return response.status, (json.loads(raw) if kind.startswith("application/json") else raw)
        finally:
            if own:
                conn.close()


def _cookies(response, jar: dict) -> str:
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, value = header.split(";")[0].partition("=")
        jar[name.strip()] = value
    return "; ".join(f"{k}={v}" for k, v in jar.items())


CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def logged_in(server, name: str, password: str, page: str = "/") -> tuple[str, str]:
    """(cookie, csrf token) of a browser session of this teller, after a real login: the token of `page`'s forms."""
    conn, jar = server.connection(), {}
    conn.request("GET", "/login")
    answer = conn.getresponse()
    html = answer.read().decode()
    cookie = _cookies(answer, jar)
    csrf = CSRF_FIELD.search(html).group(1)
    conn.request("POST", "/login", body=urllib.parse.urlencode({"csrf_token": csrf, "username": name,
                                                                "password": password}),
                 headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 303, answer.status
    cookie = _cookies(answer, jar)
    conn.request("GET", page, headers={"Cookie": cookie})
    answer = conn.getresponse()
    html = answer.read().decode()
    conn.close()
    return _cookies(answer, jar), CSRF_FIELD.search(html).group(1)
