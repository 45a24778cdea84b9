"""Operations against real servers (issue 21): a backup taken while 16 clients deposit is one point in time and
restores exactly what was acknowledged before it began (nothing after, nothing half); a restore is refused while a
server runs; a server takes its scheduled backups; readiness with PostgreSQL gone (a proxy in front of it stopped)
and back, without a restart; the request log with no query string, name or token."""
import asyncio
import sqlite3
import threading
import time
from urllib.parse import urlsplit

from .server import Server, burst
from conftest import drop_postgres_database, new_postgres_database, require_postgres

CLIENTS = 16


def test_a_backup_under_load_restores_exactly_what_was_acknowledged_before_it(tmp_path):
    database, backup = tmp_path / "atm.db", tmp_path / "backup.db"
    acked: list[tuple[float, float, str, int]] = []  # (sent at, acknowledged at, account, amount cents)
    lock, stop = threading.Lock(), threading.Event()
    with Server(database, workers=2) as server:
        for n in range(40):  # before: all acknowledged before the backup begins
            assert server.request("POST", f"/accounts/PRE{n % 8}/deposit", {"amount": 1})[0] == 200

        def client(n):
            conn, made = server.connection(timeout=30), 0
            deadline = time.monotonic() + 60
            while not stop.is_set() and time.monotonic() < deadline and made < 2000:
                cents = made + 1  # each deposit of this client's account is told apart by its amount
                sent = time.monotonic()
                status, _ = server.request("POST", f"/accounts/L{n}/deposit", {"amount": cents / 100}, conn=conn,
                                           timeout=30)
                if status == 200:
                    with lock:
                        acked.append((sent, time.monotonic(), f"L{n}", cents))
                made += 1
            conn.close()

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(2)  # under way
        began = time.monotonic()
        done = server.flask("backup", "--to", str(backup))
        ended = time.monotonic()
        time.sleep(2)  # more deposits after the backup
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
        assert done.returncode == 0, done.stderr
        assert "verified" in done.stdout
        refused = server.flask("restore", "--from", str(backup))  # the server still holds the ledger
        assert refused.returncode != 0 and "stop every server first" in refused.stderr
    with sqlite3.connect(database) as live:
        live_rows = live.execute("SELECT id, hash FROM journal ORDER BY id").fetchall()
    restorer = Server(database)
    restored = restorer.flask("restore", "--from", str(backup))
    assert restored.returncode == 0, restored.stderr
    assert restorer.flask("verify").returncode == 0
    with sqlite3.connect(database) as ledger:
        rows = ledger.execute("SELECT id, hash FROM journal ORDER BY id").fetchall()
        in_backup = {(number, cents) for number, cents in ledger.execute(
            "SELECT account_number, amount_cents FROM journal WHERE account_number LIKE 'L%' AND kind = 'deposit'")}
        (pre,), = ledger.execute("SELECT COUNT(*) FROM journal WHERE account_number LIKE 'PRE%'").fetchall()
    assert rows == live_rows[:len(rows)]  # one point in time: a prefix of the ledger, hashes and all
    assert pre == 40
    before = {(number, cents) for sent, at, number, cents in acked if at < began}
    after = {(number, cents) for sent, at, number, cents in acked if sent > ended}
    assert before and after and before <= in_backup and not (after & in_backup)
    assert len(acked) > len(before) + len(after)  # and some were in flight while it ran: in or out, never half


def test_a_server_takes_its_scheduled_backups_one_worker_at_a_time(tmp_path):
    folder = tmp_path / "backups"
    with Server(tmp_path / "atm.db", workers=2, BACKUP_DIR=str(folder), BACKUP_EVERY_MINUTES="1",
                BACKUP_KEEP="3") as server:
        assert server.request("POST", "/accounts/S1/deposit", {"amount": 1})[0] == 200
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not list(folder.glob("atm-*.db")):
            time.sleep(0.2)
        time.sleep(1)
        made = sorted(folder.glob("atm-*.db"))
        assert len(made) == 1, (made, server.output())  # taken at start, by one of the two workers
        verified = server.flask("restore", "--from", str(made[0]))  # refused: the server runs; but it verifies
        assert "stop every server first" in verified.stderr
        assert "scheduled backup failed" not in server.output()


