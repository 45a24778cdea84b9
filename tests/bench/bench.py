"""`make bench`: the app under hypercorn as the Procfile runs it, beside the original API's design.

The app's ledger is a SQLite file, or, when DATABASE_URL names a PostgreSQL server, a new database created on that
server for the run (and dropped after it). Load comes from a second process: wrk when installed, else a bounded
asyncio client. Each scenario runs at 16 and 64 connections, in BENCH_ROUNDS rounds alternating app and reference;
medians and the app/reference ratio are printed (absolute figures drift on a shared machine, ratios measured in one
run do not)."""
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.e2e.server import ROOT, Server, free_port

SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "16,64").split(",")]
TIMEOUT_S = 2
REFERENCE = ROOT.parent / "shared" / "bench" / "run-reference"
ACCOUNTS = 10_000

ALL_SCENARIOS = {
    # name: (method, path template, body); {n} is a random account of ACCOUNTS
    "deposit, 10k accounts": ("POST", "/accounts/B{n}/deposit", '{"amount": 1.25}'),
    "deposit, one hot account": ("POST", "/accounts/HOT/deposit", '{"amount": 1.25}'),
    "balance read": ("GET", "/accounts/B{n}/balance", None),
    "is_alive": ("GET", "/is_alive", None),
}
# BENCH_SCENARIOS="10k;hot" (names or parts of names, separated by ";") runs only those; default: all
SCENARIOS = {name: spec for name, spec in ALL_SCENARIOS.items()
             if not os.environ.get("BENCH_SCENARIOS")
             or any(word.strip() in name for word in os.environ["BENCH_SCENARIOS"].split(";"))}

LUA = """
math.randomseed(%(seed)d)
local method, template, body = "%(method)s", "%(path)s", %(body)s
local headers = {}
if "%(token)s" ~= "" then headers["Authorization"] = "Bearer %(token)s" end
if body then headers["Content-Type"] = "application/json" end
request = function()
  local path = template:gsub("{n}", tostring(math.random(1, %(accounts)d)))
  return wrk.format(method, path, headers, body)
end
"""


def run_wrk(port, scenario, connections, seconds, token=""):
    method, path, body = SCENARIOS[scenario]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % {"seed": time.time_ns() % 100000, "method": method, "path": path,
                            "body": f"'{body}'" if body else "nil", "accounts": ACCOUNTS,
                            "token": token})
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", f"--timeout={TIMEOUT_S}s",
                          "--latency", "-s", script.name, f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    os.unlink(script.name)

    def latency(label):
        match = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 0.001, "ms": 1, "s": 1000}[unit]

    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": latency("50"),
            "p99": latency("99"), "errors": errors + (int(non2xx.group(1)) if non2xx else 0)}


async def _python_load(port, scenario, connections, seconds, token=""):
    """Bounded keep-alive HTTP/1.1 client: `connections` loops for `seconds`, each request under TIMEOUT_S."""
    import random
    method, path, body = SCENARIOS[scenario]
    latencies, errors = [], 0
    end = time.monotonic() + seconds

    async def worker():
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < end:
                target = path.replace("{n}", str(random.randint(1, ACCOUNTS)))
                payload = body.encode() if body else b""
                head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(payload)}\r\n"
                head += f"Authorization: Bearer {token}\r\n" if token else ""
                head += "Content-Type: application/json\r\n\r\n" if body else "\r\n"
                start = time.monotonic()
                writer.write(head.encode() + payload)
                try:
                    status_line = await asyncio.wait_for(reader.readline(), TIMEOUT_S)
                    length = 0
                    while (line := await asyncio.wait_for(reader.readline(), TIMEOUT_S)) not in (b"\r\n", b""):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    await asyncio.wait_for(reader.readexactly(length), TIMEOUT_S)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    errors += 1
                    return
                latencies.append((time.monotonic() - start) * 1000)
                if not status_line.startswith(b"HTTP/1.1 2"):
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")  # noqa: E731
    return {"rps": len(latencies) / seconds, "p50": pick(0.5), "p99": pick(0.99), "errors": errors}


def run_load(port, scenario, connections, seconds, token=""):
    """Every request carries the app's API token (the reference ignores it)."""
    if shutil.which("wrk"):
        return run_wrk(port, scenario, connections, seconds, token)
    return asyncio.run(_python_load(port, scenario, connections, seconds, token))


class Reference:
    def __init__(self, db_dir):
        self.port = free_port()
        self.db_dir = db_dir

    def __enter__(self):
        env = {**os.environ, "DB_PATH": str(Path(self.db_dir) / "reference.db")}
        self.proc = subprocess.Popen([str(REFERENCE), str(self.port)], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        import http.client
        deadline = time.monotonic() + 300  # the first run builds the reference's venv
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/is_alive")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.5)
        raise RuntimeError("the reference server did not start")

    def __exit__(self, *exc):
        os.killpg(self.proc.pid, 15)
        self.proc.wait(timeout=15)


def postgres_database(server_url: str):
    """A new database on the server of server_url, for this run; (its URL, a function that drops it)."""
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    url = server_url.replace("postgres://", "postgresql://", 1)
    name = f"atm_bench_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")

    def drop():
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}")), drop


def main():
    tool = "wrk -t2" if shutil.which("wrk") else "python asyncio client (install wrk for lower client overhead)"
    server_url = os.environ.get("DATABASE_URL", "")
    print(f"load: {tool}; {ROUNDS} rounds x {SECONDS}s per cell; timeout {TIMEOUT_S}s; medians shown; "
          f"app ledger on {'PostgreSQL' if server_url else 'SQLite'}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        where, drop = (postgres_database(server_url) if server_url else (Path(tmp) / "atm.db", lambda: None))
        app = Server(where, log_path=Path(tmp) / "server.log").start()
        token = app.create_token("bench")
        servers = {"app": app}
        try:
            if REFERENCE.exists():
                servers["reference"] = Reference(tmp).__enter__()
            results = {}
            for scenario in SCENARIOS:
                for connections in CONNECTIONS:
                    for srv in servers.values():  # warm-up
                        run_load(srv.port, scenario, connections, 1, token)
                    for round_ in range(ROUNDS):
                        order = list(servers.items()) if round_ % 2 == 0 else list(servers.items())[::-1]
                        for name, srv in order:
                            cell = run_load(srv.port, scenario, connections, SECONDS, token)
                            results.setdefault((scenario, connections, name), []).append(cell)
                    report_cell(results, scenario, connections, servers)
        finally:
            for name, srv in servers.items():
                srv.__exit__(None, None, None) if name == "reference" else srv.stop()
            drop()


def report_cell(results, scenario, connections, servers):
    medians = {}
    for name in servers:
        runs = results[(scenario, connections, name)]
        medians[name] = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99")}
        medians[name]["errors"] = sum(r["errors"] for r in runs)
        m = medians[name]
        print(f"{scenario:26} c={connections:<3} {name:9} {m['rps']:8.0f} req/s  p50 {m['p50']:7.1f} ms  "
              f"p99 {m['p99']:7.1f} ms  errors {m['errors']}", flush=True)
    if "reference" in medians and medians["reference"]["rps"]:
        ratio = medians["app"]["rps"] / medians["reference"]["rps"]
        print(f"{'':26} c={connections:<3} ratio app/reference: {ratio:.2f}x", flush=True)


if __name__ == "__main__":
    main()
