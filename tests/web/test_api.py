import json

import pytest

from conftest import add_token


def test_is_alive(client):
    response = client.get("/is_alive")
    assert response.status_code == 200 and response.get_json() == {"active": "true"}


def test_balance_of_unknown_account_is_zero(client):
    response = client.get("/accounts/1234/balance")
    assert response.status_code == 200
    # the original API's fields as it wrote them; held and available (holds) are new fields only
    assert response.get_data(as_text=True).strip().startswith('{"account_number":"1234","available":1000.0,'
                                                              '"balance":0.0,')
    assert response.get_json() == {"account_number": "1234", "balance": 0, "held": 0, "available": 1000}


def test_deposit_withdraw_and_refusal_exact_bodies(client, raw):
    deposit = client.post("/accounts/1234/deposit", json={"amount": 150.5})
    assert deposit.status_code == 200
    assert deposit.get_json() == {"account_number": "1234", "deposited_amount": 150.5, "balance": 150.5,
                                  "status": "success", "transaction_id": 1}
    withdraw = client.post("/accounts/1234/withdraw", json={"amount": 200})
    assert withdraw.status_code == 200
    assert withdraw.get_json() == {"account_number": "1234", "withdrawn_amount": 200, "balance": -49.5,
                                   "status": "success", "transaction_id": 3}  # 2: the bank's side of 1
    assert '"balance":-49.5' in withdraw.get_data(as_text=True)
    refused = client.post("/accounts/1234/withdraw", json={"amount": 1000})
    assert refused.status_code == 400
    assert refused.get_json() == {"detail": "Insufficient funds for withdrawal"}
    assert client.get("/accounts/1234/balance").get_json() == {"account_number": "1234", "balance": -49.5,
                                                              "held": 0, "available": 950.5}
    assert raw.journal_count() == 2


def test_ten_dimes_make_exactly_one(client):
    for _ in range(10):
        client.post("/accounts/D1/deposit", json={"amount": 0.1})
    body = client.get("/accounts/D1/balance").get_data(as_text=True)
    assert '"balance":1.0' in body


def test_amount_as_decimal_string(client):
    response = client.post("/accounts/S1/deposit", json={"amount": "12.30"})
    assert '"balance":12.3,' in response.get_data(as_text=True)


INVALID_BODIES = [
    "{}", '{"amount": null}', '{"amount": 0}', '{"amount": -5}', '{"amount": "abc"}', '{"amount": true}',
    '{"amount": NaN}', '{"amount": Infinity}', '{"amount": -Infinity}', '{"amount": "NaN"}',
    '{"amount": 1.001}', '{"amount": 1000000.01}', '{"amount": 1e400}', '{"amount": [1]}', '{"amount": {}}',
    '[1]', '"5"', "5", "{not json", "",
]


@pytest.mark.parametrize("path", ["/accounts/1234/deposit", "/accounts/1234/withdraw"])
@pytest.mark.parametrize("body", INVALID_BODIES)
def test_invalid_amounts_are_422_and_write_nothing(client, raw, path, body):
    response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 422, body
    assert isinstance(response.get_json()["detail"], str)
    assert raw.journal_count() == 0


def test_wrong_content_type_is_422_json(client, raw):
    response = client.post("/accounts/1/deposit", data="amount=5", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 422 and "application/json" in response.get_json()["detail"]
    assert raw.journal_count() == 0


@pytest.mark.parametrize("number", ["a b", "x" * 35, "12-34", "%C3%BC1", "12%0A", "-1", "1.5"])
def test_invalid_account_numbers_are_422(client, raw, number):
    for response in (client.get(f"/accounts/{number}/balance"),
                     client.post(f"/accounts/{number}/deposit", json={"amount": 5}),
                     client.post(f"/accounts/{number}/withdraw", json={"amount": 5}),
                     client.get(f"/accounts/{number}/transactions")):
        assert response.status_code == 422
        assert "account number" in response.get_json()["detail"]
    assert raw.journal_count() == 0


def test_max_length_account_number_is_accepted(client):
    assert client.post(f"/accounts/{'Z' * 34}/deposit", json={"amount": 1}).status_code == 200


def test_transactions_paginate_with_cursor(client):
    for amount in (1, 2, 3):
        client.post("/accounts/P1/deposit", json={"amount": amount})
    client.post("/accounts/P1/withdraw", json={"amount": 0.5})
    first = client.get("/accounts/P1/transactions?limit=3").get_json()
    assert [t["amount"] for t in first["transactions"]] == [0.5, 3, 2]
    assert first["transactions"][0]["kind"] == "withdrawal"
    assert first["transactions"][0]["balance_after"] == 5.5
    assert first["transactions"][0]["actor"] == "token:test-script"
    second = client.get(f"/accounts/P1/transactions?limit=3&cursor={first['next_cursor']}").get_json()
    assert [t["amount"] for t in second["transactions"]] == [1] and second["next_cursor"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "cursor=abc", "cursor=-1"])