class Proxy:
    """A TCP proxy on a loopback port in front of PostgreSQL, in a thread of its own: stop() is the server gone
    (its connections cut, new ones refused), start() is it back."""

    def __init__(self, target_port: int):
        self.target_port, self.port = target_port, None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server, self.writers = None, set()

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        self.writers |= {client_writer, upstream_writer}
        await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))

    def start(self):
        async def serve():
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port or 0)
            self.port = self.server.sockets[0].getsockname()[1]
        asyncio.run_coroutine_threadsafe(serve(), self.loop).result(10)

    def stop(self):
        async def down():
            self.server.close()
            for writer in list(self.writers):
                writer.transport.abort()
            self.writers.clear()
        asyncio.run_coroutine_threadsafe(down(), self.loop).result(10)


def test_readiness_follows_postgresql_gone_and_back_without_a_restart(tmp_path):
    require_postgres()
    url = new_postgres_database()
    parts = urlsplit(url)
    proxy = Proxy(parts.port or 5432)
    proxy.start()
    try:
        through = parts._replace(netloc=f"{parts.username}@127.0.0.1:{proxy.port}").geturl()
        with Server(through, workers=1, log_path=tmp_path / "server.log") as server:
            assert server.request("GET", "/health/ready") == (200, {"database": "ok", "migrations": "current"})
            proxy.stop()
            started = time.monotonic()
            status, body = server.request("GET", "/health/ready")
            assert status == 503 and body["database"] in ("unreachable", "no answer within 1 s"), body
            assert time.monotonic() - started < 2
            assert server.request("GET", "/is_alive") == (200, {"active": "true"})  # the process answers
            proxy.start()  # on the same port
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and server.request("GET", "/health/ready")[0] != 200:
                time.sleep(0.2)
            assert server.request("GET", "/health/ready") == (200, {"database": "ok", "migrations": "current"})
            assert server.request("POST", "/accounts/P1/deposit", {"amount": 1})[0] == 200
    finally:
        proxy.stop()
        drop_postgres_database(url)


def test_readiness_follows_the_sqlite_file_moved_and_back(tmp_path):
    database = tmp_path / "atm.db"
    with Server(database, workers=2) as server:
        assert server.request("GET", "/health/ready")[0] == 200
        database.rename(tmp_path / "away.db")
        started = time.monotonic()
        assert burst(4, lambda n: server.request("GET", "/health/ready")[0]) == [503] * 4  # every worker sees it
        assert time.monotonic() - started < 2
        (tmp_path / "away.db").rename(database)
        assert burst(4, lambda n: server.request("GET", "/health/ready")[0]) == [200] * 4


def test_the_request_log_has_patterns_ids_and_times_never_a_query_name_or_token(tmp_path):
    with Server(tmp_path / "atm.db", workers=1) as server:
        server.request("GET", "/accounts/HOLLYHOLDER/balance?secret=1")
        server.request("POST", "/accounts/A1/deposit", {"amount": 3})
        server.request("GET", "/teller/accounts/A1?who=Holly")
        deadline = time.monotonic() + 5  # each line is written by the log's own thread, a moment after the answer
        while time.monotonic() < deadline and " GET /teller/accounts/<number> " not in server.output():
            time.sleep(0.05)
        log = server.output()
    lines = [line for line in log.splitlines() if " id=" in line]
    assert any(" GET /accounts/<number>/balance 422 " in line for line in lines), lines  # ?secret=1: unknown
    assert any(" POST /accounts/<number>/deposit 200 " in line for line in lines)
    assert any(" GET /teller/accounts/<number> 303 " in line for line in lines)
    for forbidden in ("HOLLYHOLDER", "secret=", "who=", "Holly", server.token):
        assert forbidden not in log, forbidden
