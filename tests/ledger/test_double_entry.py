"""Double entry: every transaction is two or more rows summing to zero, on every path and both engines; the bank's
own accounts; cash never below zero; verify checks the sums."""
import pytest

from atm_web.core.rules import CLEARING, VAULT
from atm_web.ledger import accounts, reversals, verification
from atm_web.ledger.refusals import InsufficientFunds, NotEnoughCash

from conftest import add_token

ROWS = "SELECT id, account_number, kind, amount_cents, balance_after_cents, entry_id FROM journal"
SIGNED = ("CASE WHEN kind IN ('deposit', 'transfer_in', 'reversal_credit', 'credit') THEN amount_cents "
          "ELSE -amount_cents END")


def unbalanced(raw) -> list:
    return raw.rows(f"SELECT entry_id, sum({SIGNED}) FROM journal GROUP BY entry_id HAVING sum({SIGNED}) != 0")


def balances_total(raw) -> int:
    return raw.scalar("SELECT sum(balance_cents) FROM accounts")


@pytest.fixture
def api(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app, 'ops', admin=True)}"
    return client


def test_a_deposit_and_a_withdrawal_are_each_two_rows_against_clearing(db, raw, run):
    deposit = run(accounts.deposit(db, "D1", 5000, "t"))
    withdrawal = run(accounts.withdraw(db, "D1", 1200, "t"))
    assert raw.rows(ROWS + " ORDER BY id") == [
        (deposit.id, "D1", "deposit", 5000, 5000, 1), (deposit.id + 1, CLEARING, "debit", 5000, -5000, 1),
        (withdrawal.id, "D1", "withdrawal", 1200, 3800, 2), (withdrawal.id + 1, CLEARING, "credit", 1200, -3800, 2)]
    assert raw.rows("SELECT memo FROM journal WHERE account_number = ? ORDER BY id", (CLEARING,)) == [
        ("deposit D1",), ("withdrawal D1",)]
    assert unbalanced(raw) == [] and balances_total(raw) == 0
    assert run(verification.verify(db)) == ([], 4)


def test_a_transfer_is_one_transaction_of_its_two_legs(db, raw, run):
    run(accounts.deposit(db, "T1", 5000, "t"))
    debit, credit = run(accounts.transfer(db, "T1", "T2", 700, "t"))
    assert debit.entry_id == credit.entry_id == 2
    assert raw.rows(ROWS + " WHERE entry_id = 2 ORDER BY id") == [
        (debit.id, "T1", "transfer_out", 700, 4300, 2), (credit.id, "T2", "transfer_in", 700, 700, 2)]
    assert unbalanced(raw) == [] and balances_total(raw) == 0


def test_the_api_posts_both_sides_on_either_engine_and_answers_as_before(api, raw):
    """On PostgreSQL the API's postings go through post_entries (one statement per group): the same rows."""
    assert api.post("/accounts/A1/deposit", json={"amount": 10}).get_json() == {
        "account_number": "A1", "deposited_amount": 10, "balance": 10, "status": "success", "transaction_id": 1}
    assert api.post("/accounts/A1/withdraw", json={"amount": 2.5},
                    headers={"Idempotency-Key": "w1"}).get_json()["balance"] == 7.5
    assert raw.rows("SELECT account_number, kind, amount_cents, entry_id FROM journal ORDER BY id") == [
        ("A1", "deposit", 1000, 1), (CLEARING, "debit", 1000, 1),
        ("A1", "withdrawal", 250, 2), (CLEARING, "credit", 250, 2)]
    assert api.get(f"/accounts/{CLEARING}/balance").status_code == 422
    assert unbalanced(raw) == [] and balances_total(raw) == 0


def test_a_refused_posting_writes_no_row_on_either_side(api, db, raw, run):
    run(accounts.deposit(db, "R1", 100, "t"))
    rows = raw.all_rows_count()
    for headers in ({}, {"Idempotency-Key": "k1"}):
        refused = api.post("/accounts/R1/withdraw", json={"amount": 5000}, headers=headers)
        assert refused.status_code == 400
    with pytest.raises(InsufficientFunds):
        run(accounts.withdraw(db, "R1", 500000, "t"))
    assert raw.all_rows_count() == rows and unbalanced(raw) == []


