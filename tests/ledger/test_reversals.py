"""Reversals: a compensating entry linked to the original, at most once, never past a limit, audited."""

import pytest

from atm_web.ledger import accounts, reversals, verification
from atm_web.ledger.refusals import CannotReverse, InsufficientFunds

from conftest import add_teller, add_token, decide, log_in


@pytest.fixture
def admin_api(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app, 'ops', admin=True)}"
    return client


def test_reversal_compensates_once_and_is_linked(db, run):
    original = run(accounts.deposit(db, "R1", 5000, "t"))
    done = run(reversals.reverse(db, original.id, "keyed twice", "teller:ada"))
    (reversal,) = done.rows
    assert not done.replayed
    assert (reversal.kind, reversal.amount_cents, reversal.balance_after_cents, reversal.related_id) == \
        ("reversal_debit", 5000, 0, original.id)
    assert reversal.memo == f"reverses {original.id}: keyed twice"
    again = run(reversals.reverse(db, original.id, "keyed twice", "teller:ada"))  # a retry: the first answer
    assert again.replayed and again.rows == [reversal]
    with pytest.raises(CannotReverse, match="already reversed"):
        run(reversals.reverse(db, original.id, "again", "t"))
    with pytest.raises(CannotReverse, match="cannot itself be reversed"):
        run(reversals.reverse(db, reversal.id, "undo", "t"))
    assert run(verification.verify(db))[0] == []


def test_reversal_past_the_limit_is_refused_and_writes_nothing(db, raw, run):
    deposit = run(accounts.deposit(db, "R2", 10000, "t"))
    run(accounts.withdraw(db, "R2", 110000, "t"))  # at the limit: -1000.00
    with pytest.raises(InsufficientFunds):
        run(reversals.reverse(db, deposit.id, "bounced cheque", "t"))
    assert raw.journal_count() == 2
    assert raw.scalar("SELECT COUNT(*) FROM audit_log") == 0


def test_reversing_a_transfer_reverses_both_legs(db, run):
    run(accounts.deposit(db, "R3", 10000, "t"))
    debit, credit = run(accounts.transfer(db, "R3", "R4", 2500, "t"))
    rows = run(reversals.reverse(db, credit.id, "wrong payee", "t")).rows
    assert {(r.account_number, r.kind, r.related_id) for r in rows} == \
        {("R3", "reversal_credit", debit.id), ("R4", "reversal_debit", credit.id)}
    assert run(accounts.get_balances(db, ["R3", "R4"])) == {"R3": 10000, "R4": 0}
    with pytest.raises(CannotReverse):
        run(reversals.reverse(db, debit.id, "again", "t"))


def test_unknown_entry_and_missing_reason(db, run):
    with pytest.raises(CannotReverse):
        run(reversals.reverse(db, 999, "why", "t"))
    tx = run(accounts.deposit(db, "R5", 100, "t"))
    with pytest.raises(CannotReverse):
        run(reversals.reverse(db, tx.id, "  ", "t"))


def test_api_reversal_replays_with_the_same_reason(admin_api, client, raw):
    tx_id = admin_api.post("/accounts/R6/deposit", json={"amount": 10}).get_json()["transaction_id"]
    first = admin_api.post(f"/transactions/{tx_id}/reversal", json={"reason": "duplicate"})
    assert first.status_code == 200 and first.get_json()["reversals"][0]["balance_after"] == 0
    again = admin_api.post(f"/transactions/{tx_id}/reversal", json={"reason": "duplicate"})
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert admin_api.post(f"/transactions/{tx_id}/reversal", json={"reason": "other"}).status_code == 422
    assert client.post(f"/transactions/{tx_id}/reversal", json={"reason": "x"}).status_code == 403  # write token
    history = admin_api.get("/accounts/R6/transactions").get_json()["transactions"]
    assert history[0]["kind"] == "reversal_debit" and history[0]["related_transaction_id"] == tx_id
    assert raw.journal_count() == 2
    assert raw.rows("SELECT actor, action, target, detail FROM audit_log WHERE action = 'entry reversed'"
                    ) == [("token:ops", "entry reversed", str(tx_id), "duplicate")]


def test_a_reversal_asked_from_the_receipt_waits_for_a_supervisor_then_shows_everywhere(app, admin_api, raw):
    ada = log_in(app, app.test_client(), add_teller(app, "ada", "admin"))
    tina = log_in(app, app.test_client(), add_teller(app, "tina"))
    tx_id = admin_api.post("/accounts/R7/deposit", json={"amount": 12}).get_json()["transaction_id"]
    assert "Reverse this entry" in tina.get(f"/teller/receipts/{tx_id}").get_data(as_text=True)
    form = {"reason": "test entry", "form_key": "f" * 32}
    asked = tina.post(f"/teller/receipts/{tx_id}/reversal", data=form)
    assert asked.status_code == 303 and "/teller/requests/" in asked.location
    assert tina.post(f"/teller/receipts/{tx_id}/reversal", data=form).location == asked.location  # a second click
    reversals = "SELECT COUNT(*) FROM journal WHERE kind LIKE 'reversal%'"
    assert raw.scalar(reversals) == 0
    assert decide(ada, asked).status_code == 303
    assert raw.scalar(reversals) == 1  # and the bank's side, a debit of clearing
    shown = tina.get(asked.location)  # the teller's request page: now the receipt
    assert shown.status_code == 303 and "/teller/receipts/" in shown.location
    receipt = tina.get(shown.location).get_data(as_text=True)
    assert "Reversal (debit)" in receipt and "test entry" in receipt and "Approved by" in receipt and "ada" in receipt
    original = ada.get(f"/teller/receipts/{tx_id}").get_data(as_text=True)
    assert "Reversal (debit)" in original and "Reverse this entry" not in original
    page = ada.get("/teller/accounts/R7").get_data(as_text=True)
    assert "Reversal (debit)" in page and f"reverses {tx_id}: test entry" in page
    other = tina.post(f"/teller/receipts/{tx_id}/reversal", data={"reason": "another", "form_key": "e" * 32})
    assert other.status_code == 303 and other.location == f"/teller/receipts/{tx_id}"
    assert "Not asked: Journal entry" in tina.get(other.location).get_data(as_text=True)
    assert raw.scalar(reversals) == 1
