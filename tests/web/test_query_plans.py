"""Issue 22: no request reads a table that grows with the ledger from end to end. Every statement the app runs on a
tour of every route (test_security's access matrix, as the identity each route is for, and the reads tellers make
most) is explained by the engine: each growing table it touches must be searched through an index (SQLite's
EXPLAIN QUERY PLAN shows no SCAN of it; PostgreSQL's EXPLAIN, with sequential scans made a last resort, no Seq
Scan on it), save the few named below with the reason their cost stays bounded."""
import json
import re
import sqlite3

import asyncpg
import pytest
import test_security
from test_security import ROUTES, expected

from atm_web.serving import aio
from atm_web.storage.postgresql import PostgresConnection, numbered
from atm_web.storage.sqlite import SQLiteConnection, _sha256_hex

world = test_security.world  # the access matrix's fixture: its world, and a client per identity

GROWING = {"journal", "accounts", "customers", "account_holders", "customer_cash", "approvals", "large_cash",
           "large_cash_checks", "audit_log", "idempotency_keys", "customer_reads", "drawer_sessions",
           "vault_movements", "closing_cash", "chain_heads", "sessions", "login_attempts", "closed_days",
           "verifications", "customer_names"}  # (tellers and API tokens grow with the staff, not the ledger)
# Partial indexes a statement may read whole: what they hold is bounded by the branch's state, not its history.
BOUNDED_INDEXES = {"accounts_holding_cash": "the vault and the open drawers",
                   "drawer_sessions_one_per_teller": "the drawers not closed, one per teller at most"}
# Statements that read a growing table in order, from one end, and stop after a few rows: the newest first
# (ORDER BY id DESC LIMIT n) or the oldest pending. The engine shows them as a SCAN; their cost is the LIMIT's.
BOUNDED = re.compile(r"ORDER BY (\w+\.)?id DESC LIMIT", re.S)
FOR = ("admin", "admin_token", "teller", "supervisor", "read_write")  # who takes each route on the tour
EXPLAINABLE = re.compile(r"\s*(SELECT|WITH|INSERT|UPDATE|DELETE)\b", re.I)


@pytest.fixture
def statements(monkeypatch):
    """Every statement the app runs from now on, with the parameters it ran with first."""
    seen: dict[str, object] = {}

    def recording(cls, name):
        original = getattr(cls, name)

        def record(self, sql, params=()):
            seen.setdefault(sql, params)
            return original(self, sql, params)
        monkeypatch.setattr(cls, name, record)

    for cls in (SQLiteConnection, PostgresConnection):
        for name in ("fetchall", "execute", "chunks"):
            recording(cls, name)
    return seen


def tour(clients, ids):
    """The reads tellers and scripts make most; then every route of the access matrix as the first identity it is
    for (some of which revoke a token or deactivate a teller: last)."""
    teller = clients["teller"]
    for query in ("hol", "h", "X0", "A1"):
        teller.post("/", data={"query": query})
    reader = clients["read_only"]
    first = reader.get("/accounts/A1/transactions?limit=1")
    assert first.status_code == 200, first.get_json()
    reader.get(f"/accounts/A1/transactions?limit=1&cursor={first.get_json()['next_cursor']}")
    for route in ROUTES:
        method, path, body, _ = route
        identity = next((who for who in FOR if expected(route, who) in (200, 201, 303)), None)
        if identity is None or path.startswith(("/admin/verification", "/logout")):
            continue  # verification reads everything by design (a full run is the operator's choice)
        client = clients[identity]
        path = path.format(**ids)
        if method == "GET":
            client.get(path)
        elif path.startswith(("/accounts", "/transfers", "/transactions")):
            client.open(path, method=method, json=body)
        else:
            client.open(path, method=method, data=body)


def sqlite_plan(path, sql, params) -> list[str]:
    conn = sqlite3.connect(path)
    conn.create_function("sha256_hex", 1, _sha256_hex, deterministic=True)
    try:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
    finally:
        conn.close()


def postgres_plan(url, sql, params) -> list[dict]:
    """The plan's nodes (EXPLAIN's JSON, flattened), sequential scans made a last resort."""
    text, names = numbered(sql)
    args = list(params) if names is None else [params[name] for name in names]

    async def explain():
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("SET enable_seqscan = off")
            return json.loads(await conn.fetchval("EXPLAIN (FORMAT JSON) " + text, *args))
        finally:
            await conn.close()

    nodes, todo = [], [aio.run(explain())[0]["Plan"]]
    while todo:
        node = todo.pop()
        nodes.append(node)
        todo.extend(node.get("Plans", []))
    return nodes


