"""Migrations as files, an old SQLite ledger upgraded in place, and `copy-ledger` from SQLite to PostgreSQL."""
import re
import sqlite3
import tracemalloc

import pytest

from atm_web.approvals import requests as approvals
from atm_web.customers import cards, holders
from atm_web.customers import records as customers
from atm_web.ledger import accounts, holds, idempotency, reversals, verification
from atm_web.serving import aio
from atm_web.staff import login_sessions, tellers, tokens
from atm_web.storage.copy import copy_ledger
from atm_web.storage.migrate import migrations
from atm_web.storage.postgresql import PostgresDatabase

from conftest import (
    ROOT,
    Raw,
    close_app,
    drop_postgres_database,
    make_app,
    many_rows,
    new_postgres_database,
    require_postgres,
)

RELEASE_DUMP = ROOT / "tests" / "fixtures" / "ledger_release_8398747.sql"
TABLES = ["accounts", "journal", "tellers", "api_tokens", "audit_log", "idempotency_keys", "sessions", "login_locks",
          "customers", "account_holders", "approvals", "holds", "cards", "card_accounts"]


def old_ledger(path):
    """A SQLite file exactly as the release before this one left it (schema version 6, rows and hashes)."""
    with sqlite3.connect(path) as conn:
        conn.executescript(RELEASE_DUMP.read_text())
    return path


def rows(path, table):
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()