@pytest.mark.parametrize("number", [VAULT, CLEARING, "@cash-over", "@cash-short", "@drawer-1", "@x"])
def test_the_customer_endpoints_refuse_the_banks_accounts_and_write_nothing(api, raw, number):
    rows = raw.all_rows_count()
    answers = [api.get(f"/accounts/{number}/balance"), api.get(f"/accounts/{number}/transactions"),
               api.post(f"/accounts/{number}/deposit", json={"amount": 1}),
               api.post(f"/accounts/{number}/withdraw", json={"amount": 1}),
               api.post("/transfers", json={"from_account": number, "to_account": "B1", "amount": 1}),
               api.post("/transfers", json={"from_account": "B1", "to_account": number, "amount": 1}),
               api.put(f"/accounts/{number}/overdraft-limit", json={"overdraft_limit": 1}),
               api.get(f"/balances?accounts={number}")]
    assert [a.status_code for a in answers] == [422] * len(answers)
    assert all("letters and digits" in a.get_json()["detail"] for a in answers)
    assert raw.all_rows_count() == rows


def test_a_reversal_reverses_every_row_of_the_transaction(api, db, raw, run):
    deposit = run(accounts.deposit(db, "V1", 5000, "t"))
    done = run(reversals.reverse(db, deposit.id, "keyed twice", "t"))
    assert [(r.account_number, r.kind, r.amount_cents) for r in done.rows] == [("V1", "reversal_debit", 5000)]
    assert raw.rows("SELECT account_number, kind, amount_cents, related_id, entry_id FROM journal WHERE id > 2 "
                    "ORDER BY id") == [("V1", "reversal_debit", 5000, deposit.id, 2),
                                       (CLEARING, "credit", 5000, deposit.id + 1, 2)]
    assert raw.scalar("SELECT balance_cents FROM accounts WHERE account_number = ?", (CLEARING,)) == 0
    bank_row = api.post(f"/transactions/{deposit.id + 1}/reversal", json={"reason": "why"})
    assert bank_row.status_code == 422 and "the bank's side" in bank_row.get_json()["detail"]
    assert unbalanced(raw) == [] and run(verification.verify(db)) == ([], 4)


def test_cash_never_goes_below_zero_the_database_refuses_it(db, raw, run):
    """The vault holds nothing yet: cash out of it is refused by the database's own check, both rows undone."""
    run(accounts.deposit(db, "C1", 5000, "t"))
    rows = raw.all_rows_count()
    with pytest.raises(NotEnoughCash, match="Not enough cash"):
        run(accounts.withdraw(db, "C1", 100, "t", counter=VAULT))
    assert raw.all_rows_count() == rows
    with pytest.raises(raw.IntegrityError):
        raw.execute("UPDATE accounts SET balance_cents = 1 WHERE account_number = ?", (VAULT,))
    run(accounts.deposit(db, "C1", 300, "t", counter=VAULT))  # 3.00 in notes: the vault stands at -3.00
    assert run(accounts.withdraw(db, "C1", 300, "t", counter=VAULT)).balance_after_cents == 5000
    assert raw.scalar("SELECT balance_cents FROM accounts WHERE account_number = ?", (VAULT,)) == 0
    assert run(verification.verify(db))[0] == []


@pytest.mark.parametrize("tamper, problem", [
    ("UPDATE journal SET amount_cents = 4000 WHERE id = 2", "transaction 1: its 2 rows sum to 1000, not to zero"),
    ("UPDATE accounts SET balance_cents = 0 WHERE account_number = '@clearing'",
     "all balances sum to 5000, not to zero"),
])
def test_verify_finds_a_transaction_or_a_ledger_that_does_not_sum_to_zero(db, raw, run, tamper, problem):
    run(accounts.deposit(db, "S1", 5000, "t"))
    assert run(verification.verify(db))[0] == []
    raw.without_immutability(tamper)
    assert problem in run(verification.verify(db))[0]
