"""The ledger (accounts.py, journal.py) on both engines: journal per change, immutability, refusals by name, history,
group commit under concurrency, MAX_DEBT after restart, the hash chain and verify; SQLite's file and start-up."""
import asyncio
import multiprocessing
import sqlite3
import time

import pytest

from atm_web.core import rules
from atm_web.ledger import accounts, verification
from atm_web.ledger.accounts import LEDGER_STARTUP
from atm_web.ledger.journal import history, row_hash
from atm_web.ledger.refusals import BalanceTooLarge, InsufficientFunds, InvalidAccountNumber, InvalidCursor
from atm_web.serving import aio
from atm_web.storage import IntegrityError
from atm_web.storage.migrate import migrations
from atm_web.storage.sqlite import SQLiteDatabase

from conftest import close_app, make_app

SQLITE_VERSION = len(migrations("sqlite"))


def journal(raw, number=None):
    """The customers' rows, or one account's (the bank's side of each is checked in test_double_entry)."""
    query = "SELECT account_number, kind, amount_cents, balance_after_cents, actor FROM journal"
    if number:
        return raw.rows(query + " WHERE account_number = ? ORDER BY id", (number,))
    return raw.rows(query + " WHERE account_number NOT LIKE '@%' ORDER BY id")


def test_unknown_account_has_zero_balance_and_default_limit(db, run):
    account = run(accounts.get_account(db, "42"))
    assert (account.balance_cents, account.overdraft_limit_cents, account.exists) == (0, 100000, False)


def test_deposit_opens_account_and_journals(db, raw, run):
    tx = run(accounts.deposit(db, "A1", 1050, "tester"))
    assert (tx.kind, tx.amount_cents, tx.balance_after_cents, tx.actor) == ("deposit", 1050, 1050, "tester")
    assert tx.created_at.endswith("Z")
    assert run(accounts.get_account(db, "A1")).exists
    run(accounts.deposit(db, "A1", 50, "tester"))
    assert run(accounts.get_account(db, "A1")).balance_cents == 1100
    assert journal(raw, "A1") == [("A1", "deposit", 1050, 1050, "tester"), ("A1", "deposit", 50, 1100, "tester")]


def test_withdraw_within_limit_and_refused_past_it(db, raw, run):
    run(accounts.deposit(db, "A1", 10000, "t"))
    tx = run(accounts.withdraw(db, "A1", 110000, "t"))  # down to exactly -1000.00
    assert tx.balance_after_cents == -100000
    with pytest.raises(InsufficientFunds):
        run(accounts.withdraw(db, "A1", 1, "t"))
    assert run(accounts.get_account(db, "A1")).balance_cents == -100000
    assert len(journal(raw, "A1")) == 2


def test_check_violation_is_insufficient_funds_but_other_integrity_errors_are_not(db, run):
    async def violate_other_constraint(conn):
        await conn.execute("INSERT INTO journal (account_number, kind, amount_cents, balance_after_cents, "
                           "created_at, actor) VALUES ('X', 'bogus', 1, 1, 'now', 't')")
    with pytest.raises(IntegrityError) as raised:
        run(db.write(violate_other_constraint))
    assert not isinstance(raised.value, InsufficientFunds)


def test_journal_is_immutable(db, raw, run):
    run(accounts.deposit(db, "A1", 100, "t"))
    for change in ("UPDATE journal SET amount_cents = 1", "DELETE FROM journal"):
        with pytest.raises(raw.IntegrityError, match="immutable"):
            raw.execute(change)
    assert journal(raw) == [("A1", "deposit", 100, 100, "t")]


def test_history_pages_newest_first_by_cursor(db, run):
    for cents in range(1, 8):
        run(accounts.deposit(db, "H1", cents, "t"))
    run(accounts.deposit(db, "OTHER", 5, "t"))
    seen, cursor = [], None
    for expected_size in (3, 3, 1):
        page, cursor = run(history(db, "H1", 3, cursor))
        assert len(page) == expected_size
        seen += [tx.amount_cents for tx in page]
    assert cursor is None
    assert seen == [7, 6, 5, 4, 3, 2, 1]


@pytest.mark.parametrize("cursor", ["abc", "-1", "1.5", "99999999999999999999", "١٢"])
def test_history_refuses_bad_cursor(db, run, cursor):
    with pytest.raises(InvalidCursor):
        run(history(db, "H1", 3, cursor))