def test_each_engine_has_an_ordered_list_of_sql_files():
    for engine in ("sqlite", "postgresql"):
        found = migrations(engine)
        assert [m.version for m in found] == list(range(1, len(found) + 1))
        assert all(re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", m.name) and m.sql.strip() for m in found)


def test_the_sqlite_files_make_the_schema_the_old_code_made(tmp_path):
    """Files 0001-0006 are the released migrations, moved out of db.py: a new file gets the same schema."""
    old = old_ledger(tmp_path / "old.db")
    new = tmp_path / "new.db"
    with sqlite3.connect(new) as conn:
        for migration in migrations("sqlite")[:6]:
            conn.executescript(migration.sql)

    def schema(path):
        with sqlite3.connect(path) as conn:
            return sorted((kind, name, " ".join(sql.split())) for kind, name, sql in conn.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL"))
    assert schema(new) == schema(old)


def test_an_old_sqlite_ledger_upgrades_in_place_with_every_row_and_hash(tmp_path, clock):
    path = old_ledger(tmp_path / "atm.db")
    before = {table: rows(path, table) for table in ("accounts", "journal", "tellers", "audit_log",
                                                      "verifications", "idempotency_keys")}
    app = make_app(path, CLOCK=clock, MAX_DEBT="500")
    try:
        db = app.extensions["atm_db"]
        assert aio.run(verification.verify(db)) == ([], 13)  # the 12 rows as they were, and the opening entry
        for table, old_rows in before.items():  # every row kept; the bank's accounts and rows are new
            width = len(old_rows[0]) if old_rows else 0
            kept = [row for row in rows(path, table)
                    if not ((table == "accounts" and row[0].startswith("@")) or (table == "journal" and row[0] > 12))]
            assert [row[:width] for row in kept] == old_rows, table
        # the columns double entry added are empty on rows written before it (accounts: all customers', holding
        # nothing)
        assert {row[-2:] for row in rows(path, "journal")[:12]} == {(None, None)}
        assert {row[-2:] for row in rows(path, "accounts") if not row[0].startswith("@")} == {("customer", 0)}
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == len(migrations("sqlite"))
            tokens = conn.execute("SELECT name, creator_id, revoked_at IS NOT NULL, revoked_reason FROM api_tokens "
                                  "ORDER BY id").fetchall()
            failures = conn.execute("SELECT username, pending FROM login_attempts").fetchall()
            opening = conn.execute("SELECT id, account_number, kind, amount_cents, balance_after_cents, actor, "
                                   "entry_id FROM journal WHERE id > 12").fetchall()
            total = conn.execute("SELECT sum(balance_cents) FROM accounts").fetchone()[0]
            bank = conn.execute("SELECT account_number, kind, balance_cents FROM accounts WHERE kind != 'customer' "
                                "ORDER BY 1").fetchall()
        assert tokens == [("nightly", 1, 0, ""), ("ops", None, 1, "revoked")]  # the maker found from created_by
        assert failures == [("tina", 0)]                                         # earlier failures carried over
        # clearing takes the other side of all earlier history: minus the sum of the balances (1500.65 + 0.10
        # - 300.00), in one entry; all balances then sum to zero
        assert opening == [(13, "@clearing", "debit", 120075, -120075, "migration", 0)]
        assert total == 0
        assert bank == [("@cash-over", "cash_over", 0), ("@cash-short", "cash_short", 0),
                        ("@clearing", "clearing", -120075), ("@vault", "vault", 0)]
        tina = aio.run(tellers.find_teller(db, "tina"))
        assert tina and tina[0].role == "teller"
        # tellers, rebuilt for the supervisor role, keep every row and every reference to them
        assert aio.run(tellers.set_role(db, tina[0].id, "supervisor", "test", clock())).role == "supervisor"
        assert aio.run(customers.holders_of(db, "ACC1")) == []  # the accounts opened before: no holder on file
        tx = aio.run(accounts.deposit(db, "ACC1", 100, "test"))  # the chain goes on from the old rows
        assert tx.id == 14 and aio.run(verification.verify(db)) == ([], 15)
        # a row from before double entry is reversed against clearing, which holds its other side
        done = aio.run(reversals.reverse(db, 2, "keyed on the wrong day", "test"))
        assert [(r.account_number, r.kind, r.amount_cents) for r in done.rows] == [("ACC2", "reversal_debit", 10)]
        assert aio.run(verification.verify(db)) == ([], 17)
        assert aio.run(accounts.get_balances(db, ["ACC2"])) == {"ACC2": 0}
    finally:
        close_app(app)


@pytest.fixture
def postgres_target():
    require_postgres()
    url = new_postgres_database(migrated=False)
    yield url
    drop_postgres_database(url)


def populated(path, clock):
    app = make_app(path, CLOCK=clock)
    db = app.extensions["atm_db"]
    ada = aio.run(tellers.create_teller(db, "ada", "scrypt:x", "admin", "setup", clock()))
    aio.run(tokens.create_token(db, "nightly", False, ada.actor, clock()))
    aio.run(login_sessions.start_session(db, ada.id, clock()))
    for n in range(30):
        aio.run(accounts.deposit(db, f"C{n % 7}", 1000 + n, "teller:ada", idempotency.Once("s", f"k{n}", "f", clock()),
                                 now=clock()))
    debit, _ = aio.run(accounts.transfer(db, "C1", "C9", 555, "teller:ada"))
    aio.run(accounts.withdraw(db, "C2", 90000, "teller:ada"))
    aio.run(reversals.reverse(db, debit.id, "wrong account", "teller:ada", now=clock()))
    holly = aio.run(holders.link_holder(db, "C1", None, customers.Details(
        "Holly Holder", "1980-02-29", "passport", "P1", "US", "1 Main Street", "+1 555 0100"), "teller:ada", clock(),
        threshold_cents=1_000_000))
    aio.run(approvals.hold(db, "overdraft_limit", ada, clock(), None, account_number="C1", limit_cents=5000))
    kept = aio.run(cards.issue_card(db, holly.id, ["C1"], "C1", ada, clock()))
    for wrong in ("00000000", "11111111", "22222222"):
        aio.run(cards.set_first_pin(db, kept.number, wrong, "1357", clock()))
    aio.run(approvals.hold(db, "card_unblock", ada, clock(), None,
                           lambda conn: cards.unblock_request_in(conn, kept.card.id), detail="•••• kept"))
    used = aio.run(cards.issue_card(db, holly.id, ["C1"], "C1", ada, clock()))
    assert aio.run(cards.set_first_pin(db, used.number, used.code, "1357", clock())).accepted
    app.extensions["test card"] = used.number
    aio.run(holds.place(db, "C3", 500, 600, "pump 4", "token:x", idempotency.Once("s", "h1", "f", clock()),
                        now=clock()))
    captured, _ = aio.run(holds.place(db, "C4", 700, 600, "", "token:x", now=clock()))
    aio.run(holds.capture(db, captured.id, 300, "token:x", now=clock()))  # two journal rows
    return app


def test_copy_ledger_moves_every_row_to_postgresql_and_verifies_there(tmp_path, clock, postgres_target):
    path = tmp_path / "atm.db"
    app = populated(path, clock)
    try:
        result = app.test_cli_runner().invoke(args=["copy-ledger", "--to", postgres_target])
        assert result.exit_code == 0, result.output
        assert "OK: the copy verifies: 68 journal rows" in result.output
        raw = Raw(postgres_target)
        for table in TABLES:  # every row, whatever order each engine gives rows of equal keys
            assert sorted(raw.rows(f"SELECT * FROM {table}"), key=repr) == sorted(
                (tuple(row) for row in rows(path, table)), key=repr), table
        assert raw.rows("SELECT actor, ok, rows_checked FROM verifications") == [("cli copy-ledger", 1, 68)]
        # vacuumed and analysed at once: the planner's statistics, and the pages marked all-visible
        assert raw.rows("SELECT relname FROM pg_stat_user_tables WHERE relname IN ('journal', 'accounts') "
                        "AND (last_vacuum IS NULL OR last_analyze IS NULL)") == []
    finally:
        close_app(app)
    on_postgres = make_app(postgres_target, CLOCK=clock)  # the branch, moved: it goes on where it stopped
    try:
        db = on_postgres.extensions["atm_db"]
        tx = aio.run(accounts.deposit(db, "C1", 100, "teller:ada"))
        assert tx.id == 69 and aio.run(verification.verify(db)) == ([], 70)
        placed, _ = aio.run(holds.place(db, "C1", 100, 600, "", "token:x"))  # ids go on after the copied holds
        assert placed.id == 3
        assert aio.run(tellers.find_teller(db, "ada"))[0].is_admin
        number = app.extensions["test card"]  # found by its digest, its PIN checked, with the same PIN_KEY
        assert aio.run(cards.check_pin(db, number, "1357", clock())).accepted
        ada = aio.run(tellers.find_teller(db, "ada"))[0]
        assert aio.run(cards.issue_card(db, 1, ["C1"], "C1", ada, clock())).card.id == 3
    finally:
        close_app(on_postgres)


def test_copy_ledger_memory_does_not_grow_with_the_ledger(tmp_path, clock):
    """The most memory a copy takes, of a ledger of 8,000 journal rows and of one four times larger: within 30% (the
    rows go a batch at a time; a copy holding a table whole took 3 times more on the larger)."""
    require_postgres()
    peaks = []
    for size in (2_000, 8_000):
        app, url = make_app(tmp_path / f"atm-{size}.db", CLOCK=clock), new_postgres_database(migrated=False)
        try:
            source = app.extensions["atm_db"]
            many_rows(aio.run, source, size)
            target = PostgresDatabase(url, source.max_debt_cents, pool_size=2, startup=source.startup)
            tracemalloc.start()
            try:
                copied = aio.run(copy_ledger(source, target))
                peaks.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
                assert copied["journal"] == size * 4 and aio.run(verification.verify(target))[0] == []
            finally:
                tracemalloc.stop()
                aio.run(target.close())
        finally:
            close_app(app)
            drop_postgres_database(url)
    print(f"copy-ledger peak memory: {peaks[0] // 1024} KiB at 8,000 rows, {peaks[1] // 1024} KiB at 32,000")
    assert peaks[1] < peaks[0] * 1.3, peaks


def test_copy_ledger_refuses_a_target_that_holds_data(tmp_path, clock, postgres_target):
    app = populated(tmp_path / "atm.db", clock)
    try:
        runner = app.test_cli_runner()
        assert runner.invoke(args=["copy-ledger", "--to", postgres_target]).exit_code == 0
        before = Raw(postgres_target).journal_count()
        again = runner.invoke(args=["copy-ledger", "--to", postgres_target])
        assert again.exit_code != 0 and "12 in accounts, 68 in journal, 2 in holds" in again.output
        assert Raw(postgres_target).journal_count() == before
        bad = runner.invoke(args=["copy-ledger", "--to", "mysql://h/d"])
        assert bad.exit_code != 0 and "--to='mysql://h/d' is not valid" in bad.output
    finally:
        close_app(app)


def test_an_old_ledger_upgraded_then_copied_verifies_on_postgresql(tmp_path, clock, postgres_target):
    app = make_app(old_ledger(tmp_path / "atm.db"), CLOCK=clock, MAX_DEBT="500")
    try:
        result = app.test_cli_runner().invoke(args=["copy-ledger", "--to", postgres_target])
        assert result.exit_code == 0, result.output
        assert Raw(postgres_target).rows("SELECT account_number, balance_cents FROM accounts ORDER BY 1") == [
            (number, balance) for number, balance, *_ in rows(tmp_path / "atm.db", "accounts")]
    finally:
        close_app(app)


def test_init_db_says_which_ledger_is_ready(app, runner, engine):
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Database ready: " + ("PostgreSQL: postgresql://" if engine == "postgresql"
                                                          else "SQLite: "))


