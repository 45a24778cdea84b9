"""Cash paid out at an ATM in two phases (cash/atm_withdrawals.py, note_plans.py): the notes chosen as the fewest the
cassettes can pay, refused before anything is held when they cannot; a hold and the notes reserved in one
transaction; the dispenser's result captured once (all, part or nothing), retracted cash voided into the retract
bin, a result that never comes expired; the card's daily limit and the customer's large cash; both engines."""
import asyncio
import dataclasses

import pytest

from atm_web.approvals.decisions import decide
from atm_web.cash import atm_withdrawals, atms, replenishment
from atm_web.cash.atm_withdrawals import AboveDailyLimit, CannotPay, SeeATeller
from atm_web.cash.note_plans import Free, nearest, plan
from atm_web.cash.refusals import AtmRefused
from atm_web.cash.replenishment import Count
from atm_web.ledger import verification
from atm_web.ledger.refusals import InsufficientFunds

from conftest import load_atm as load

# The notes

@pytest.mark.parametrize("cassettes, amount, expected", [
    ([(1, 5000, 100), (2, 2000, 100)], 6000, {2: 3}),  # three 20s: greedy (a 50 first) could not pay it
    ([(1, 5000, 100), (2, 2000, 100)], 11000, {1: 1, 2: 3}),
    ([(1, 5000, 100), (2, 2000, 100)], 20000, {1: 4}),  # the fewest notes
    ([(1, 5000, 1), (2, 2000, 100)], 19000, {1: 1, 2: 7}),  # never more than a cassette holds (3 x 50 + 2 x 20)
    ([(1, 10000, 100), (2, 5000, 100), (3, 2000, 100), (4, 1000, 100)], 18000, {1: 1, 2: 1, 3: 1, 4: 1}),
    ([(1, 5000, 100), (2, 2000, 100)], 3000, None),
    ([(1, 2000, 2)], 6000, None),  # not enough notes
    ([(1, 2000, 100)], 82000, None),  # 41 notes: above ATM_MAX_NOTES
    ([(1, 2000, 100)], 80000, {1: 40}),
    ([(1, 2000, 0)], 2000, None),
])
def test_the_notes_are_the_fewest_the_cassettes_can_pay(cassettes, amount, expected):
    assert plan([Free(*c) for c in cassettes], amount, 40) == expected


def test_an_amount_they_cannot_pay_names_the_nearest_they_can():
    cassettes = [Free(1, 5000, 100), Free(2, 2000, 100)]
    assert nearest(cassettes, 3000, 40) == [2000, 4000]
    assert nearest(cassettes, 1000, 40) == [2000]
    assert nearest([Free(1, 2000, 3)], 7000, 40) == [6000]
    assert nearest([Free(1, 2000, 0)], 7000, 40) == []


# At the ATM

def cassettes(db, run, atm_id):
    return [(c.notes, c.reserved) for c in run(atms.get_atm(db, atm_id)).cassettes]


def withdraw(db, run, b, amount, clock, number="C1"):
    return run(atm_withdrawals.withdraw(db, b["atm"].id, b["card"].id, number, amount, "atm:1", now=clock()))


def balance_and_held(raw, number="C1"):
    return raw.rows("SELECT balance_cents, held_cents FROM accounts WHERE account_number = ?", (number,))[0]


def test_a_withdrawal_holds_and_reserves_then_the_cash_taken_posts_it_once(atm_bank, db, run, raw, clock):
    b = atm_bank
    w = withdraw(db, run, b, 11000, clock)
    assert (w.status, w.notes, w.amount_cents) == ("pending", {1: 1, 2: 3}, 11000)
    assert balance_and_held(raw) == (200000, 11000)  # held, not posted
    assert cassettes(db, run, b["atm"].id) == [(100, 1), (100, 3)]
    done = run(atm_withdrawals.report(db, b["atm"].id, w.trace, "taken", "atm:1", now=clock()))
    assert (done.status, done.paid_cents, done.replayed) == ("dispensed", 11000, False)
    assert balance_and_held(raw) == (189000, 0)
    assert cassettes(db, run, b["atm"].id) == [(99, 0), (97, 0)]
    assert run(atms.get_atm(db, b["atm"].id)).cash_cents == 700000 - 11000
    assert raw.rows("SELECT kind, amount_cents, memo FROM journal WHERE account_number = '@atm-1' ORDER BY id DESC "
                    "LIMIT 1") == [("credit", 11000, "withdrawal C1")]
    assert raw.rows("SELECT direction, amount_cents FROM customer_cash WHERE account_number = 'C1' "
                    "AND direction = 'out'") == [("out", 11000)]
    rows = raw.all_rows_count()
    again = run(atm_withdrawals.report(db, b["atm"].id, w.trace, "taken", "atm:1", now=clock()))
    assert (again.status, again.replayed) == ("dispensed", True) and raw.all_rows_count() == rows
    with pytest.raises(AtmRefused, match="ended dispensed already"):
        run(atm_withdrawals.report(db, b["atm"].id, w.trace, "retracted", "atm:1", now=clock()))
    assert raw.all_rows_count() == rows
    events = [e for e, in raw.rows("SELECT event FROM atm_journal WHERE atm_id = 1 ORDER BY seq")]
    assert events[-2:] == ["cash held", "cash dispensed"]
    assert run(verification.verify(db))[0] == []