@pytest.mark.parametrize("number", ["", "a b", "x" * 35, "12-34", "ü1", "12\n", "../x"])
def test_invalid_account_numbers_write_nothing(db, raw, run, number):
    with pytest.raises(InvalidAccountNumber):
        run(accounts.deposit(db, number, 100, "t"))
    assert journal(raw) == []


def test_concurrent_writes_share_commits_and_fail_alone(db, raw, run):
    """Many writes at once: each succeeds or fails on its own, and balances equal the journal."""
    run(accounts.deposit(db, "C", 1000, "t"))

    async def burst():
        ops = [accounts.deposit(db, f"C{i % 4}", 100, "t") for i in range(40)]
        ops += [accounts.withdraw(db, "C", 60000, "t") for _ in range(5)]  # only the first fits in 1000.00+10.00
        return await asyncio.gather(*ops, return_exceptions=True)

    results = run(burst())
    refused = [r for r in results if isinstance(r, InsufficientFunds)]
    assert len(refused) == 4 and not [r for r in results if isinstance(r, Exception) and r not in refused]
    assert run(accounts.get_account(db, "C")).balance_cents == 1000 - 60000
    assert [run(accounts.get_account(db, f"C{i}")).balance_cents for i in range(4)] == [1000] * 4
    assert len(journal(raw)) == 1 + 40 + 1
    assert run(verification.verify(db))[0] == []


def test_max_debt_change_takes_effect_after_restart(database):
    path = database
    app = make_app(path, MAX_DEBT="100")
    db = app.extensions["atm_db"]
    from atm_web.serving import aio
    aio.run(accounts.withdraw(db, "R1", 10000, "t"))
    aio.run(accounts.deposit(db, "R2", 100, "t"))
    with pytest.raises(InsufficientFunds):
        aio.run(accounts.withdraw(db, "R1", 1, "t"))
    close_app(app)

    app = make_app(path, MAX_DEBT="500")  # raised: both accounts follow it
    db = app.extensions["atm_db"]
    assert aio.run(accounts.get_account(db, "R2")).overdraft_limit_cents == 50000
    aio.run(accounts.withdraw(db, "R1", 40000, "t"))
    with pytest.raises(InsufficientFunds):
        aio.run(accounts.withdraw(db, "R1", 1, "t"))
    close_app(app)

    app = make_app(path, MAX_DEBT="20")  # lowered below R1's debt of 500: R1 may not borrow more
    db = app.extensions["atm_db"]
    assert aio.run(accounts.get_account(db, "R2")).overdraft_limit_cents == 2000
    with pytest.raises(InsufficientFunds):
        aio.run(accounts.withdraw(db, "R1", 1, "t"))
    aio.run(accounts.deposit(db, "R1", 10000, "t"))  # repaying 100 of 500 is accepted...
    with pytest.raises(InsufficientFunds):  # ...and cannot be borrowed again
        aio.run(accounts.withdraw(db, "R1", 1, "t"))
    assert aio.run(accounts.get_account(db, "R1")).overdraft_limit_cents == 40000
    assert aio.run(verification.verify(db))[0] == []
    close_app(app)


@pytest.mark.sqlite_only
def test_schema_created_once_and_reopened(tmp_path, run):
    path = str(tmp_path / "x.db")
    for _ in range(2):
        database = SQLiteDatabase(path, 100000, startup=LEDGER_STARTUP)
        run(database.open())
        run(database.close())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SQLITE_VERSION,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_verify_finds_a_tampered_balance(db, raw, run):
    run(accounts.deposit(db, "V1", 500, "t"))
    assert run(verification.verify(db))[0] == []
    raw.execute("UPDATE accounts SET balance_cents = 999 WHERE account_number = 'V1'")
    problems = run(verification.verify(db))[0]
    assert problems and "V1" in problems[0]


def test_withdrawal_larger_than_max_debt_from_a_funded_account(db, run):
    """The original upsert refused this: SQLite checked the CHECK on the candidate insert row first."""
    run(accounts.deposit(db, "BIG", 500000, "t"))
    assert run(accounts.withdraw(db, "BIG", 450000, "t")).balance_after_cents == 50000