def test_the_release_command_migrates_an_empty_postgresql_database(postgres_target, tmp_path):
    """Procfile `release:` runs before the new web processes, with the dyno's environment."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.test_deploy import procfile
    secret_url = postgres_target.replace("postgres@", "postgres:hunter2@")  # trust auth ignores the password
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path),
           "DATABASE_URL": secret_url, "SECRET_KEY": "release", "PIN_KEY": "release-pin-key-0123456789",
           "DYNO": "release.1"}
    done = subprocess.run(["bash", "-c", procfile()["release"]], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "hunter2" not in done.stdout + done.stderr and "postgres:***@" in done.stdout
    versions = Raw(postgres_target).rows("SELECT version FROM schema_migrations ORDER BY version")
    assert versions == [(m.version,) for m in migrations("postgresql")]


def test_post_entries_waits_for_its_turn_as_long_as_every_other_group():
    """The lock timeout is written in Python and in the batched postings' SQL functions: they must agree."""
    from atm_web.storage.postgresql import LOCK_TIMEOUT
    for name in ("0002_batched_postings.sql", "0004_authorised_postings.sql"):
        batched = next(m for m in migrations("postgresql") if m.name == name)
        assert f"set_config('lock_timeout', '{LOCK_TIMEOUT}', true)" in batched.sql, name


