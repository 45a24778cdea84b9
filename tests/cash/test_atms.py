"""ATMs (cash/atms.py, replenishment.py, atm_journal.py): registered with 1 to 4 cassettes, each with a cash account
of its own; replenished by a blind count and a load that a second person confirms (carried out in one transaction:
the counted cash back to the vault, the variance to cash over or short, the load out of the vault); the expected
notes per cassette never below zero; every event in the ATM's append-only, hash-chained journal; both engines."""
import pytest

from atm_web.approvals.decisions import decide
from atm_web.approvals.refusals import SelfApproval
from atm_web.cash import atm_journal, atms, end_of_day, replenishment, vault
from atm_web.cash.refusals import AtmRefused, DrawerRefused
from atm_web.cash.replenishment import Count
from atm_web.ledger import verification
from atm_web.ledger.refusals import NotEnoughCash

from conftest import add_teller


@pytest.fixture
def branch(app, db, run):
    """ada (admin, who replenishes), sam and sue (supervisors), tina (teller); 20,000.00 in the vault."""
    people = {name: add_teller(app, name, role) for name, role in
              (("ada", "admin"), ("sam", "supervisor"), ("sue", "supervisor"), ("tina", "teller"))}
    assert run(vault.ship_cash(db, "in", 2_000_000, "CIT 1", people["ada"]))
    return people


def register(db, run, people, clock, denominations=(5000, 2000), name="Lobby"):
    return run(atms.register_atm(db, name, "Main Street branch, lobby", list(denominations), people["ada"], clock()))


def counted(cassettes, deposit=None, retract=None):
    return Count(cassettes, deposit or {}, retract or {})


def replenish(db, run, people, clock, atm, count, load, confirmer="sam"):
    held = run(replenishment.enter(db, atm.id, count, load, people["ada"], clock()))
    return held, run(decide(db, held.id, people[confirmer], True, "counted with ada", now=clock()))


@pytest.mark.parametrize("name, denominations, words", [
    ("", (5000,), "Name: 1 to 60"), ("Lobby", (), "1 to 4 cassettes"), ("Lobby", (5000,) * 5, "1 to 4 cassettes"),
    ("Lobby", (25,), "notes of one of the branch's denominations"), ("Lobby", (3000,), "denominations")])
def test_an_atm_is_registered_with_1_to_4_cassettes_of_the_branchs_notes(db, run, raw, branch, clock, name,
                                                                         denominations, words):
    with pytest.raises(AtmRefused, match=words):
        register(db, run, branch, clock, denominations, name)
    assert raw.scalar("SELECT COUNT(*) FROM atms") == 0


def test_a_registered_atm_has_its_cash_account_empty_cassettes_and_a_journal(db, run, raw, branch, clock):
    atm = register(db, run, branch, clock, (10000, 5000, 2000, 2000))
    assert (atm.id, atm.account_number, atm.cash_cents) == (1, "@atm-1", 0)
    assert [(c.position, c.denomination_cents, c.notes) for c in atm.cassettes] == [
        (1, 10000, 0), (2, 5000, 0), (3, 2000, 0), (4, 2000, 0)]
    assert raw.rows("SELECT kind, balance_cents FROM accounts WHERE account_number = '@atm-1'") == [("drawer", 0)]
    (event,) = run(atm_journal.events(db, atm.id))
    assert (event.seq, event.event, event.actor) == (1, "registered", "teller:ada")
    with pytest.raises(AtmRefused, match="registered already"):
        register(db, run, branch, clock, (5000,))
    assert raw.rows("SELECT action, target FROM audit_log WHERE action = 'atm registered'") == [
        ("atm registered", "atm 1")]


def test_a_replenishment_waits_for_another_person_then_moves_the_cash_in_one_transaction(db, run, raw, branch,
                                                                                        clock):
    atm = register(db, run, branch, clock)
    rows = raw.all_rows_count()
    held = run(replenishment.enter(db, atm.id, counted({1: 0, 2: 0}), {1: 100, 2: 50}, branch["ada"], clock()))
    assert held.kind == "atm_replenishment" and held.status == "pending"
    assert raw.all_rows_count() == rows and run(vault.cash_held(db)) == 2_000_000  # nothing moved yet
    with pytest.raises(SelfApproval):
        run(decide(db, held.id, branch["ada"], True, "mine", now=clock()))
    with pytest.raises(AtmRefused, match="waiting already"):
        run(replenishment.enter(db, atm.id, counted({1: 0, 2: 0}), {1: 1}, branch["ada"], clock()))
    with pytest.raises(DrawerRefused, match="while an ATM replenishment waits for its confirmation"):
        run(end_of_day.close_day(db, branch["ada"], now=clock()))
    done = run(decide(db, held.id, branch["sam"], True, "counted with ada", now=clock()))
    assert done.outcome == "approved"
    atm = run(atms.get_atm(db, atm.id))
    assert atm.cash_cents == 600_000 and [c.notes for c in atm.cassettes] == [100, 50]
    assert run(vault.cash_held(db)) == 2_000_000 - 600_000
    (last,) = raw.rows("SELECT status, expected_cents, variance_cents, confirmed_by FROM atm_replenishments")
    assert last == ("done", 0, 0, "sam")
    assert [e.event for e in run(atm_journal.events(db, atm.id))] == ["replenished", "replenishment entered",
                                                                      "registered"]
    assert run(verification.verify(db))[0] == []


