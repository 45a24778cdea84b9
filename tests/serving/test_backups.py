"""Operations (issue 21): `flask backup` and `flask restore` on a SQLite ledger, the scheduled backups, a pg_dump
restored into an empty PostgreSQL database and verified, readiness (/health/ready) and the request log.

The backup under load, a restore refused while a server runs, the schedule of a real server and readiness with
PostgreSQL stopped are in tests/e2e/test_operations.py."""
import asyncio
import json
import logging
import os
import sqlite3
import subprocess
from urllib.parse import urlsplit

import pytest

from atm_web.ledger import accounts, verification
from atm_web.serving import aio
from atm_web.serving.backups import SCHEDULED_PREFIX, Schedule, verify_copy
from atm_web.storage.snapshots import backups_in
from atm_web.web import request_log

from conftest import close_app, drop_postgres_database, make_app, new_postgres_database


def deposits(db, count, prefix="B", amount=100):
    for n in range(count):
        aio.run(accounts.deposit(db, f"{prefix}{n % 7}", amount + n, "token:test"))


@pytest.mark.sqlite_only
def test_a_backup_is_verified_and_never_overwrites_a_file(db, runner, tmp_path):
    deposits(db, 12)
    target = tmp_path / "backup.db"
    done = runner.invoke(args=["backup", "--to", str(target)])
    assert done.exit_code == 0, done.output
    assert "verified, 24 journal rows checked" in done.output and f"{target.stat().st_size} bytes" in done.output
    assert aio.run(verify_copy(str(target))) == 24
    again = runner.invoke(args=["backup", "--to", str(target)])
    assert again.exit_code != 0 and "exists already: a backup never overwrites a file" in again.output
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.sqlite_only
def test_restore_puts_a_backup_in_place_and_keeps_the_file_it_replaces(database, clock, tmp_path):
    app = make_app(database, CLOCK=clock)
    db = app.extensions["atm_db"]
    deposits(db, 5)
    backup = tmp_path / "before.db"
    assert app.test_cli_runner().invoke(args=["backup", "--to", str(backup)]).exit_code == 0
    deposits(db, 3, prefix="LATE")  # after the backup: gone once it is restored
    close_app(app)
    app = make_app(database, CLOCK=clock)
    done = app.test_cli_runner().invoke(args=["restore", "--from", str(backup)])
    assert done.exit_code == 0, done.output
    assert "it verifies: 10 journal rows checked" in done.output and ".replaced-" in done.output
    (kept,) = database.parent.glob("atm.db.replaced-*[0-9]Z")
    close_app(app)
    with sqlite3.connect(database) as restored, sqlite3.connect(kept) as replaced:
        assert restored.execute("SELECT COUNT(*) FROM journal WHERE account_number LIKE 'LATE%'").fetchone() == (0,)
        assert replaced.execute("SELECT COUNT(*) FROM journal WHERE account_number LIKE 'LATE%'").fetchone() == (3,)
    app = make_app(database, CLOCK=clock)  # the restored ledger serves, and verifies
    assert aio.run(verification.verify(app.extensions["atm_db"]))[0] == []
    close_app(app)


@pytest.mark.sqlite_only
def test_a_backup_with_one_byte_changed_is_refused_by_restore(db, runner, raw, tmp_path, database):
    deposits(db, 6)
    backup = tmp_path / "backup.db"
    assert runner.invoke(args=["backup", "--to", str(backup)]).exit_code == 0
    stored_hash = raw.scalar("SELECT hash FROM journal WHERE account_number = 'B3' ORDER BY id LIMIT 1").encode()
    data = backup.read_bytes()
    at = data.index(stored_hash)
    backup.write_bytes(data[:at] + (b"0" if data[at:at + 1] != b"0" else b"1") + data[at + 1:])  # one byte
    before = raw.rows("SELECT id, hash FROM journal ORDER BY id")
    refused = runner.invoke(args=["restore", "--from", str(backup)])
    assert refused.exit_code != 0
    assert "nothing restored" in refused.output and "does not verify" in refused.output
    assert "hash does not match" in refused.output
    assert raw.rows("SELECT id, hash FROM journal ORDER BY id") == before
    assert not list(database.parent.glob("*.replaced-*"))


