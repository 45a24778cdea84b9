"""Cash drawers and the vault, in the ledger: open with a float from the vault, cash through the drawer, vault
movements confirmed by another person, a blind close with its variance, sign-off; cash never below zero."""
import pytest

from atm_web.cash import cash_desk, drawers, vault
from atm_web.cash.refusals import DrawerRefused
from atm_web.core.rules import CASH_SHORT, CLEARING
from atm_web.ledger import accounts, reversals, verification
from atm_web.ledger.refusals import CashAtTheCounter, DrawerNotOpen, NotEnoughCash

from conftest import add_teller

TOLERANCE = 500


@pytest.fixture
def staff(app):
    return add_teller(app, "tina"), add_teller(app, "ada", "admin"), add_teller(app, "bob", "admin")


def cash(raw) -> int:
    """Every note and coin the branch holds: the vault and every drawer."""
    return -raw.scalar("SELECT coalesce(sum(balance_cents), 0) FROM accounts WHERE kind IN ('vault', 'drawer')")


def sound(db, raw, run):
    assert run(verification.verify(db))[0] == []
    assert raw.scalar("SELECT sum(balance_cents) FROM accounts") == 0


def test_a_drawer_opens_with_a_float_from_the_vault_and_never_holds_less_than_nothing(db, raw, run, staff):
    tina, ada, _ = staff
    rows = raw.all_rows_count()
    with pytest.raises(NotEnoughCash, match="Not enough cash in the vault"):
        run(drawers.open_drawer(db, tina, {2000: 1}))
    assert raw.all_rows_count() == rows and raw.scalar("SELECT COUNT(*) FROM drawer_sessions") == 0
    run(vault.ship_cash(db, "in", 100000, "CIT 0001", ada))
    session = run(drawers.open_drawer(db, tina, {2000: 10, 100: 5}))
    assert (session.status, session.opening_cents, session.counts_at_open) == ("open", 20500, {2000: 10, 100: 5})
    assert run(vault.cash_held(db)) == 79500 and run(vault.cash_held(db, session.account_number)) == 20500
    with pytest.raises(DrawerRefused, match="already have a drawer"):
        run(drawers.open_drawer(db, tina, {}))
    run(accounts.deposit(db, "C1", 5000, tina.actor, counter=session.account_number))
    assert run(vault.cash_held(db, session.account_number)) == 25500
    rows = raw.all_rows_count()
    with pytest.raises(NotEnoughCash, match=r"^Not enough cash in your drawer$"):
        run(accounts.withdraw(db, "C1", 25600, tina.actor, counter=session.account_number))
    assert raw.all_rows_count() == rows
    assert run(accounts.withdraw(db, "C1", 25500, tina.actor, counter=session.account_number)).balance_after_cents \
        == -20500
    assert run(vault.cash_held(db, session.account_number)) == 0 and cash(raw) == 79500
    sound(db, raw, run)


def test_a_blind_close_posts_the_variance_returns_the_count_and_waits_for_another_admins_sign_off(
        db, raw, run, staff):
    tina, ada, bob = staff
    run(vault.ship_cash(db, "in", 100000, "CIT 0001", ada))
    session = run(drawers.open_drawer(db, tina, {10000: 2}))
    run(accounts.deposit(db, "C1", 3000, tina.actor, counter=session.account_number))
    closed = run(drawers.close_drawer(db, tina, {10000: 2, 2000: 1}, TOLERANCE))  # 220.00 of 230.00: 10.00 short
    assert (closed.status, closed.expected_cents, closed.counted_cents, closed.variance_cents) == \
        ("pending_signoff", 23000, 22000, -1000)
    assert run(vault.cash_held(db, session.account_number)) == 0
    assert run(vault.cash_held(db)) == 102000
    assert raw.scalar("SELECT balance_cents FROM accounts WHERE account_number = ?", (CASH_SHORT,)) == -1000
    rows = raw.all_rows_count()
    with pytest.raises(DrawerNotOpen):  # the database refuses cash through a drawer not open
        run(accounts.deposit(db, "C1", 100, tina.actor, counter=session.account_number))
    with pytest.raises(DrawerRefused, match="already have a drawer"):
        run(drawers.open_drawer(db, tina, {}))
    assert raw.all_rows_count() == rows
    with pytest.raises(DrawerRefused, match="note"):
        run(drawers.sign_off(db, session.id, ada, "  "))
    signed = run(drawers.sign_off(db, session.id, ada, "counted again: a 10.00 note paid twice"))
    assert (signed.status, signed.signed_off_by) == ("closed", "ada")
    with pytest.raises(DrawerRefused, match="not waiting"):
        run(drawers.sign_off(db, session.id, bob, "again"))
    own = run(drawers.open_drawer(db, ada, {}))
    run(drawers.close_drawer(db, ada, {100: 600}, TOLERANCE))  # 6.00 over
    with pytest.raises(DrawerRefused, match="Another supervisor"):
        run(drawers.sign_off(db, own.id, ada, "mine"))
    assert run(drawers.sign_off(db, own.id, bob, "found in the tray")).status == "closed"
    sound(db, raw, run)