def test_a_blind_count_20_short_goes_to_cash_short_and_back_to_the_vault_and_waits_for_a_sign_off(db, run, raw,
                                                                                                  branch, clock):
    atm = register(db, run, branch, clock)
    replenish(db, run, branch, clock, atm, counted({1: 0, 2: 0}), {1: 100, 2: 50})  # 6,000.00 expected in it
    vault_before = run(vault.cash_held(db))
    # found: 99 fifties and 50 twenties in the cassettes, a 20 and a 10 in the deposit bin: 5,980.00
    _, done = replenish(db, run, branch, clock, atm, counted({1: 99, 2: 50}, {2000: 1, 1000: 1}),
                           {1: 40, 2: 40})
    assert done.outcome == "approved"
    assert raw.rows("SELECT status, counted_cents, expected_cents, variance_cents FROM atm_replenishments "
                    "ORDER BY id DESC LIMIT 1") == [("pending_signoff", 598_000, 600_000, -2_000)]
    assert raw.scalar("SELECT balance_cents FROM accounts WHERE account_number = '@cash-short'") == -2_000  # a debit
    assert run(vault.cash_held(db)) == vault_before + 598_000 - 280_000  # the count back, the load out
    assert run(atms.get_atm(db, atm.id)).cash_cents == 280_000
    with pytest.raises(DrawerRefused, match="ATM replenishment waits"):  # the day waits for the sign-off
        run(end_of_day.close_day(db, branch["ada"], now=clock()))
    signoff = raw.rows("SELECT id, kind, requested_by FROM approvals WHERE status = 'pending'")
    assert [(kind) for _, kind, _ in signoff] == ["atm_signoff"]
    with pytest.raises(AtmRefused, match="Another supervisor"):  # sam confirmed it
        run(decide(db, signoff[0][0], branch["sam"], True, "seen", now=clock()))
    assert run(decide(db, signoff[0][0], branch["sue"], True, "recount matched", now=clock())).outcome == "approved"
    assert raw.scalar("SELECT status FROM atm_replenishments ORDER BY id DESC LIMIT 1") == "done"
    assert run(verification.verify(db))[0] == []


def test_a_load_the_vault_cannot_cover_is_refused_and_nothing_is_written(db, run, raw, branch, clock):
    atm = register(db, run, branch, clock, (10000,))
    rows = raw.all_rows_count()
    held = run(replenishment.enter(db, atm.id, counted({1: 0}), {1: 201}, branch["ada"], clock()))  # 20,100.00
    with pytest.raises(NotEnoughCash):
        run(decide(db, held.id, branch["sam"], True, "ok", now=clock()))
    assert raw.all_rows_count() == rows and run(atms.get_atm(db, atm.id)).cassettes[0].notes == 0
    assert raw.scalar("SELECT status FROM approvals WHERE id = ?", (held.id,)) == "pending"
    declined = run(decide(db, held.id, branch["sam"], False, "recount", now=clock()))
    assert declined.outcome == "declined"
    assert raw.scalar("SELECT status FROM atm_replenishments") == "cancelled"
    again = run(replenishment.enter(db, atm.id, counted({1: 0}), {1: 200}, branch["ada"], clock()))
    assert run(decide(db, again.id, branch["sue"], True, "ok", now=clock())).outcome == "approved"
    assert run(vault.cash_held(db)) == 0


def test_a_teller_does_not_confirm_and_bad_counts_are_refused(db, run, raw, branch, clock):
    atm = register(db, run, branch, clock)
    for count, load, words in ((counted({1: -1, 2: 0}), {}, "whole number"), (counted({3: 1}), {}, "only what"),
                               (counted({1: 0}, {25: 1}), {}, "only what"), (counted({1: 0}), {1: 10_001}, "10,000"),
                               (counted({1: True}), {}, "whole number")):
        with pytest.raises(AtmRefused, match=words):
            run(replenishment.enter(db, atm.id, count, load, branch["ada"], clock()))
    assert raw.scalar("SELECT COUNT(*) FROM atm_replenishments") == 0
    held = run(replenishment.enter(db, atm.id, counted({}), {1: 1}, branch["ada"], clock()))
    from atm_web.approvals.refusals import ApprovalRefused
    with pytest.raises(ApprovalRefused):
        run(decide(db, held.id, branch["tina"], True, "me", now=clock()))


def test_the_database_keeps_cassettes_at_or_above_zero_and_the_journal_append_only(db, run, raw, branch, clock):
    atm = register(db, run, branch, clock)
    with pytest.raises(raw.IntegrityError):
        raw.execute("UPDATE atm_cassettes SET notes = -1 WHERE atm_id = ?", (atm.id,))
    for sql in ("UPDATE atm_journal SET detail = 'x'", "DELETE FROM atm_journal"):
        with pytest.raises(Exception, match="immutable"):
            raw.execute(sql)