@pytest.mark.sqlite_only
def test_restore_is_refused_while_another_process_holds_the_ledger(database, clock, tmp_path):
    serving = make_app(database, CLOCK=clock)  # an app server's hold on the file (another one, in this process)
    deposits(serving.extensions["atm_db"], 2)
    backup = tmp_path / "backup.db"
    assert serving.test_cli_runner().invoke(args=["backup", "--to", str(backup)]).exit_code == 0
    operator = make_app(database, CLOCK=clock)
    refused = operator.test_cli_runner().invoke(args=["restore", "--from", str(backup)])
    assert refused.exit_code != 0 and "is in use (an app server holds it): stop every server first" in refused.output
    assert not list(database.parent.glob("*.replaced-*"))
    close_app(serving)
    close_app(operator)


@pytest.mark.postgresql_only
def test_backup_and_restore_are_for_sqlite_on_postgresql_pg_dump(runner, tmp_path):
    for args in (["backup", "--to", str(tmp_path / "x.db")], ["restore", "--from", str(tmp_path / "x.db")]):
        done = runner.invoke(args=args)
        assert done.exit_code != 0 and "pg_" in done.output


@pytest.mark.sqlite_only
def test_the_schedule_keeps_the_last_backups_and_a_failure_deletes_nothing(db, tmp_path, caplog):
    deposits(db, 4)
    folder = tmp_path / "backups"
    schedule = Schedule(db, str(folder), 60, keep=2)
    assert schedule._is_mine()
    made = [aio.run(schedule.take()) for _ in range(3)]
    assert all(m is not None and m.rows_checked == 8 for m in made)
    kept = backups_in(str(folder), SCHEDULED_PREFIX)
    assert [p.name for p in kept] == [os.path.basename(m.path) for m in made[1:]]  # the oldest removed
    other = Schedule(db, str(folder), 60, keep=2)
    assert not other._is_mine()  # one worker takes them: whoever holds the folder's lock
    db.path = str(tmp_path / "no such file.db")  # a backup that cannot be made
    with caplog.at_level(logging.ERROR, logger="atm_web.serving.backups"):
        assert aio.run(schedule.take()) is None
    assert "scheduled backup failed, nothing deleted" in caplog.text
    assert backups_in(str(folder), SCHEDULED_PREFIX) == kept
    aio.run(schedule.stop())
    assert other._is_mine()  # the holder stopped: another takes over at its next tick
    aio.run(other.stop())


@pytest.mark.postgresql_only
def test_a_pg_dump_restored_into_an_empty_database_verifies_and_goes_on(app, db, raw, database, clock, tmp_path):
    """The README's commands: pg_dump --format=custom, then pg_restore --no-owner into an empty database."""
    deposits(db, 9)
    aio.run(accounts.transfer(db, "B1", "B2", 50, "token:test"))
    dump = tmp_path / "ledger.dump"
    subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={dump}", database], check=True,
                   capture_output=True, timeout=120)
    empty = new_postgres_database(migrated=False)
    try:
        subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", f"--dbname={empty}", str(dump)], check=True,
                       capture_output=True, timeout=120)
        restored = make_app(empty, CLOCK=clock)
        try:
            rdb = restored.extensions["atm_db"]
            problems, rows = aio.run(verification.verify(rdb))
            assert problems == [] and rows == raw.all_rows_count()
            assert aio.run(accounts.same_balances(rdb, db))
            after = aio.run(accounts.deposit(rdb, "B1", 7, "token:test"))  # the sequences go on after the copy
            assert after.id > max(r[0] for r in raw.rows("SELECT id FROM journal"))
            assert aio.run(verification.verify(rdb))[0] == []
        finally:
            close_app(restored)
    finally:
        drop_postgres_database(empty)


# Readiness

READY = {"database": "ok", "migrations": "current"}


