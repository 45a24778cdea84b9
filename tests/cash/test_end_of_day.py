"""The end of the day: the report (sessions, vault, totals, proof), the CSV (same bytes for a closed day, its
SHA-256 audited), the JSON, Close the day (refused while drawers are not closed), the next business date."""
import csv
import hashlib
import io
import re

import pytest

from atm_web.cash import drawers, end_of_day, vault
from atm_web.cash.refusals import DrawerRefused
from atm_web.ledger import accounts, holds
from atm_web.serving import aio
from atm_web.storage.migrate import migrations

from conftest import add_teller, add_token, close_app, log_in, make_app

DAY = 1_700_000_000  # 2023-11-14 22:13:20 UTC
TOLERANCE = 500


@pytest.fixture
def day(app, clock, db, run):
    """A day at the branch: a shipment in, Tina's drawer (float 200.00), cash in and out, a transfer, an API
    deposit, 100.00 more from the vault, and a close 10.00 short that waits for a sign-off."""
    clock.now = DAY
    tina, ada, bob = add_teller(app, "tina"), add_teller(app, "ada", "admin"), add_teller(app, "bob", "admin")
    run(vault.ship_cash(db, "in", 100000, "CIT 1", ada, now=clock()))
    session = run(drawers.open_drawer(db, tina, {10000: 2}, now=clock()))
    clock.advance(3600)
    run(accounts.deposit(db, "C1", 5000, tina.actor, counter=session.account_number, now=clock()))
    run(accounts.withdraw(db, "C1", 2000, tina.actor, counter=session.account_number, now=clock()))
    run(accounts.transfer(db, "C1", "C2", 1000, tina.actor, now=clock()))
    run(accounts.deposit(db, "C3", 700, "token:nightly", now=clock()))
    more = run(vault.request_movement(db, tina, "to_drawer", 10000, now=clock()))
    run(vault.decide_movement(db, more.id, ada, True, now=clock()))
    run(drawers.close_drawer(db, tina, {10000: 3, 1000: 2}, TOLERANCE, now=clock()))  # 320.00 of 330.00
    return tina, ada, bob, session


def test_the_report_shows_each_session_the_vault_totals_and_the_proof(db, run, day):
    report = run(end_of_day.report(db, "2023-11-14"))
    (line,) = report.lines
    assert (line.session.opening_cents, line.cash_in_cents, line.cash_out_cents, line.from_vault_cents,
            line.to_vault_cents) == (20000, 5000, 2000, 10000, 0)
    assert (line.session.expected_cents, line.session.counted_cents, line.session.variance_cents) == \
        (33000, 32000, -1000)
    assert (report.vault_open_cents, report.vault_close_cents) == (0, 102000)
    assert report.by_kind == {"deposit": (2, 5700), "transfer_in": (1, 1000), "transfer_out": (1, 1000),
                              "withdrawal": (1, 2000)}
    assert report.by_teller["teller:tina"][0] == 5 and report.by_teller["token:nightly"] == (1, 700)
    assert report.per_hour["teller:tina"][22] == 1 and report.per_hour["teller:tina"][23] == 4
    assert report.balanced and report.cash_agrees and report.verify_problems == [] and report.sound
    assert report.status == "open" and report.cash_held_cents == 102000


def test_a_hold_captured_counts_as_a_withdrawal_by_its_captured_amount_a_hold_or_a_void_as_nothing(db, run, day,
                                                                                                   clock):
    placed, _ = run(holds.place(db, "C2", 800, 600, "pump 4", "token:fuel", now=clock()))
    run(holds.capture(db, placed.id, 650, "token:fuel", now=clock()))
    voided, _ = run(holds.place(db, "C2", 100, 600, "", "token:fuel", now=clock()))
    run(holds.void(db, voided.id, "token:fuel", now=clock()))
    run(holds.place(db, "C2", 50, 600, "", "token:fuel", now=clock()))  # still pending at the report
    report = run(end_of_day.report(db, "2023-11-14"))
    assert report.by_kind["withdrawal"] == (2, 2000 + 650)
    assert report.by_teller["token:fuel"] == (1, 650)
    assert report.balanced and report.cash_agrees and report.verify_problems == [] and report.sound