def test_a_variance_within_tolerance_closes_at_once(db, raw, run, staff):
    tina, ada, _ = staff
    run(vault.ship_cash(db, "in", 10000, "CIT", ada))
    run(drawers.open_drawer(db, tina, {1000: 5}))
    closed = run(drawers.close_drawer(db, tina, {1000: 5, 500: 1}, TOLERANCE))  # exactly 5.00 over
    assert (closed.status, closed.variance_cents) == ("closed", 500)
    assert run(vault.cash_held(db)) == 10500
    sound(db, raw, run)


def test_vault_movements_wait_for_another_person_and_total_cash_never_changes(db, raw, run, staff):
    tina, ada, _ = staff
    run(vault.ship_cash(db, "in", 50000, "CIT", ada))
    session = run(drawers.open_drawer(db, tina, {10000: 1}))
    total = cash(raw)
    more = run(vault.request_movement(db, tina, "to_drawer", 20000))
    back = run(vault.request_movement(db, tina, "to_vault", 5000))
    assert (more.status, cash(raw), run(vault.cash_held(db, session.account_number))) == ("pending", total, 10000)
    with pytest.raises(DrawerRefused, match="Another administrator"):
        run(vault.decide_movement(db, more.id, tina, True))
    assert run(vault.decide_movement(db, more.id, ada, True)).status == "confirmed"
    assert cash(raw) == total and run(vault.cash_held(db, session.account_number)) == 30000
    assert run(vault.decide_movement(db, back.id, ada, False)).status == "rejected"
    with pytest.raises(DrawerRefused, match="not pending"):
        run(vault.decide_movement(db, back.id, ada, True))
    too_much = run(vault.request_movement(db, tina, "to_drawer", 40000))  # the vault holds 200.00
    with pytest.raises(NotEnoughCash, match="the vault"):
        run(vault.decide_movement(db, too_much.id, ada, True))
    left = run(vault.request_movement(db, tina, "to_vault", 100))
    run(drawers.close_drawer(db, tina, {10000: 3}, TOLERANCE))
    assert run(vault.get_movement(db, left.id)).status == "cancelled"  # the close came first
    assert cash(raw) == total
    with pytest.raises(DrawerRefused, match="not open"):
        run(vault.request_movement(db, tina, "to_vault", 100))
    sound(db, raw, run)


def test_shipments_move_cash_between_the_vault_and_clearing(db, raw, run, staff):
    _, ada, _ = staff
    run(vault.ship_cash(db, "in", 70000, "CIT 7", ada))
    run(vault.ship_cash(db, "out", 20000, "to the central bank", ada))
    assert run(vault.cash_held(db)) == 50000
    assert raw.scalar("SELECT balance_cents FROM accounts WHERE account_number = ?", (CLEARING,)) == 50000
    with pytest.raises(NotEnoughCash, match="the vault"):
        run(vault.ship_cash(db, "out", 50001, "too much", ada))
    with pytest.raises(DrawerRefused, match="reference"):
        run(vault.ship_cash(db, "in", 100, "", ada))
    assert raw.rows("SELECT action, detail FROM audit_log ORDER BY id")[-2:] == [
        ("cash received", "70000 cents: CIT 7"), ("cash sent", "20000 cents: to the central bank")]
    sound(db, raw, run)