def test_ready_when_the_database_answers_with_the_codes_schema(client, raw):
    answer = client.get("/health/ready")
    assert (answer.status_code, answer.get_json()) == (200, READY)
    assert client.get("/is_alive").get_json() == {"active": "true"}  # as the original API had it


@pytest.mark.sqlite_only
def test_not_ready_while_the_sqlite_file_is_gone_and_ready_again_once_it_is_back(client, database):
    moved = database.with_name("elsewhere.db")
    os.rename(database, moved)
    try:
        answer = client.get("/health/ready")
        assert (answer.status_code, answer.get_json()) == (503, {"database": "unreachable", "migrations": "unknown"})
        assert "Error" not in answer.get_data(as_text=True)
    finally:
        os.rename(moved, database)
    assert client.get("/health/ready").status_code == 200  # without restarting the app


def test_not_ready_when_the_schema_is_not_the_codes(client, raw):
    if raw.is_postgres:
        raw.execute("DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)")
    else:
        raw.execute(f"PRAGMA user_version = {raw.scalar('PRAGMA user_version') - 1}")
    answer = client.get("/health/ready")
    assert answer.status_code == 503 and answer.get_json()["database"] == "ok"
    assert answer.get_json()["migrations"].startswith("schema version ")


@pytest.mark.postgresql_only
def test_not_ready_within_a_second_when_postgresql_does_not_answer(database, clock):
    """A server that accepts the connection and then says nothing (a stand-in for one that hangs): 503 after the
    one second readiness waits, never a hang."""
    waiting = set()

    async def silent(reader, writer):
        waiting.add(asyncio.current_task())
        try:
            await asyncio.sleep(30)
        finally:
            writer.close()

    async def start():
        return await asyncio.start_server(silent, "127.0.0.1", 0)

    async def stop():
        server.close()
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)

    server = aio.run(start())
    port = server.sockets[0].getsockname()[1]
    url = urlsplit(database)._replace(netloc=f"postgres@127.0.0.1:{port}").geturl()
    app = make_app(database, CLOCK=clock)
    try:
        db = app.extensions["atm_db"]
        db.url = url  # its connections from now on go to the silent server
        for reader in db._reader_list:
            aio.run(reader.raw.close())
        answer = app.test_client().get("/health/ready")
        assert answer.status_code == 503 and answer.get_json()["migrations"] == "unknown"
    finally:
        aio.run(stop())
        close_app(app)


# The request log

def test_one_line_per_request_with_the_routes_pattern_and_an_id_never_the_query(client, capfd):
    client.get("/accounts/SECRETNAME1/balance?x=1")
    answer = client.post("/accounts/A1/deposit", json={"amount": 5}, headers={"X-Request-ID": "router-abc-123"})
    request_log.written()
    lines = [line for line in capfd.readouterr().err.splitlines() if " id=" in line]
    assert lines[-2].split()[1:4] == ["GET", "/accounts/<number>/balance", "422"]
    assert lines[-1].split()[1:4] == ["POST", "/accounts/<number>/deposit", "200"]
    assert lines[-1].endswith("id=router-abc-123") and answer.headers["X-Request-ID"] == "router-abc-123"
    assert "SECRETNAME1" not in "\n".join(lines) and "x=1" not in "\n".join(lines)


def test_the_request_log_as_json(database, clock, capfd):
    app = make_app(database, CLOCK=clock, LOG_FORMAT="json")
    try:
        answer = app.test_client().get("/nowhere?token=atm_secret")
        request_log.written()
        (line,) = [line for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
        fields = json.loads(line)
        assert set(fields) == {"time", "method", "route", "status", "ms", "request_id"}
        assert (fields["method"], fields["route"], fields["status"]) == ("GET", "(no route)", 404)
        assert fields["request_id"] == answer.headers["X-Request-ID"] and "atm_secret" not in line
    finally:
        close_app(app)


@pytest.mark.sqlite_only
def test_restored_files_are_never_committed():
    from conftest import ROOT
    ignored = (ROOT / ".gitignore").read_text()
    assert "*.inuse" in ignored and "*.replaced-*" in ignored and "*.partial" in ignored