def test_verify_finds_an_atm_journal_row_edited_or_removed(db, run, raw, branch, clock):
    atm = register(db, run, branch, clock)
    replenish(db, run, branch, clock, atm, counted({1: 0, 2: 0}), {1: 10})
    assert run(verification.verify(db))[0] == []
    if raw.is_postgres:
        raw.execute("ALTER TABLE atm_journal DISABLE TRIGGER USER")
        raw.execute("UPDATE atm_journal SET detail = 'loaded nothing' WHERE seq = 3")
        raw.execute("DELETE FROM atm_journal WHERE seq = 2")
        raw.execute("ALTER TABLE atm_journal ENABLE TRIGGER USER")
    else:
        raw.script("DROP TRIGGER atm_journal_no_update; DROP TRIGGER atm_journal_no_delete; "
                   "UPDATE atm_journal SET detail = 'loaded nothing' WHERE seq = 3; "
                   "DELETE FROM atm_journal WHERE seq = 2;", "")
    problems = run(verification.verify(db))[0]
    assert "ATM 1 journal: row 3 where 2 should be (removed?)" in problems
    assert "ATM 1 journal: row 3's hash does not match its fields or its chain (edited?)" in problems


def test_the_end_of_day_reports_each_atm_beside_the_drawers_and_the_proof_holds(db, run, raw, branch, clock):
    atm = register(db, run, branch, clock)
    replenish(db, run, branch, clock, atm, counted({1: 0, 2: 0}), {1: 100, 2: 50})  # 6,000.00 in
    replenish(db, run, branch, clock, atm, counted({1: 99, 2: 50}, {2000: 1, 1000: 1}), {1: 40, 2: 40})  # 20 short
    signoff, = raw.rows("SELECT id FROM approvals WHERE kind = 'atm_signoff' AND status = 'pending'")
    run(decide(db, signoff[0], branch["sue"], True, "recounted", now=clock()))
    today = run(end_of_day.current_business_date(db, now=clock()))
    day = run(end_of_day.report(db, today))
    assert day.sound and day.cash_agrees
    (line,) = day.atms
    assert (line.atm_id, line.open_cents, line.loaded_cents, line.taken_out_cents, line.variance_cents,
            line.close_cents, line.paid_out_cents) == (1, 0, 880_000, 600_000, -2_000, 280_000, 0)
    assert end_of_day.to_json(day)["atms"] == [{
        "atm": 1, "name": "Lobby", "open": 0, "close": 2800, "paid_out": 0, "deposited": 0, "loaded": 8800,
        "taken_out": 6000, "variance": -20}]
    rows = end_of_day.to_csv(day, "UTC").decode().splitlines()
    assert rows[-1] == f"{today},atm 1,Lobby,,,0.00,0.00,0.00,8800.00,6000.00,2800.00,,-20.00,"
    closed, _ = run(end_of_day.close_day(db, branch["ada"], now=clock()))
    assert closed == today
    next_day = run(end_of_day.report(db, run(end_of_day.current_business_date(db, now=clock()))))
    assert [(a.atm_id, a.open_cents, a.close_cents) for a in next_day.atms] == [(1, 280_000, 280_000)]
    assert next_day.cash_agrees


def test_days_not_closed_between_carry_an_atms_cash_from_one_report_to_the_next(db, run, branch, clock):
    atm = register(db, run, branch, clock)
    replenish(db, run, branch, clock, atm, counted({1: 0, 2: 0}), {1: 10})
    first = run(end_of_day.current_business_date(db, now=clock()))
    clock.advance(24 * 3600)  # the first day never closed
    replenish(db, run, branch, clock, atm, counted({1: 10, 2: 0}), {1: 20, 2: 5})
    second = run(end_of_day.current_business_date(db, now=clock()))
    assert second > first
    one, two = run(end_of_day.report(db, first)), run(end_of_day.report(db, second))
    assert one.cash_agrees and two.cash_agrees
    assert [(a.open_cents, a.close_cents) for a in one.atms] == [(0, 50_000)]
    assert [(a.open_cents, a.loaded_cents, a.taken_out_cents, a.close_cents) for a in two.atms] == [
        (50_000, 110_000, 50_000, 110_000)]


def test_an_atms_dispenser_is_the_screen_unless_a_devices_agent_reports(db, run, raw, branch, clock):
    assert register(db, run, branch, clock).dispenser == "screen"
    device = run(atms.register_atm(db, "Hall", "Side door", [5000], branch["ada"], clock(), "device"))
    assert device.dispenser == "device"
    with pytest.raises(AtmRefused, match="screen's or a device's"):
        run(atms.register_atm(db, "Yard", "Outside", [5000], branch["ada"], clock(), "robot"))
    assert raw.rows("SELECT name, dispenser FROM atms ORDER BY id") == [("Lobby", "screen"), ("Hall", "device")]
