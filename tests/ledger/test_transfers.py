
import pytest

from atm_web.ledger import accounts, verification
from atm_web.ledger.refusals import InsufficientFunds, InvalidAccountNumber, SameAccount, UnknownAccount

from conftest import holder_fields


def journal(raw):
    """The customers' rows (the bank's side of each is checked in test_double_entry)."""
    return raw.rows("SELECT id, account_number, kind, amount_cents, balance_after_cents, related_id "
                    "FROM journal WHERE account_number NOT LIKE '@%' ORDER BY id")


def test_transfer_writes_two_linked_rows_in_one_transaction(db, raw, run):
    run(accounts.deposit(db, "T1", 10000, "t"))
    debit, credit = run(accounts.transfer(db, "T1", "T2", 2550, "t"))
    assert (debit.kind, debit.balance_after_cents, credit.kind, credit.balance_after_cents) == \
        ("transfer_out", 7450, "transfer_in", 2550)
    assert credit.related_id == debit.id
    assert journal(raw)[1:] == [(debit.id, "T1", "transfer_out", 2550, 7450, None),
                                    (credit.id, "T2", "transfer_in", 2550, 2550, debit.id)]
    assert run(verification.verify(db))[0] == []


def test_transfer_past_limit_changes_nothing(db, raw, run):
    run(accounts.deposit(db, "T1", 100, "t"))
    before = journal(raw)
    with pytest.raises(InsufficientFunds):
        run(accounts.transfer(db, "T1", "T2", 100101, "t"))  # 1.00 + 1,000.00 overdraft, plus 0.01
    assert journal(raw) == before
    assert run(accounts.get_account(db, "T2")).exists is False


@pytest.mark.parametrize("source, target, error", [
    ("T1", "T1", SameAccount), ("NOPE", "T1", UnknownAccount),
    ("T 1", "T2", InvalidAccountNumber), ("T1", "", InvalidAccountNumber)])
def test_transfer_refusals(db, raw, run, source, target, error):
    run(accounts.deposit(db, "T1", 100, "t"))
    with pytest.raises(error):
        run(accounts.transfer(db, source, target, 50, "t"))
    assert len(journal(raw)) == 1


def test_api_transfer(client, raw):
    client.post("/accounts/A1/deposit", json={"amount": 100})
    response = client.post("/transfers", json={"from_account": "A1", "to_account": "B1", "amount": 30.5})
    assert response.status_code == 200
    body = response.get_json()
    assert {k: body[k] for k in ("status", "from_account", "to_account", "amount", "from_balance", "to_balance")} \
        == {"status": "success", "from_account": "A1", "to_account": "B1", "amount": 30.5, "from_balance": 69.5,
            "to_balance": 30.5}
    assert body["to_transaction_id"] == body["from_transaction_id"] + 1
    rows = client.get("/accounts/B1/transactions").get_json()["transactions"]
    assert rows[0]["related_transaction_id"] == body["from_transaction_id"] and rows[0]["memo"] == "from A1"


@pytest.mark.parametrize("body, status", [
    ({"from_account": "A1", "to_account": "A1", "amount": 1}, 422),
    ({"from_account": "ZZ", "to_account": "A1", "amount": 1}, 422),
    ({"from_account": "A1", "to_account": "B 1", "amount": 1}, 422),
    ({"from_account": "A1", "amount": 1}, 422),
    ({"from_account": "A1", "to_account": "B1", "amount": 0}, 422),
    ({"from_account": "A1", "to_account": "B1", "amount": 5000}, 400),
])
def test_api_transfer_refusals_write_nothing(client, raw, body, status):
    client.post("/accounts/A1/deposit", json={"amount": 100})
    response = client.post("/transfers", json=body)
    assert response.status_code == status and response.get_json()["detail"]
    assert len(journal(raw)) == 1


def test_teller_transfer_form(client, raw):
    client.post("/accounts/A1/deposit", json={"amount": 100})
    page = client.get("/teller/transfer?from=A1").get_data(as_text=True)
    assert ">From account</label>" in page and ">To account</label>" in page and 'value="Transfer"' in page
    key = __import__("re").search(r'name="form_key" type="hidden" value="([0-9a-f]{32})"', page).group(1)
    form = {"from_account": "A1", "to_account": "B1", "amount": "40", "form_key": key}
    asked = client.post("/teller/transfer", data=form)  # B1 is new: its holder first (issue 19, point 1)
    assert asked.status_code == 303 and asked.location.startswith("/teller/accounts/B1/open?kind=transfer&")
    assert "Transferring <strong>40.00</strong> from account A1 will open it" in client.get(asked.location).get_data(
        as_text=True)
    assert len(journal(raw)) == 1  # nothing yet
    response = client.post("/teller/transfer", data={**form, "confirm_open": "yes", **holder_fields("Bea Payee")})
    assert response.status_code == 303
    receipt = client.get(response.location).get_data(as_text=True)
    assert raw.rows("SELECT c.full_name FROM account_holders h JOIN customers c ON c.id = h.customer_id "
                    "WHERE h.account_number = 'B1'") == [("Bea Payee",)]
    assert "Transfer out" in receipt and "to B1" in receipt and "New balance of B1" in receipt and "60.00" in receipt
    refused = client.post("/teller/transfer", data={"from_account": "A1", "to_account": "B1", "amount": "2000",
                                                    "form_key": "f" * 32})
    assert refused.status_code == 400 and "Nothing was recorded" in refused.get_data(as_text=True)
    assert len(journal(raw)) == 3