def scanned(engine, plan) -> set[str]:
    """The growing tables a plan reads from end to end: SQLite's SCAN (but a full-text MATCH, or a partial index of
    BOUNDED_INDEXES), PostgreSQL's Seq Scan or an index scan with no condition on the index."""
    found = set()
    for step in plan:
        if engine == "sqlite":
            match = re.search(r"\bSCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?", step)
            if match and not re.search(r"VIRTUAL TABLE INDEX \d+:M", step) and match.group(2) not in BOUNDED_INDEXES:
                found.add(match.group(1))
        elif step["Node Type"] == "Seq Scan" or (
                "Index" in step["Node Type"] and "Index Cond" not in step
                and step.get("Index Name") not in BOUNDED_INDEXES):
            found.add(step.get("Relation Name") or step.get("Index Name"))
    return found & GROWING | {table for table in found if table not in GROWING and table.startswith(tuple(GROWING))}


def test_every_statement_of_a_tour_of_every_route_searches_growing_tables_through_an_index(
        engine, database, world, statements):
    _app, clients, ids = world
    statements.clear()  # the world's building is not the tour
    tour(clients, ids)
    assert len(statements) > 100
    scans = {}
    for sql, params in statements.items():
        if not EXPLAINABLE.match(sql):
            continue
        plan = sqlite_plan(database, sql, params) if engine == "sqlite" else postgres_plan(database, sql, params)
        tables = scanned(engine, plan)
        if tables and not BOUNDED.search(sql):
            scans[" ".join(sql.split())[:300]] = (sorted(tables), plan)
    assert not scans, "\n\n".join(f"{sql}\n  scans {tables}\n  " + "\n  ".join(map(str, plan))
                                   for sql, (tables, plan) in scans.items())


# What every cash posting reads (issue 22, point 1), each through the index meant for it: a part of the statement's
# text, and that index.
PER_POSTING = {
    "FROM customer_cash WHERE account_number IN": "customer_cash_by_account_day",  # the large-cash totals
    "FROM account_holders WHERE customer_id": "account_holders_by_customer",  # a holder's other accounts
    "JOIN account_holders h ON h.customer_id = c.id WHERE h.account_number": "account_holders_pkey",
    "ORDER BY id DESC LIMIT 1) AS prev": "journal_by_account",  # each row's chain: its account's last row
    "SELECT coalesce(max(entry_id), 0) + 1": "journal_by_entry",  # the next transaction's number
}
# The drawer's own trigger (drawer_must_be_open) runs this for every row on a drawer, unseen by the app.
DRAWER_TRIGGER = "SELECT 1 FROM drawer_sessions WHERE account_number = ? AND status = 'open'"


def plan_text(engine, database, sql, params) -> str:
    if engine == "sqlite":
        return "\n".join(sqlite_plan(database, sql, params))
    return json.dumps(postgres_plan(database, sql, params))


def test_every_cash_posting_reads_through_the_index_meant_for_it(engine, database, world, statements):
    """A teller's cash deposit on an account with a holder: its large-cash totals read that customer's rows of the
    day only (customer_cash_by_account_day), whatever the day's size or the ledger's."""
    clients = world[1]
    statements.clear()
    answer = clients["teller"].post("/teller/transactions", data={
        "account_number": "A1", "amount": "3", "deposit": "Deposit", "form_key": "a" * 32})
    assert answer.status_code == 303 and "/receipts/" in answer.location
    for part, index in PER_POSTING.items():
        ran = [(sql, params) for sql, params in statements.items() if part in sql]
        assert ran, f"no statement of the posting holds {part!r}"
        for sql, params in ran:
            plan = plan_text(engine, database, sql, params)
            wanted = index if engine == "postgresql" or not index.endswith("_pkey") else "PRIMARY KEY"
            assert wanted in plan or (engine == "sqlite" and index.endswith("_pkey") and "sqlite_autoindex" in plan), \
                (part, plan)
            assert not scanned(engine, plan.splitlines() if engine == "sqlite" else json.loads(plan)), (part, plan)
    trigger = plan_text(engine, database, DRAWER_TRIGGER, ("@drawer-1",))
    assert not scanned(engine, trigger.splitlines() if engine == "sqlite" else json.loads(trigger)), trigger
