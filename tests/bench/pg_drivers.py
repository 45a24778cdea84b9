"""asyncpg against psycopg 3 on the ledger's deposit path, in-process, on a scratch schema (how the driver was chosen).

Each driver runs the write paths of the PostgreSQL engine (atm_web/storage/postgresql.py), with one writer
connection per process that commits concurrent deposits together: "batched", the group's deposits as one
post_entries call (migration 0002; what the engine does for deposits and withdrawals), and "group commit", one
transaction per group after the ledger's advisory lock with each deposit the same hash-chained INSERT ... SELECT
as accounts.py's generic path (what the engine does for every other write). And, for comparison, a transaction
per deposit on a pool (after the same lock: without it, concurrent chains fork and the triggers refuse a stale
balance). Each driver also runs as it must behind PgBouncer in transaction mode: no server-side prepared
statements.
Rounds alternate between drivers; the medians are printed as a Markdown table.

    .venv/bin/python tests/bench/pg_drivers.py            # DATABASE_URL, else postgresql://postgres@127.0.0.1/test
Knobs: PGBENCH_SECONDS (5), PGBENCH_ROUNDS (3), PGBENCH_CLIENTS (16,64).
"""
import asyncio
import os
import re
import statistics
import time
from pathlib import Path

import asyncpg
import psycopg
import uvloop

URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1/test").replace("postgres://", "postgresql://")
SECONDS = float(os.environ.get("PGBENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("PGBENCH_ROUNDS", "3"))
CLIENTS = [int(c) for c in os.environ.get("PGBENCH_CLIENTS", "16,64").split(",")]
SCHEMA = "atm_pgbench"
MIGRATIONS = sorted((Path(__file__).resolve().parents[2] / "atm_web/storage/migrations/postgresql").glob("*.sql"))
LOCK_KEY = 7_411_000  # any constant: the group's turn, as the engine takes it

DEPOSIT = """INSERT INTO journal (account_number, kind, amount_cents, balance_after_cents, created_at, actor,
  related_id, memo, hash)
SELECT :n, :kind, :amount, b.after, :now, :actor, CAST(:related AS BIGINT), :memo,
  sha256_hex(coalesce(p.hash, '') || '|' || :n || '|' || :kind || '|' || CAST(CAST(:amount AS BIGINT) AS TEXT)
    || '|' || CAST(b.after AS TEXT) || '|' || :now || '|' || :actor || '|'
    || coalesce(CAST(CAST(:related AS BIGINT) AS TEXT), '') || '|' || :memo)
FROM (SELECT coalesce((SELECT balance_cents FROM accounts WHERE account_number = :n), 0) + :delta AS after) AS b,
     (SELECT (SELECT hash FROM journal WHERE account_number = :n ORDER BY id DESC LIMIT 1) AS hash) AS p
RETURNING id, balance_after_cents"""
NAMES = list(dict.fromkeys(re.findall(r":([a-z]+)", DEPOSIT)))
FOR_ASYNCPG = re.sub(r":([a-z]+)", lambda m: f"${NAMES.index(m.group(1)) + 1}", DEPOSIT)
FOR_PSYCOPG = re.sub(r":([a-z]+)", r"%(\1)s", DEPOSIT)
POST_ENTRIES = ("SELECT entry, outcome, tx_id, balance FROM post_entries({lock}, {a}::text[], {a}::text[], "
                "{a}::bigint[], {a}::bigint[], {a}::text[], {a}::text[], {a}::text[], {a}::text[], {a}::text[], "
                "{a}::text[], {a}::float8[], {a}::float8[])")


def batch_columns(numbers: list[str]) -> list[list]:
    n = len(numbers)
    return [numbers, ["deposit"] * n, [100] * n, [100] * n, ["2026-12-01T00:00:00.000000Z"] * n,
            ["token:bench"] * n, [""] * n, [None] * n, [None] * n, [None] * n, [None] * n, [None] * n]


def params(number: str) -> dict:
    return {"n": number, "kind": "deposit", "amount": 100, "delta": 100, "now": "2026-12-01T00:00:00.000000Z",
            "actor": "token:bench", "related": None, "memo": ""}


class Driver:
    """The few calls the write path needs, for one driver."""

    async def connect(self): ...
    async def execute(self, conn, sql: str, args=None): ...
    async def deposit(self, conn, number: str): ...
    async def close(self, conn): ...


class Asyncpg(Driver):
    """prepared=False: statement_cache_size=0, as behind PgBouncer in transaction mode."""

    def __init__(self, prepared: bool = True):
        self.prepared = prepared
        self.name = "asyncpg" if prepared else "asyncpg, no statement cache"

    async def connect(self):
        return await asyncpg.connect(URL, server_settings={"search_path": SCHEMA},
                                     statement_cache_size=100 if self.prepared else 0)

    async def execute(self, conn, sql, args=None):
        await conn.execute(sql, *(args or ()))

    async def deposit(self, conn, number):
        p = params(number)
        return await conn.fetchrow(FOR_ASYNCPG, *(p[name] for name in NAMES))

    async def post_entries(self, conn, numbers):
        numbered = iter(range(1, 100))
        sql = re.sub(r"\{a\}", lambda _: f"${next(numbered)}", POST_ENTRIES.format(lock=LOCK_KEY, a="{a}"))
        return await conn.fetch(sql, *batch_columns(numbers))

    async def close(self, conn):
        await conn.close()


class Psycopg(Driver):
    """prepared=False: prepare_threshold=None, as behind PgBouncer in transaction mode."""

    def __init__(self, prepared: bool = True):
        self.prepared = prepared
        self.name = "psycopg 3" if prepared else "psycopg 3, no prepared statements"

    async def connect(self):
        return await psycopg.AsyncConnection.connect(URL, autocommit=True, options=f"-c search_path={SCHEMA}",
                                                     prepare_threshold=5 if self.prepared else None)

    async def execute(self, conn, sql, args=None):
        await conn.execute(sql, args)

    async def deposit(self, conn, number):
        cursor = await conn.execute(FOR_PSYCOPG, params(number))
        return await cursor.fetchone()

    async def post_entries(self, conn, numbers):
        cursor = await conn.execute(POST_ENTRIES.format(lock=LOCK_KEY, a="%s"), batch_columns(numbers))
        return await cursor.fetchall()

    async def close(self, conn):
        await conn.close()


class GroupCommit:
    """The engine's write path: deposits that arrive together share one transaction on one connection."""

    def __init__(self, driver: Driver, conn):
        self.driver, self.conn, self.pending, self.task = driver, conn, [], None

    async def deposit(self, number):
        future = asyncio.get_running_loop().create_future()
        self.pending.append((number, future))
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self.drain())
        return await future

    async def drain(self):
        while self.pending:
            batch, self.pending = self.pending[:256], self.pending[256:]
            await self.driver.execute(self.conn, "BEGIN")
            await self.driver.execute(self.conn, f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
            results = [await self.driver.deposit(self.conn, number) for number, _ in batch]
            await self.driver.execute(self.conn, "COMMIT")
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)


class Batched(GroupCommit):
    """The engine's path for deposits: the group's deposits as one post_entries call, its own transaction."""

    async def drain(self):
        while self.pending:
            batch, self.pending = self.pending[:256], self.pending[256:]
            rows = await self.driver.post_entries(self.conn, [number for number, _ in batch])
            for (_, future), row in zip(batch, rows, strict=True):
                future.set_result(row)


class PerTransaction:
    """For comparison: each deposit its own transaction (after the same lock), on a pool of four connections."""

    def __init__(self, driver: Driver, conns):
        self.driver, self.free = driver, asyncio.Queue()
        for conn in conns:
            self.free.put_nowait(conn)

    async def deposit(self, number):
        conn = await self.free.get()
        try:
            await self.driver.execute(conn, "BEGIN")
            await self.driver.execute(conn, f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
            result = await self.driver.deposit(conn, number)
            await self.driver.execute(conn, "COMMIT")
            return result
        finally:
            self.free.put_nowait(conn)


async def reset(admin):
    await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    await admin.execute(f"CREATE SCHEMA {SCHEMA}")
    await admin.execute(f"SET search_path = {SCHEMA}")
    for migration in MIGRATIONS:
        await admin.execute(migration.read_text())
    await admin.execute("UPDATE settings SET max_debt_cents = 100000")


async def measure(driver: Driver, design: str, clients: int, accounts: int) -> tuple[float, float]:
    """(deposits per second, p99 ms) for SECONDS."""
    conns = [await driver.connect() for _ in range(4 if design == "transaction" else 1)]
    path = {"batched": Batched, "group": GroupCommit}.get(design)
    path = path(driver, conns[0]) if path else PerTransaction(driver, conns)
    latencies, deadline = [], time.monotonic() + SECONDS

    async def client(index):
        n = index
        while time.monotonic() < deadline:
            started = time.monotonic()
            await path.deposit(f"B{n % accounts}")
            latencies.append(time.monotonic() - started)
            n += clients

    started = time.monotonic()
    await asyncio.gather(*(client(i) for i in range(clients)))
    elapsed = time.monotonic() - started
    for conn in conns:
        await driver.close(conn)
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(len(latencies) * 0.99)] * 1000


async def main():
    admin = await psycopg.AsyncConnection.connect(URL, autocommit=True)
    drivers = [Asyncpg(), Psycopg(), Asyncpg(prepared=False), Psycopg(prepared=False)]
    designs = ("batched", "group", "transaction")
    scenarios = [(design, accounts, clients) for design in designs for accounts in (10_000, 1) for clients in CLIENTS]
    results: dict = {}
    try:
        for round_number in range(ROUNDS):
            for scenario in scenarios:
                for driver in drivers if round_number % 2 == 0 else drivers[::-1]:
                    await reset(admin)
                    rate, p99 = await measure(driver, scenario[0], scenario[2], scenario[1])
                    results.setdefault((driver.name, *scenario), []).append((rate, p99))
                    print(f"round {round_number + 1} {driver.name:33} {scenario}: {rate:.0f}/s p99 {p99:.1f} ms",
                          flush=True)
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        await admin.close()
    print(f"\nMedians of {ROUNDS} x {SECONDS:.0f} s, deposits/s and p99 ms, in-process (uvloop):\n")
    print("| write path | driver | " + " | ".join(f"{'10k accounts' if a > 1 else 'hot account'}, {c} clients"
                                                  for _, a, c in scenarios[:len(scenarios) // len(designs)]) + " |")
    print("|---|---|" + "---|" * (len(scenarios) // len(designs)))
    labels = {"batched": "batched: post_entries, one call per group", "group": "group commit, a statement each",
              "transaction": "transaction per deposit, pool of 4"}
    for design in designs:
        for driver in drivers:
            cells = []
            for d, a, c in scenarios:
                if d == design:
                    runs = results[(driver.name, d, a, c)]
                    cells.append(f"{statistics.median(r for r, _ in runs):.0f} / "
                                 f"{statistics.median(p for _, p in runs):.0f}")
            print(f"| {labels[design]} | {driver.name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    uvloop.run(main())