def test_close_the_day_waits_for_every_drawer_then_records_the_csv_digest(app, clock, db, raw, run, day):
    _, ada, bob, session = day
    with pytest.raises(DrawerRefused, match=r"drawer 1 of tina \(waiting for sign-off\)"):
        run(end_of_day.close_day(db, ada, now=clock()))
    run(drawers.sign_off(db, session.id, ada, "recounted", now=clock()))
    second = run(drawers.open_drawer(db, bob, {}, now=clock()))
    with pytest.raises(DrawerRefused, match=r"drawer 2 of bob \(open\)"):
        run(end_of_day.close_day(db, ada, now=clock()))
    run(drawers.close_drawer(db, bob, {}, TOLERANCE, now=clock()))
    closed, digest = run(end_of_day.close_day(db, ada, now=clock()))
    assert closed == "2023-11-14" and second.business_date == closed
    report = run(end_of_day.report(db, closed))
    first = end_of_day.to_csv(report, "UTC")
    assert hashlib.sha256(first).hexdigest() == digest and report.status == "closed"
    assert raw.rows("SELECT action, target, detail FROM audit_log WHERE action = 'day closed'") == [
        ("day closed", closed, f"CSV SHA-256 {digest}")]
    after = run(accounts.deposit(db, "C1", 100, "token:nightly", now=clock()))  # still the 14th, local time
    assert raw.scalar("SELECT business_date FROM journal WHERE id = ?", (after.id,)) == "2023-11-15"
    assert end_of_day.to_csv(run(end_of_day.report(db, closed)), "UTC") == first  # the same bytes, after more
    rows = list(csv.reader(io.StringIO(first.decode())))
    assert rows[0] == end_of_day.CSV_HEADER and [r[1] for r in rows[1:]] == ["1", "2", "total", "vault"]
    assert rows[1][2:] == ["tina", "2023-11-14 22:13:20 UTC", "2023-11-14 23:13:20 UTC", "200.00", "50.00",
                           "20.00", "100.00", "0.00", "330.00", "320.00", "-10.00", "ada"]
    assert run(end_of_day.current_business_date(db, now=clock())) == "2023-11-15"


def test_the_json_report_needs_a_token_and_a_date_and_gives_numbers(app, day):
    api = app.test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app, 'reader', read_only=True)}"
    body = api.get("/reports/end-of-day?date=2023-11-14").get_json()
    assert body["status"] == "open" and body["business_date"] == "2023-11-14"
    (session,) = body["sessions"]
    assert {k: session[k] for k in ("teller", "opening_float", "cash_in", "cash_out", "from_vault", "expected",
                                    "counted", "variance", "status")} == {
        "teller": "tina", "opening_float": 200, "cash_in": 50, "cash_out": 20, "from_vault": 100,
        "expected": 330, "counted": 320, "variance": -10, "status": "pending_signoff"}
    assert body["vault"] == {"open": 0, "close": 1020} and body["proof"]["balanced"] is True
    assert body["proof"]["verify"]["ok"] is True and body["proof"]["cash_agrees"] is True
    for query, status in (("", 422), ("?date=2023-02-30", 422), ("?date=14/11/2023", 422),
                          ("?date=2023-11-14&x=1", 422)):
        answer = api.get("/reports/end-of-day" + query)
        assert answer.status_code == status and answer.get_json()["detail"]
    assert app.test_client().get("/reports/end-of-day?date=2023-11-14").status_code == 401
    assert api.get("/reports/end-of-day?date=2030-01-01").get_json()["sessions"] == []