def test_a_reversal_of_cash_pays_through_the_drawer_of_the_teller_who_asks_never_another(db, raw, run, staff, clock):
    """Issue 19, point 2: a reversal that moves cash pays from (or into) the drawer of the teller who asks for it;
    it never takes another teller's open drawer, and the API (no drawer) cannot reverse cash."""
    tina, ada, bob = staff
    run(vault.ship_cash(db, "in", 20000, "CIT", ada))
    session = run(drawers.open_drawer(db, tina, {}))
    deposit = run(accounts.deposit(db, "C1", 4000, tina.actor, counter=session.account_number))
    with pytest.raises(CashAtTheCounter, match="moved cash"):
        run(reversals.reverse(db, deposit.id, "wrong account", ada.actor))  # the API's way: no drawer to pay
    with pytest.raises(DrawerNotOpen, match="bob's drawer is not open"):
        run(cash_desk.reverse_at_counter(db, deposit.id, "wrong account", bob, now=clock(), threshold_cents=10**8))
    bobs = run(drawers.open_drawer(db, bob, {1000: 10}))
    run(cash_desk.reverse_at_counter(db, deposit.id, "wrong account", bob, now=clock(), threshold_cents=10**8))
    assert run(vault.cash_held(db, session.account_number)) == 4000  # tina's drawer untouched
    assert run(vault.cash_held(db, bobs.account_number)) == 6000  # the 40.00 handed back out of bob's
    assert raw.rows("SELECT account_number, kind FROM journal WHERE memo LIKE 'reverses%' ORDER BY id") == [
        ("C1", "reversal_debit"), (bobs.account_number, "credit")]
    assert raw.rows("SELECT account_number, direction, amount_cents FROM customer_cash ORDER BY entry_id") == [
        ("C1", "in", 4000), ("C1", "out", 4000)]  # both count for the large-cash rule
    sound(db, raw, run)


def test_an_admin_closes_a_drawer_left_open_for_its_teller_and_another_signs_it_off(db, raw, run, staff):
    """A teller who left with the drawer open would keep the day from closing: an administrator counts and closes
    it for them, blind as ever; a sign-off then needs a third person."""
    tina, ada, bob = staff
    run(vault.ship_cash(db, "in", 10000, "CIT", ada))
    session = run(drawers.open_drawer(db, tina, {1000: 5}))
    with pytest.raises(DrawerRefused, match="only an administrator"):
        run(drawers.close_drawer(db, tina, {}, TOLERANCE, session_id=session.id))
    with pytest.raises(DrawerRefused, match="only an administrator"):  # nor one's own, this way
        run(drawers.close_drawer(db, ada, {}, TOLERANCE, session_id=run(drawers.open_drawer(db, ada, {})).id))
    closed = run(drawers.close_drawer(db, ada, {1000: 4}, TOLERANCE, session_id=session.id))  # 10.00 short
    assert (closed.status, closed.closed_by, closed.variance_cents) == ("pending_signoff", "ada", -1000)
    with pytest.raises(DrawerRefused, match="Another supervisor"):
        run(drawers.sign_off(db, session.id, ada, "I counted it"))
    assert run(drawers.sign_off(db, session.id, bob, "checked")).status == "closed"
    assert ("drawer closed for tina", "drawer 1") in raw.rows("SELECT action, target FROM audit_log")
    sound(db, raw, run)


def test_the_database_itself_refuses_cash_through_a_closed_drawer(db, raw, run, staff):
    """Issue 19, point 14: the trigger drawer_must_be_open, tested with a drawer closed for good (not only one
    waiting for a sign-off): a row on its account is refused by the database, whoever writes it."""
    tina, ada, _ = staff
    run(vault.ship_cash(db, "in", 10000, "CIT", ada))
    session = run(drawers.open_drawer(db, tina, {1000: 2}))
    assert run(drawers.close_drawer(db, tina, {1000: 2}, TOLERANCE)).status == "closed"
    rows = raw.all_rows_count()
    for kind in ("deposit", "withdrawal"):
        with pytest.raises(DrawerNotOpen):
            run(accounts.deposit(db, "C1", 100, tina.actor, counter=session.account_number) if kind == "deposit"
                else accounts.withdraw(db, "C1", 100, tina.actor, counter=session.account_number))
    with pytest.raises(raw.IntegrityError, match="drawer_not_open"):  # behind the app's back, too
        raw.execute("INSERT INTO journal (account_number, kind, amount_cents, balance_after_cents, created_at, "
                    "actor, memo) VALUES (?, 'debit', 100, -100, '2026-01-01T00:00:00Z', 'x', '')",
                    (session.account_number,))
    assert raw.all_rows_count() == rows