def test_a_partial_dispense_posts_only_what_was_paid(atm_bank, db, run, raw, clock):
    b = atm_bank
    w = withdraw(db, run, b, 11000, clock)  # one 50, three 20s
    with pytest.raises(AtmRefused, match="at most those of trace"):
        run(atm_withdrawals.report(db, b["atm"].id, w.trace, "partial", "atm:1", paid_notes={2: 4}, now=clock()))
    done = run(atm_withdrawals.report(db, b["atm"].id, w.trace, "partial", "atm:1", paid_notes={1: 1, 2: 1},
                                      now=clock()))
    assert (done.status, done.paid_cents) == ("partial", 7000)
    assert balance_and_held(raw) == (193000, 0)  # 70.00 posted, the other 40.00 released
    assert cassettes(db, run, b["atm"].id) == [(99, 0), (99, 0)]
    assert raw.rows("SELECT status, captured_cents FROM holds") == [("captured", 7000)]
    rows = raw.all_rows_count()
    again = run(atm_withdrawals.report(db, b["atm"].id, w.trace, "partial", "atm:1", paid_notes={1: 1, 2: 1},
                                       now=clock()))
    assert (again.status, again.paid_cents, again.replayed) == ("partial", 7000, True)
    with pytest.raises(AtmRefused, match="ended partial already"):  # another count of the same trace
        run(atm_withdrawals.report(db, b["atm"].id, w.trace, "partial", "atm:1", paid_notes={2: 1}, now=clock()))
    assert raw.all_rows_count() == rows


@pytest.mark.parametrize("outcome, notes_after", [("failed", [(100, 0), (100, 0)]),
                                                  ("retracted", [(99, 0), (97, 0)])])
def test_cash_not_paid_voids_the_hold_and_retracted_notes_leave_the_cassettes(atm_bank, db, run, raw, clock,
                                                                           outcome, notes_after):
    b = atm_bank
    w = withdraw(db, run, b, 11000, clock)
    done = run(atm_withdrawals.report(db, b["atm"].id, w.trace, outcome, "atm:1", now=clock()))
    assert (done.status, done.paid_cents) == (outcome, None)
    assert balance_and_held(raw) == (200000, 0)
    assert cassettes(db, run, b["atm"].id) == notes_after
    assert run(atms.get_atm(db, b["atm"].id)).cash_cents == 700000  # the ATM holds it all still
    assert raw.rows("SELECT status FROM holds") == [("voided",)]
    # the next count finds it where it is: in the cassettes, or 110.00 in the retract bin; no variance either way
    retract = {5000: 1, 2000: 3} if outcome == "retracted" else {}
    load(db, run, b["atm"], b["ada"], b["sam"], clock, Count({1: notes_after[0][0], 2: notes_after[1][0]}, {},
                                                             retract), {1: 100, 2: 100})
    assert raw.rows("SELECT status, variance_cents FROM atm_replenishments ORDER BY id DESC LIMIT 1") == [("done", 0)]
    assert run(verification.verify(db))[0] == []


def test_an_amount_the_cassettes_cannot_pay_is_refused_before_anything_is_held(atm_bank, db, run, raw, clock):
    b = atm_bank
    rows = raw.all_rows_count()
    with pytest.raises(CannotPay, match=r"cannot pay 30\.00\. It can pay 20\.00 or 40\.00") as refused:
        withdraw(db, run, b, 3000, clock)
    assert refused.value.amounts == [2000, 4000]
    db.settings = dataclasses.replace(db.settings, atm_daily_limit_cents=500000)
    with pytest.raises(InsufficientFunds):  # C2 holds 500.00, its overdraft limit 1,000.00
        withdraw(db, run, b, 160000, clock, number="C2")
    with pytest.raises(AtmRefused, match="cannot take cash from that account"):
        withdraw(db, run, b, 2000, clock, number="OTHER")
    assert raw.all_rows_count() == rows
    assert cassettes(db, run, b["atm"].id) == [(100, 0), (100, 0)]