def test_the_report_page_prints_draws_its_chart_downloads_and_closes_the_day(app, clock, db, run, day):
    tina, ada, bob, session = day
    run(drawers.sign_off(db, session.id, bob, "ok", now=clock()))
    admin = log_in(app, app.test_client(), ada)
    page = admin.get("/admin/end-of-day/").get_data(as_text=True)
    for shown in ("Business day 2023-11-14", "Close the day", '<svg class="chart"', "The day proves.",
                  "Transactions per hour by teller", "<td data-label=\"Variance\">-10.00</td>".replace(
                      '<td data-label="Variance">', '<td class="num" data-label="Variance">')):
        assert shown in page, shown
    assert "<script" not in page
    download = admin.get("/admin/end-of-day/report.csv?date=2023-11-14")
    assert download.headers["Content-Type"].startswith("text/csv")
    assert 'filename="end-of-day-2023-11-14.csv"' in download.headers["Content-Disposition"]
    assert download.data == end_of_day.to_csv(run(end_of_day.report(db, "2023-11-14")), "UTC")
    closed = admin.post("/admin/end-of-day/close", follow_redirects=True).get_data(as_text=True)
    assert "2023-11-14 closed" in closed and "Closed " in closed
    assert "Close the day" not in closed
    teller = log_in(app, app.test_client(), tina)
    assert teller.get("/admin/end-of-day/").status_code == 403
    assert admin.get("/admin/end-of-day/?date=nope", follow_redirects=True).status_code == 200


def test_postings_carry_the_branch_date_in_its_time_zone(database, clock, raw):
    clock.now = DAY  # 17:13 in New York, 22:13 UTC on the 14th; 07:13 on the 15th in Tokyo
    for zone, expected in (("America/New_York", "2023-11-14"), ("UTC", "2023-11-14"), ("Asia/Tokyo", "2023-11-15")):
        app = make_app(database, CLOCK=clock, BRANCH_TIMEZONE=zone)
        try:
            tx = aio.run(accounts.deposit(app.extensions["atm_db"], "Z1", 100, "t", now=clock()))
        finally:
            close_app(app)
        assert raw.scalar("SELECT business_date FROM journal WHERE id = ?", (tx.id,)) == expected


# Issue 19

def test_a_day_is_closed_on_its_date_or_later_never_ahead(app, clock, db, raw, run):
    """Point 4: Close the day once closed the 4th at 10:00; again the same calendar day it would close the 5th ahead
    (each close once reset the large-cash totals): refused, nothing written, until the 5th begins."""
    clock.now = DAY - 12 * 3600  # 2023-11-14 10:13:20 UTC
    ada = add_teller(app, "ada", "admin")
    closed, _ = run(end_of_day.close_day(db, ada, now=clock()))
    assert closed == "2023-11-14"
    with pytest.raises(DrawerRefused, match=r"2023-11-15 has not begun yet \(today is 2023-11-14"):
        run(end_of_day.close_day(db, ada, now=clock()))
    clock.advance(13 * 3600 + 46 * 60 + 39)  # 23:59:59 on the 14th
    with pytest.raises(DrawerRefused, match="has not begun yet"):
        run(end_of_day.close_day(db, ada, now=clock()))
    assert raw.rows("SELECT business_date FROM closed_days") == [("2023-11-14",)]
    clock.advance(1)  # midnight: the 15th may close
    assert run(end_of_day.close_day(db, ada, now=clock()))[0] == "2023-11-15"