def test_other_integrity_error_in_a_deposit_is_not_insufficient_funds(db, raw, run):
    raw.script(  # some other constraint of the schema, failing on this account
        "CREATE TRIGGER refuse_x BEFORE INSERT ON journal WHEN NEW.account_number = 'X' "
        "BEGIN SELECT RAISE(ABORT, 'some other rule'); END;",
        "CREATE FUNCTION refuse_x() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.account_number = 'X' THEN "
        "RAISE EXCEPTION 'some other rule' USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NEW; "
        "END $$; CREATE TRIGGER refuse_x BEFORE INSERT ON journal FOR EACH ROW EXECUTE FUNCTION refuse_x();")
    with pytest.raises(IntegrityError, match="some other rule") as raised:
        run(accounts.withdraw(db, "X", 100, "t"))
    assert not isinstance(raised.value, InsufficientFunds)
    assert run(accounts.deposit(db, "Y", 100, "t")).balance_after_cents == 100


def test_hash_chain_links_each_row_to_the_previous_of_its_account(db, raw, run):
    run(accounts.deposit(db, "H1", 100, "t"))
    run(accounts.deposit(db, "H2", 100, "t"))
    run(accounts.withdraw(db, "H1", 30, "t"))
    rows = raw.rows("SELECT id, account_number, kind, amount_cents, balance_after_cents, created_at, actor, "
                    "related_id, memo, entry_id, business_date, hash FROM journal ORDER BY id")
    first, first_bank, _, second_bank, third, third_bank = rows
    assert first[-1] == row_hash("", *first[1:-1])
    assert third[-1] == row_hash(first[-1], *third[1:-1])  # chained to H1's row, not H2's
    assert second_bank[-1] == row_hash(first_bank[-1], *second_bank[1:-1])  # clearing's own chain
    assert third_bank[-1] == row_hash(second_bank[-1], *third_bank[1:-1])
    assert [row[9] for row in rows] == [1, 1, 2, 2, 3, 3]  # each posting one transaction of two rows
    assert run(verification.verify(db)) == ([], 6)