def test_a_postgresql_ledger_of_the_schema_before_double_entry_upgrades_in_place(postgres_target, clock):
    """A database at PostgreSQL migration 0004 (the release before double entry) holding rows and hashes as that
    release wrote them: migration 0005 keeps every balance and row, clearing takes the other side in one opening
    entry, and verify passes; the chains go on."""
    import psycopg

    from atm_web.ledger.journal import row_hash
    with psycopg.connect(postgres_target, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                     "applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        for migration in migrations("postgresql")[:4]:
            conn.execute(migration.sql)
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                         (migration.version, migration.name))
        conn.execute("UPDATE settings SET max_debt_cents = 50000")
        last, balances = {}, {}
        for number, kind, amount in (("P1", "deposit", 100000), ("P2", "withdrawal", 30000), ("P1", "deposit", 5)):
            balances[number] = balances.get(number, 0) + (amount if kind == "deposit" else -amount)
            at = "2026-11-30T10:00:00.000000Z"
            digest = row_hash(last.get(number, ""), number, kind, amount, balances[number], at, "teller:old", None, "")
            conn.execute("INSERT INTO journal (account_number, kind, amount_cents, balance_after_cents, created_at, "
                         "actor, related_id, memo, hash) VALUES (%s, %s, %s, %s, %s, 'teller:old', NULL, '', %s)",
                         (number, kind, amount, balances[number], at, digest))
            last[number] = digest
    before = Raw(postgres_target).rows("SELECT id, account_number, kind, amount_cents, balance_after_cents, hash "
                                       "FROM journal ORDER BY id")
    app = make_app(postgres_target, CLOCK=clock, MAX_DEBT="500")
    try:
        db = app.extensions["atm_db"]
        raw = Raw(postgres_target)
        assert aio.run(verification.verify(db)) == ([], 4)
        assert raw.rows("SELECT id, account_number, kind, amount_cents, balance_after_cents, hash FROM journal "
                        "WHERE id <= 3 ORDER BY id") == before
        assert raw.rows("SELECT account_number, kind, amount_cents, balance_after_cents, actor, entry_id FROM journal "
                        "WHERE id > 3") == [("@clearing", "debit", 70005, -70005, "migration", 0)]
        assert dict(raw.rows("SELECT account_number, balance_cents FROM accounts WHERE kind = 'customer'")) == \
            {"P1": 100005, "P2": -30000}
        assert raw.scalar("SELECT sum(balance_cents) FROM accounts") == 0
        tx = aio.run(accounts.deposit(db, "P1", 100, "test"))
        assert tx.balance_after_cents == 100105 and aio.run(verification.verify(db)) == ([], 6)
        sam = aio.run(tellers.create_teller(db, "sam", "scrypt:x", "supervisor", "test", clock()))  # migration 0007
        assert sam.can_approve and aio.run(customers.holders_of(db, "P1")) == []
    finally:
        close_app(app)