def test_the_report_shows_no_amount_of_an_open_drawer_before_its_blind_count(app, clock, db, run):
    """Point 5: while a drawer is open, the page, the JSON (any token) and the CSV show it open, with no amount that
    adds up to its expected cash; after its close every amount appears."""
    clock.now = DAY
    tina, ada = add_teller(app, "tina"), add_teller(app, "ada", "admin")
    run(vault.ship_cash(db, "in", 100000, "CIT 1", ada, now=clock()))
    session = run(drawers.open_drawer(db, tina, {10000: 2}, now=clock()))
    run(accounts.deposit(db, "C1", 5000, tina.actor, counter=session.account_number, now=clock()))
    run(accounts.withdraw(db, "C1", 2000, tina.actor, counter=session.account_number, now=clock()))
    more = run(vault.request_movement(db, tina, "to_drawer", 10000, now=clock()))
    run(vault.decide_movement(db, more.id, ada, True, now=clock()))
    api = app.test_client()
    api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app, 'reader', read_only=True)}"
    body = api.get("/reports/end-of-day?date=2023-11-14").get_json()
    (line,) = body["sessions"]
    assert body["amounts_hidden"] is True and line["status"] == "open"
    assert [line[k] for k in ("opening_float", "cash_in", "cash_out", "from_vault", "to_vault", "expected")] == \
        [None] * 6
    assert body["vault"]["close"] is None and body["proof"]["cash_held"] is None
    assert body["proof"]["cash_accounts"] is None and body["proof"]["cash_agrees"] is True
    assert all(kind["amount"] is None for kind in body["by_kind"].values())
    assert all(teller["amount"] is None for teller in body["by_teller"].values())
    # no amount of the day (the float, cash in and out, the vault's 100.00, expected 330.00) anywhere in the JSON
    answer = api.get("/reports/end-of-day?date=2023-11-14").get_data(as_text=True)
    numbers = re.findall(r":\s*(-?[0-9.]+)", answer)
    assert not {"330", "330.0", "200", "200.0", "50", "50.0", "20", "20.0", "100", "100.0"} & set(numbers)
    page = log_in(app, app.test_client(), ada).get("/admin/end-of-day/?date=2023-11-14").get_data(as_text=True)
    assert "A drawer is still open" in page and "330.00" not in page and "200.00" not in page
    csv_text = end_of_day.to_csv(run(end_of_day.report(db, "2023-11-14")), "UTC").decode()
    assert "200.00" not in csv_text and "50.00" not in csv_text
    run(drawers.close_drawer(db, tina, {10000: 3, 1000: 3}, TOLERANCE, now=clock()))
    body = api.get("/reports/end-of-day?date=2023-11-14").get_json()
    assert body["amounts_hidden"] is False and body["sessions"][0]["expected"] == 330
    assert body["sessions"][0]["opening_float"] == 200 and body["proof"]["cash_held"] == 1030


# A report that follows the day (issue 22)

def _close(run, db, clock, day):
    """Sign off the day's short close and close the day."""
    _, ada, _, session = day
    run(drawers.sign_off(db, session.id, ada, "recounted", now=clock()))
    return run(end_of_day.close_day(db, ada, now=clock()))


def _second_day(run, db, clock, day):
    """The next day: Tina's drawer again, a cash deposit, closed even."""
    tina = day[0]
    clock.advance(86400)
    session = run(drawers.open_drawer(db, tina, {10000: 1}, now=clock()))
    run(accounts.deposit(db, "C1", 2500, tina.actor, counter=session.account_number, now=clock()))
    run(drawers.close_drawer(db, tina, {10000: 1, 1000: 2, 100: 5}, TOLERANCE, now=clock()))
    return session


def test_close_the_day_records_the_cash_each_cash_account_holds_and_the_next_day_opens_from_it(
        app, clock, db, raw, run, day):
    closed, _ = _close(run, db, clock, day)
    assert raw.rows("SELECT business_date, account_number, balance_cents FROM closing_cash") == [
        (closed, "@vault", -102000)]  # every drawer closed: the vault holds all the cash
    _second_day(run, db, clock, day)
    report = run(end_of_day.report(db, "2023-11-15"))
    assert (report.vault_open_cents, report.vault_close_cents) == (102000, 104500)
    assert report.cash_agrees and report.sound and report.cash_held_cents == 104500
    assert report.rows_checked == report.day_rows == raw.scalar(
        "SELECT count(*) FROM journal WHERE business_date = '2023-11-15'")


def test_the_report_opens_from_the_close_recorded_not_from_the_history(app, clock, db, raw, run, day):
    """The day before's rows are not read: a close recorded wrongly (behind its triggers) shows in the next day's
    proof, and a row of the day before edited does not (a full verify finds it)."""
    _close(run, db, clock, day)
    _second_day(run, db, clock, day)
    raw.without_immutability("UPDATE journal SET memo = 'edited' WHERE id = 3")  # a row of the 14th
    report = run(end_of_day.report(db, "2023-11-15"))
    assert report.sound and report.rows_checked < raw.all_rows_count()
    assert run(end_of_day.report(db, "2023-11-14")).verify_problems[0].startswith("journal row 3: hash")
    raw.script("DROP TRIGGER closing_cash_no_update; UPDATE closing_cash SET balance_cents = -1;",
               "ALTER TABLE closing_cash DISABLE TRIGGER USER; UPDATE closing_cash SET balance_cents = -1; "
               "ALTER TABLE closing_cash ENABLE TRIGGER USER;")
    report = run(end_of_day.report(db, "2023-11-15"))
    assert report.vault_open_cents == 1 and not report.cash_agrees and not report.sound