def test_the_daily_limit_counts_pending_and_paid_withdrawals_of_the_card(atm_bank, db, run, raw, clock):
    b = atm_bank
    first = withdraw(db, run, b, 60000, clock)  # pending: counts at its amount
    with pytest.raises(AboveDailyLimit, match=r"up to 400\.00 more today"):
        withdraw(db, run, b, 50000, clock, number="C2")  # the card's limit, whichever account
    run(atm_withdrawals.report(db, b["atm"].id, first.trace, "failed", "atm:1", now=clock()))  # nothing paid
    second = withdraw(db, run, b, 100000, clock)
    run(atm_withdrawals.report(db, b["atm"].id, second.trace, "partial", "atm:1", paid_notes={1: 10},
                               now=clock()))  # 500.00 of 1,000.00 paid
    with pytest.raises(AboveDailyLimit, match=r"up to 500\.00 more today"):
        withdraw(db, run, b, 52000, clock)
    assert withdraw(db, run, b, 50000, clock).status == "pending"


def test_atm_cash_counts_in_the_customers_large_cash_and_above_the_threshold_sends_them_to_a_teller(
        atm_bank, client, db, run, raw, clock):
    b = atm_bank
    db.settings = dataclasses.replace(db.settings, ctr_threshold_cents=80000)  # CTR_THRESHOLD=800.00
    first = withdraw(db, run, b, 60000, clock)
    rows = raw.all_rows_count()
    with pytest.raises(SeeATeller, match="Please see a teller"):  # 600.00 held, not paid yet, counts
        withdraw(db, run, b, 30000, clock, number="C2")
    assert raw.all_rows_count() == rows
    run(atm_withdrawals.report(db, b["atm"].id, first.trace, "taken", "atm:1", now=clock()))
    with pytest.raises(SeeATeller):  # paid, in customer_cash now
        withdraw(db, run, b, 30000, clock, number="C2")
    assert withdraw(db, run, b, 20000, clock, number="C2").status == "pending"  # 800.00: not above


def test_twenty_withdrawals_at_once_never_pass_the_daily_limit_nor_the_notes(atm_bank, db, run, raw, clock):
    b = atm_bank

    async def at_once():
        return await asyncio.gather(*(atm_withdrawals.withdraw(db, b["atm"].id, b["card"].id, "C1", 20000,
                                                               "atm:1", now=clock()) for _ in range(20)),
                                    return_exceptions=True)

    results = run(at_once())
    held = [r for r in results if isinstance(r, atm_withdrawals.Withdrawal)]
    assert len(held) == 5 and all(isinstance(r, AboveDailyLimit) for r in results if r not in held)
    assert raw.rows("SELECT held_cents FROM accounts WHERE account_number = 'C1'") == [(100000,)]
    assert sum(reserved for _, reserved in cassettes(db, run, b["atm"].id)) == 20  # 4 x 50.00 each


def test_a_result_that_never_comes_expires_and_the_next_count_finds_the_cash(atm_bank, db, run, raw, clock):
    b = atm_bank
    lost = withdraw(db, run, b, 11000, clock)  # the kiosk lost power: was the cash paid? nobody knows
    clock.advance(atm_withdrawals.HOLD_SECONDS + 1)
    assert balance_and_held(raw)[0] == 200000
    with pytest.raises(AtmRefused, match="ended expired already"):
        # the next withdrawal at the ATM records it expired; its late result changes nothing
        withdraw(db, run, b, 2000, clock)  # (paid: the cassettes keep their notes for the count to find)
        run(atm_withdrawals.report(db, b["atm"].id, lost.trace, "taken", "atm:1", now=clock()))
    assert run(atm_withdrawals.get_withdrawal(db, b["atm"].id, lost.trace)).status == "expired"
    assert raw.rows("SELECT status FROM holds ORDER BY id") == [("expired",), ("pending",)]
    assert cassettes(db, run, b["atm"].id) == [(100, 0), (100, 1)]
    # it was paid, in fact: the count finds 110.00 less than expected, and it goes to cash short
    pending = run(atm_withdrawals.get_withdrawal(db, b["atm"].id, lost.trace + 2))
    run(atm_withdrawals.report(db, b["atm"].id, pending.trace, "failed", "atm:1", now=clock()))
    load(db, run, b["atm"], b["ada"], b["sam"], clock, Count({1: 99, 2: 97}, {}, {}), {1: 100, 2: 100})
    assert raw.rows("SELECT variance_cents FROM atm_replenishments ORDER BY id DESC LIMIT 1") == [(-11000,)]
    assert run(verification.verify(db))[0] == []