def test_transactions_bad_query_is_422(client, query):
    response = client.get(f"/accounts/P1/transactions?{query}")
    assert response.status_code == 422 and response.get_json()["detail"]


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/accounts/1/nothing", 404),
    ("GET", "/accounts/1/nothing", 404),
    ("GET", "/transfers", 405),
    ("GET", "/transfers/1", 404),
    ("GET", "/accounts/1/deposit", 405),
    ("DELETE", "/accounts/1/balance", 405),
    ("PUT", "/is_alive", 405),
])
def test_api_errors_are_json_with_detail(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert isinstance(response.get_json()["detail"], str)


def test_json_404_when_client_asks_for_json(client):
    response = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404 and response.get_json() == {"detail": "Not Found"}


def test_405_keeps_allow_header(client):
    response = client.get("/accounts/1/withdraw")
    assert response.status_code == 405 and "POST" in response.headers["Allow"]


def test_oversized_body_is_413_json(client, raw):
    body = json.dumps({"amount": 5, "padding": "x" * 20000})
    response = client.post("/accounts/1/deposit", data=body, content_type="application/json")
    assert response.status_code == 413 and response.get_json()["detail"]
    assert raw.journal_count() == 0


def test_unexpected_error_is_json_500_without_traceback(client, raw, caplog):
    raw.execute("ALTER TABLE journal RENAME TO journal_moved")
    response = client.post("/accounts/E1/deposit", json={"amount": 5})
    assert response.status_code == 500
    body = response.get_json()
    assert set(body) == {"detail"} and "Traceback" not in body["detail"] and "journal" not in body["detail"]
    assert "journal" in caplog.text  # the cause is logged server-side


def test_security_headers_on_json(client):
    headers = client.get("/is_alive").headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_balances_of_several_accounts_from_one_read(client):
    client.post("/accounts/M1/deposit", json={"amount": 10.5})
    client.post("/accounts/M2/withdraw", json={"amount": 3})
    body = client.get("/balances?accounts=M1,M2,M3").get_json()
    assert body == {"balances": {"M1": 10.5, "M2": -3, "M3": 0}}


def test_unknown_query_parameters_are_422(client):
    response = client.get("/accounts/1/transactions?limt=5")
    assert response.status_code == 422 and "limt" in response.get_json()["detail"]
    assert client.post("/accounts/1/deposit?x=1", json={"amount": 1}).status_code == 422
    assert client.get("/is_alive?probe=1").status_code == 200  # the health check stays lenient


@pytest.mark.parametrize("query", ["", "accounts=", "accounts=A%20B", "accounts=" + ",".join(
    f"X{i}" for i in range(101))])
def test_balances_bad_query_is_422(client, query):
    response = client.get(f"/balances?{query}")
    assert response.status_code == 422 and response.get_json()["detail"]


@pytest.mark.parametrize("path", ["/transactions/42171897199875302883328/reversal", "/transactions/0/reversal"])
def test_row_ids_out_of_range_are_404_not_500(client, path):
    response = client.post(path, json={"reason": "x"})
    assert response.status_code == 404 and response.get_json()["detail"]
    assert client.get("/teller/receipts/99999999999999999999999").status_code == 404


@pytest.mark.parametrize("body", ['{"amount": 1e9999999999999999999}', '{"amount": 1e-9999999999999999999}',
                                  '{"amount": -1e9999999999999999999}', '{"amount": 1E+99999999999999}',
                                  '{"amount": 5, "memo": 1e9999999999999999999}'])
def test_exponents_past_decimals_range_are_422_not_500(client, raw, body):
    response = client.post("/accounts/X1/deposit", data=body, content_type="application/json")
    assert response.status_code == 422 and response.get_json()["detail"]
    assert raw.journal_count() == 0


@pytest.mark.parametrize("body", ['{"amount": 1, "amount": 1000}', '{"amount": 1000, "amount": 1}',
                                  '{"from_account": "A", "to_account": "B", "amount": 1, "to_account": "C"}'])
def test_a_duplicate_key_is_refused(client, raw, body):
    for path in ("/accounts/X1/deposit", "/transfers"):
        response = client.post(path, data=body, content_type="application/json")
        assert response.status_code == 422 and "duplicate key" in response.get_json()["detail"]
    assert raw.journal_count() == 0


@pytest.mark.parametrize("path", ["/accounts/AZ1//balance", "/accounts//AZ1/balance"])
def test_redirects_never_name_the_requests_host(client, path):
    response = client.get(path, headers={"Host": "evil.example"})
    assert response.status_code in (301, 308, 404)
    assert "evil.example" not in response.headers.get("Location", "")
    if "Location" in response.headers:
        assert response.headers["Location"].startswith("/") and not response.headers["Location"].startswith("//")


@pytest.mark.parametrize("digits", ["\u0661", "\u0967", "\uff11", "\u00b9", "1\u0660"])
def test_row_ids_take_ascii_digits_only(client, digits):
    client.post("/accounts/U1/deposit", json={"amount": 1})
    assert client.get("/teller/receipts/1").status_code == 200
    assert client.get(f"/teller/receipts/{digits}").status_code == 404
    response = client.post(f"/transactions/{digits}/reversal", json={"reason": "x"})
    assert response.status_code == 404 and response.get_json()["detail"]


@pytest.mark.slow
def test_a_ledger_held_by_another_writer_answers_503_and_writes_nothing(client, raw, engine):
    """Another writer holds the ledger past the wait (SQLite: an exclusive transaction on the file; PostgreSQL:
    the write turn's advisory lock): the deposit is refused with 503 and Retry-After, and nothing is written."""
    client.post("/accounts/B1/deposit", json={"amount": 1})
    holder = raw._connect()
    try:
        if raw.is_postgres:
            from atm_web.storage.postgresql import WRITE_LOCK
            holder.execute(f"SELECT pg_advisory_lock({WRITE_LOCK})")
        else:
            holder.execute("BEGIN EXCLUSIVE")
        response = client.post("/accounts/B1/deposit", json={"amount": 5})
        page = client.post("/teller/transactions", data={"account_number": "B1", "amount": "5", "deposit": "Deposit",
                                                         "form_key": "9" * 32})
    finally:
        holder.close()
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.get_json() == {"detail": "The ledger is busy; nothing was written, try again"}
    html = page.get_data(as_text=True)  # a teller gets the form again, the message on it (errors.py)
    assert page.status_code == 503 and "The ledger is busy; nothing was written, try again." in html
    assert 'name="amount"' in html and 'value="5"' in html
    assert raw.journal_count() == 1
    assert client.post("/accounts/B1/deposit", json={"amount": 5}).status_code == 200  # and then it goes on


def test_a_write_whose_commit_was_not_confirmed_is_never_called_unwritten():
    from atm_web.storage import LedgerUnavailable
    from atm_web.web.errors import unavailable_message
    assert "nothing was written" in unavailable_message(LedgerUnavailable("locked"))
    unknown = unavailable_message(LedgerUnavailable("connection lost while committing", outcome_unknown=True))
    assert "nothing was written" not in unknown and "may have been recorded" in unknown
    assert "same Idempotency-Key" in unknown
    for_teller = unavailable_message(LedgerUnavailable("lost", outcome_unknown=True), for_teller=True)
    assert "may have been recorded" in for_teller and "Submit the same form again" in for_teller


@pytest.mark.postgresql_only
def test_the_app_reconnects_after_the_database_drops_its_connections(client, raw, db, run):
    """A PostgreSQL restart or failover drops every connection: the next requests may be refused (503, never a
    500, never a double posting with the same key), then the app reconnects and goes on."""
    assert client.post("/accounts/RC1/deposit", json={"amount": 1}).status_code == 200
    raw.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    statuses = []
    for _ in range(6):
        response = client.post("/accounts/RC1/deposit", json={"amount": 2}, headers={"Idempotency-Key": "after-drop"})
        statuses.append(response.status_code)
        if response.status_code == 200:
            break
        assert response.status_code == 503 and response.get_json()["detail"]
    assert statuses[-1] == 200 and len(statuses) <= 3, statuses
    assert client.get("/accounts/RC1/balance").get_json()["balance"] == 3
    assert raw.journal_count() == 2
    from atm_web.ledger import verification
    assert run(verification.verify(db))[0] == []


def test_the_apps_clock_stamps_the_journal_and_the_audit_log(app, client, clock, raw):
    """One clock: the app's (here a test's, set to a known moment) reaches journal, reversal, verification and
    audit times through every entry point."""
    clock.now = 1_700_000_000.25  # 2023-11-14T22:13:20.25Z
    deposit = client.post("/accounts/CLK1/deposit", json={"amount": 5}).get_json()
    post = client.post("/teller/transactions", data={"account_number": "CLK1", "amount": "1", "deposit": "Deposit",
                                                    "form_key": "e" * 32})
    assert post.status_code == 303
    admin = app.test_client()
    admin.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app, 'clock-admin', admin=True)}"
    assert admin.post(f"/transactions/{deposit['transaction_id']}/reversal", json={"reason": "clock"}
                      ).status_code == 200
    times = {row[0] for row in raw.rows("SELECT created_at FROM journal")}
    assert times == {"2023-11-14T22:13:20.250000Z"}
    assert ("2023-11-14T22:13:20Z", "entry reversed") in raw.rows("SELECT at, action FROM audit_log")