@pytest.mark.parametrize("account", ["C2", "C1"])  # C2's only row of the day; C1's last of several
def test_the_reports_verification_catches_an_edited_row_of_its_day(db, raw, run, day, account):
    row = raw.scalar(f"SELECT max(id) FROM journal WHERE account_number = '{account}'")
    raw.without_immutability(f"UPDATE journal SET actor = 'someone else' WHERE id = {row}")
    report = run(end_of_day.report(db, "2023-11-14"))
    assert report.verify_problems == [f"journal row {row}: hash does not match its fields or its chain (edited?)"]
    assert not report.sound


def test_a_day_over_many_accounts_checks_each_first_row_against_the_row_before(clock, db, raw, run, day):
    """Each account's first row of the day is checked against its row of a day before (all read by one statement
    before the day's rows): 1,000 accounts, the first rows of three edited, each named once, in order."""
    numbers = [f"W{i:04d}" for i in range(1000)]
    for number in numbers:
        run(accounts.deposit(db, number, 100, "token:nightly", now=clock() - 86400))  # the 13th
    for number in numbers:
        run(accounts.deposit(db, number, 100, "token:nightly", now=clock()))
    assert run(end_of_day.report(db, "2023-11-14")).verify_problems == []
    edited = [raw.scalar(f"SELECT max(id) FROM journal WHERE account_number = '{numbers[i]}'") for i in (3, 555, 999)]
    raw.without_immutability(f"UPDATE journal SET balance_after_cents = 201 WHERE id IN {tuple(edited)}")
    report = run(end_of_day.report(db, "2023-11-14"))
    assert report.verify_problems == [f"journal row {row}: balance after is 201, the journal sums to 200"
                                      for row in edited]


def test_a_row_of_the_day_after_a_row_of_another_date_is_checked_against_it(app, clock, db, raw, run, day):
    """A server whose clock ran behind, around midnight: a row of the 15th between two of the 14th on one account.
    Each row of the day is still checked against the row just before it on its account."""
    run(accounts.deposit(db, "C2", 100, "token:nightly", now=clock()))
    later = run(accounts.deposit(db, "C2", 100, "token:nightly", now=clock() + 86400))  # the 15th
    run(accounts.deposit(db, "C2", 100, "token:nightly", now=clock()))
    assert raw.scalar("SELECT business_date FROM journal WHERE id = ?", (later.id,)) == "2023-11-15"
    report = run(end_of_day.report(db, "2023-11-14"))
    assert report.verify_problems == [] and report.sound


def test_days_closed_before_the_migration_get_the_close_the_journal_gives(app, clock, db, raw, run, day):
    """Migration 0016/0009 fills closing_cash for the days closed before it from each cash account's running sum:
    the same rows Close the day records."""
    _close(run, db, clock, day)
    _second_day(run, db, clock, day)
    run(end_of_day.close_day(db, day[1], now=clock()))
    recorded = raw.rows("SELECT * FROM closing_cash ORDER BY 1, 2")
    assert [row[0] for row in recorded] == ["2023-11-14", "2023-11-15"]
    engine = "postgresql" if raw.is_postgres else "sqlite"
    migration = next(m for m in migrations(engine) if "a_ledger_that_scales" in m.name).sql
    fill = migration[migration.index("WITH per_day AS"):]
    fill = fill[:fill.index(";") + 1]
    raw.script("DROP TRIGGER closing_cash_no_delete; DELETE FROM closing_cash;",
               "ALTER TABLE closing_cash DISABLE TRIGGER USER; DELETE FROM closing_cash; "
               "ALTER TABLE closing_cash ENABLE TRIGGER USER;")
    raw.execute(fill)
    assert raw.rows("SELECT * FROM closing_cash ORDER BY 1, 2") == recorded