@pytest.mark.parametrize("edit", [
    "UPDATE journal SET actor = 'someone else' WHERE id = 3",         # a field no sum would notice
    "UPDATE journal SET hash = NULL WHERE id = 3",
    "UPDATE journal SET memo = 'x' WHERE id = 3",
    "UPDATE journal SET business_date = '2000-01-01' WHERE id = 3",  # the day a row counts in is hashed too
])
def test_verify_names_the_first_row_edited_behind_the_triggers_back(app, db, raw, run, edit):
    for cents in (100, 200, 300):
        run(accounts.deposit(db, "T1", cents, "t"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["verify"]).exit_code == 0
    raw.without_immutability(edit)
    result = runner.invoke(args=["verify", "--full"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0].startswith("FAIL journal row 3")


def test_verification_is_recorded_and_shown_to_admins(app, db, run):
    from conftest import add_teller, log_in
    client = log_in(app, app.test_client(), add_teller(app, "ada", "admin"))
    assert "Never verified yet" in client.get("/admin/verification").get_data(as_text=True)
    run(accounts.deposit(db, "V1", 100, "t"))
    assert client.post("/admin/verification").status_code == 303
    page = client.get("/admin/verification").get_data(as_text=True)
    assert "Sound" in page and "teller:ada" in page
    app.test_cli_runner().invoke(args=["verify"])
    assert ">cli<" in client.get("/admin/verification").get_data(as_text=True)


@pytest.mark.sqlite_only
def test_every_connection_is_wal_full_sync_with_a_busy_timeout(db, run):
    """synchronous=FULL: an acknowledged deposit survives power loss (kill -9 alone would not show it)."""
    for conn in (db._writer, db._reader):
        assert run(conn.fetchall("PRAGMA journal_mode")) == [("wal",)]
        assert run(conn.fetchall("PRAGMA synchronous")) == [(2,)]
        assert run(conn.fetchall("PRAGMA busy_timeout")) == [(5000,)]
        assert run(conn.fetchall("PRAGMA foreign_keys")) == [(1,)]


def _open_at(path: str, start_at: float) -> str:
    """In a fresh process: wait for start_at, then open (create and migrate) the database at path."""
    time.sleep(max(0.0, start_at - time.time()))
    try:
        aio.run(SQLiteDatabase(path, 0, startup=LEDGER_STARTUP).open())
        return "ok"
    except Exception as error:  # reported to the parent, which names it
        return f"{type(error).__name__}: {error}"


@pytest.mark.sqlite_only
@pytest.mark.slow
def test_workers_opening_a_new_database_at_the_same_moment_all_succeed(tmp_path):
    """hypercorn starts its workers together; on a new file they race to create it and switch it to WAL."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(6) as pool:
        pool.map(time.sleep, [0] * 6)  # the workers are up before the race starts
        for attempt in range(8):
            path = str(tmp_path / f"new{attempt}.db")
            start_at = time.time() + 0.3
            assert pool.starmap(_open_at, [(path, start_at)] * 6) == ["ok"] * 6
            with sqlite3.connect(path) as conn:
                assert conn.execute("PRAGMA user_version").fetchone()[0] == SQLITE_VERSION
                assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_balance_past_the_largest_the_ledger_holds_is_refused_before_commit(client, db, run):
    """The probe's 2**63-1 cents deposit was committed, then answered 500: now nothing past BALANCE_MAX_CENTS
    is ever written, whichever way the money comes in, and every answer after a commit can be written."""
    run(accounts.deposit(db, "BIG", rules.BALANCE_MAX_CENTS - 5, "test"))
    run(accounts.deposit(db, "SRC", 100, "test"))
    rows = run(verification.verify(db))[1]
    for refused in (client.post("/accounts/BIG/deposit", json={"amount": 0.06}),
                    client.post("/transfers", json={"from_account": "SRC", "to_account": "BIG", "amount": 0.06})):
        assert refused.status_code == 422 and "largest balance" in refused.get_json()["detail"]
    with pytest.raises(BalanceTooLarge):
        run(accounts.deposit(db, "BIG", 2**62, "test"))
    assert run(verification.verify(db)) == ([], rows)
    accepted = client.post("/accounts/BIG/deposit", json={"amount": 0.05})
    assert accepted.status_code == 200 and b'"balance":9999999999999.99,' in accepted.data


def _open_postgres_at(url: str, start_at: float) -> str:
    """In a fresh process: wait for start_at, then open (and migrate) the PostgreSQL database at url."""
    from atm_web.storage.postgresql import PostgresDatabase
    time.sleep(max(0.0, start_at - time.time()))
    try:
        database = PostgresDatabase(url, 0, pool_size=2, startup=LEDGER_STARTUP)
        aio.run(database.open())
        aio.run(database.close())
        return "ok"
    except Exception as error:  # reported to the parent, which names it
        return f"{type(error).__name__}: {error}"


@pytest.mark.postgresql_only
def test_servers_starting_together_on_an_empty_postgresql_database_migrate_it_once(engine):
    """Each server's workers start together; the advisory lock lets one migrate while the others wait."""
    from conftest import Raw, drop_postgres_database, new_postgres_database
    database = new_postgres_database(migrated=False)
    try:
        raw = Raw(database)
        assert raw.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'") == []
        context = multiprocessing.get_context("spawn")
        with context.Pool(4) as pool:
            pool.map(time.sleep, [0] * 4)
            start_at = time.time() + 0.5
            assert pool.starmap(_open_postgres_at, [(database, start_at)] * 4) == ["ok"] * 4
        expected = [(m.version, m.name) for m in migrations("postgresql")]
        assert raw.rows("SELECT version, name FROM schema_migrations ORDER BY version") == expected
        assert raw.scalar("SELECT COUNT(*) FROM settings") == 1
    finally:
        drop_postgres_database(database)


@pytest.mark.postgresql_only
@pytest.mark.parametrize("prepared", [True, False])
def test_with_prepared_statements_off_no_session_keeps_a_named_statement(database, prepared):
    """DB_PREPARED_STATEMENTS=0, for PgBouncer in transaction mode (where the next transaction may run on another
    server session): the ledger still posts, transfers, reads and verifies, and no session of the app's holds a
    named prepared statement for a later transaction to miss. With the setting on, they do (the check can fail)."""
    from conftest import add_token, bearer, close_app, make_app
    app = make_app(database, DB_PREPARED_STATEMENTS="1" if prepared else "0")
    try:
        api = app.test_client()
        headers = bearer(add_token(app))
        for _ in range(3):
            assert api.post("/accounts/P1/deposit", json={"amount": 5}, headers=headers).status_code == 200
            assert api.get("/accounts/P1/balance", headers=headers).status_code == 200
        moved = api.post("/transfers", json={"from_account": "P1", "to_account": "P2", "amount": 1}, headers=headers)
        assert moved.status_code == 200
        db = app.extensions["atm_db"]
        assert aio.run(verification.verify(db))[0] == []
        sessions = [db._writer, *db._reader_list]
        named = [aio.run(conn.fetchall("SELECT count(*) FROM pg_prepared_statements"))[0][0] for conn in sessions]
        assert (sum(named) > 0) is prepared, named
    finally:
        close_app(app)