def test_the_database_refuses_a_second_end_and_more_reserved_than_held(atm_bank, db, run, raw, clock):
    b = atm_bank
    w = withdraw(db, run, b, 2000, clock)
    run(atm_withdrawals.report(db, b["atm"].id, w.trace, "taken", "atm:1", now=clock()))
    with pytest.raises(Exception, match="atm_withdrawal_ended"):
        raw.execute("UPDATE atm_withdrawals SET status = 'failed' WHERE id = ?", (w.id,))
    with pytest.raises(raw.IntegrityError):
        raw.execute("UPDATE atm_cassettes SET reserved = 101 WHERE atm_id = 1 AND position = 1")


def test_a_replenishment_waits_for_a_withdrawal_under_way(atm_bank, db, run, raw, clock):
    b = atm_bank
    w = withdraw(db, run, b, 2000, clock)
    held = run(replenishment.enter(db, b["atm"].id, Count({1: 100, 2: 99}, {}, {}), {1: 100, 2: 100}, b["ada"],
                                   clock()))
    with pytest.raises(AtmRefused, match="withdrawal is under way"):
        run(decide(db, held.id, b["sam"], True, "counted", now=clock()))
    assert cassettes(db, run, b["atm"].id) == [(100, 0), (100, 1)]
    run(atm_withdrawals.report(db, b["atm"].id, w.trace, "taken", "atm:1", now=clock()))
    assert run(decide(db, held.id, b["sam"], True, "counted", now=clock())).outcome == "approved"
    assert raw.rows("SELECT status, variance_cents FROM atm_replenishments ORDER BY id DESC LIMIT 1") == [("done", 0)]


def test_a_deposit_is_credited_at_once_into_the_deposit_bin_and_counts_as_cash_in(atm_bank, db, run, raw, clock):
    from atm_web.cash import atm_deposits
    b = atm_bank
    for bad in ({5000: -1}, {3000: 1}, {5000: 0}, {5000: 201}, {5000: True}, "50"):
        with pytest.raises(AtmRefused):
            run(atm_deposits.deposit(db, b["atm"].id, b["card"].id, "C1", bad, "atm:1", now=clock()))
    done = run(atm_deposits.deposit(db, b["atm"].id, b["card"].id, "C2", {5000: 2, 2000: 1}, "atm:1", now=clock()))
    assert (done.transaction.amount_cents, done.transaction.balance_after_cents) == (12000, 62000)
    assert run(atms.get_atm(db, b["atm"].id)).cash_cents == 712000  # the cassettes' 7,000.00 and the bin's 120.00
    assert cassettes(db, run, b["atm"].id) == [(100, 0), (100, 0)]
    assert raw.rows("SELECT amount_cents FROM customer_cash WHERE account_number = 'C2' AND direction = 'in' "
                    "ORDER BY entry_id") == [(50000,), (12000,)]  # at the counter, at the ATM
    db.settings = dataclasses.replace(db.settings, ctr_threshold_cents=264000)  # 2,620.00 in today: 20.00 more fits
    with pytest.raises(SeeATeller):
        run(atm_deposits.deposit(db, b["atm"].id, b["card"].id, "C1", {5000: 1}, "atm:1", now=clock()))
    # the count: the cassettes as they were, the deposit bin's notes; no variance
    load(db, run, b["atm"], b["ada"], b["sam"], clock, Count({1: 100, 2: 100}, {5000: 2, 2000: 1}, {}),
         {1: 100, 2: 100})
    assert raw.rows("SELECT variance_cents FROM atm_replenishments ORDER BY id DESC LIMIT 1") == [(0,)]
    assert run(verification.verify(db))[0] == []


def test_notes_reserved_for_a_withdrawal_under_way_are_not_offered_to_the_next(atm_bank, db, run, raw, clock):
    b = atm_bank
    load(db, run, b["atm"], b["ada"], b["sam"], clock, Count({1: 100, 2: 100}, {}, {}), {1: 3, 2: 0})
    first = withdraw(db, run, b, 10000, clock)  # two of the three 50s
    with pytest.raises(CannotPay, match=r"It can pay 50\.00\.$"):
        withdraw(db, run, b, 10000, clock)
    run(atm_withdrawals.report(db, b["atm"].id, first.trace, "failed", "atm:1", now=clock()))  # back to the free
    assert withdraw(db, run, b, 15000, clock).notes == {1: 3}
