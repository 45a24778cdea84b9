import re
import uuid

import pytest

from conftest import add_teller, add_token, close_app, holder_fields, log_in, make_app, open_drawer


def journal(raw):
    """The customers' rows (the bank's side of each is checked in test_double_entry)."""
    return raw.rows("SELECT account_number, kind, amount_cents, balance_after_cents FROM journal "
                    "WHERE account_number NOT LIKE '@%' ORDER BY id")


def post(client, number, amount, action="deposit", **extra):
    data = {"account_number": number, "amount": amount, action: action.capitalize(), "form_key": uuid.uuid4().hex,
            **(holder_fields() if extra.get("confirm_open") == "yes" else {}), **extra}
    return client.post("/teller/transactions", data=data)


def test_lookup_page_has_labelled_field(client):
    html = client.get("/").get_data(as_text=True)
    assert '<label for="query">Account number or holder&#39;s name</label>' in html
    assert 'value="Look up"' in html


def test_lookup_redirects_to_account_page(client):
    response = client.get("/?account_number=ACC1")
    assert response.status_code == 302 and response.location.endswith("/teller/accounts/ACC1")


@pytest.mark.parametrize("number", ["", "a b", "x" * 35, "12-34"])
def test_lookup_refuses_bad_number(client, number):
    response = client.get("/", query_string={"account_number": number})
    assert response.status_code == 422
    assert "letters and digits" in response.get_data(as_text=True) or "required" in response.get_data(as_text=True)


@pytest.mark.parametrize("number", ["a b", "", "x" * 35])
def test_a_transaction_for_a_bad_account_number_shows_the_lookup_with_the_error(client, raw, number):
    refused = post(client, number, "5")
    assert refused.status_code == 422 and "Find an account" in refused.get_data(as_text=True)
    assert raw.journal_count() == 0


def test_a_large_withdrawal_cannot_open_an_account(client, raw):
    refused = post(client, "NEWW", "5000.01", "withdraw", confirm_open="yes")
    assert refused.status_code == 409 and "cannot open an account" in refused.get_data(as_text=True)
    assert raw.scalar("SELECT COUNT(*) FROM accounts WHERE account_number = 'NEWW'") == 0
    assert raw.scalar("SELECT COUNT(*) FROM approvals") == 0


def test_account_page_shows_balance_limit_available_and_history(client):
    post(client, "ACC1", "150.50", confirm_open="yes")
    post(client, "ACC1", "20", "withdraw")
    html = client.get("/teller/accounts/ACC1").get_data(as_text=True)
    assert "130.50" in html                      # balance
    assert "1,000.00" in html                    # overdraft limit
    assert "1,130.50" in html                    # available to withdraw
    assert html.count("<tr>") == 1 + 2           # header + two journal rows
    for label in ("Account number", "Amount"):
        assert f">{label}</label>" in html
    assert 'value="Deposit"' in html and 'value="Withdraw"' in html


def test_account_page_shows_last_20_rows_only(client):
    for i in range(25):  # the first opens it (with its holder); the others post on the account as it is
        post(client, "MANY", str(i + 1), **({"confirm_open": "yes"} if i == 0 else {}))
    html = client.get("/teller/accounts/MANY").get_data(as_text=True)
    assert html.count("<tr>") == 1 + 20
    assert ">25.00<" in html and ">5.00<" not in html


def test_deposit_redirects_to_receipt(client, raw):
    response = post(client, "ACC2", "99.99", confirm_open="yes")
    assert response.status_code == 303
    receipt = client.get(response.location)
    html = receipt.get_data(as_text=True)
    tx_id = re.search(r"/teller/receipts/(\d+)", response.location).group(1)
    assert receipt.status_code == 200
    for text in (f"<dd>{tx_id}</dd>", "ACC2", "99.99", "New balance", "Time", "Deposit"):
        assert text in html
    assert journal(raw) == [("ACC2", "deposit", 9999, 9999)]


def test_receipt_has_print_stylesheet(client):
    css = client.get("/static/css/atm.css").get_data(as_text=True)
    assert "@media print" in css


def test_new_account_deposit_asks_for_confirmation_first(client, raw):
    response = post(client, "NEW1", "10")
    assert response.status_code == 303 and response.location.startswith("/teller/accounts/NEW1/open?")
    confirm = client.get(response.location)  # a GET: Back from the receipt comes here, not to a re-POST
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Open a new account?" in html and "NEW1" in html and "10.00" in html
    assert journal(raw) == []
    key = re.search(r'name="form_key" value="([0-9a-f]{32})"', html).group(1)
    done = post(client, "NEW1", "10", confirm_open="yes", form_key=key)
    assert done.status_code == 303 and "/teller/receipts/" in done.location
    again = client.get(response.location)  # Back: the page again; its form posts the same key, never twice
    assert again.status_code == 200
    assert post(client, "NEW1", "10", confirm_open="yes", form_key=key).location == done.location
    assert journal(raw) == [("NEW1", "deposit", 1000, 1000)]
    assert post(client, "NEW1", "5").status_code == 303  # existing now: no question asked


@pytest.mark.parametrize("query", ["kind=deposit&amount=abc&form_key=" + "a" * 32,
                                   "kind=steal&amount=1&form_key=" + "a" * 32,
                                   "kind=deposit&amount=1&form_key=short", "kind=deposit&amount=1", ""])
def test_a_confirm_page_with_bad_parameters_goes_back_to_the_account(client, query, raw):
    response = client.get(f"/teller/accounts/NEW2/open?{query}")
    assert response.status_code == 303 and response.location == "/teller/accounts/NEW2"
    bad_number = client.get(f"/teller/accounts/N%20W/open?kind=deposit&amount=1&form_key={'a' * 32}")
    assert bad_number.status_code == 303 and bad_number.location == "/"
    assert journal(raw) == []


def test_withdraw_past_limit_reshows_form_and_changes_nothing(client, raw):
    post(client, "LIM", "10", confirm_open="yes")
    response = post(client, "LIM", "1010.01", "withdraw")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "Insufficient funds" in html and "Nothing was recorded" in html
    assert journal(raw) == [("LIM", "deposit", 1000, 1000)]


@pytest.mark.parametrize("amount", ["", "0", "-5", "abc", "1.001", "NaN", "Infinity", "1000000.01", "1,00"])
def test_invalid_amount_reshows_form_and_changes_nothing(client, raw, amount):
    post(client, "INV", "10", confirm_open="yes")
    response = post(client, "INV", amount)
    assert response.status_code == 422
    assert 'role="alert"' in response.get_data(as_text=True)
    assert len(journal(raw)) == 1


def test_post_without_action_changes_nothing(client, raw):
    response = client.post("/teller/transactions", data={"account_number": "X1", "amount": "5",
                                                         "form_key": uuid.uuid4().hex})
    assert response.status_code == 422 and journal(raw) == []


def test_unknown_receipt_and_page_are_html_404_in_layout(client):
    for path in ("/teller/receipts/999", "/no/such/page", "/teller/accounts/bad-number"):
        response = client.get(path)
        assert response.status_code == 404 and response.mimetype == "text/html"
        assert "atm-web" in response.get_data(as_text=True)


def test_405_page_is_html(client):
    response = client.get("/teller/transactions")
    assert response.status_code == 405 and "Method Not Allowed" in response.get_data(as_text=True)


def test_500_page_hides_internals_and_logs_traceback(client, raw, caplog):
    post(client, "ERR", "10", confirm_open="yes")
    raw.execute("ALTER TABLE journal RENAME TO journal_gone")
    response = client.get("/teller/accounts/ERR")
    html = response.get_data(as_text=True)
    assert response.status_code == 500 and "logged" in html
    assert "journal" not in html and "Traceback" not in html
    assert "Traceback" in caplog.text and "journal" in caplog.text


def test_security_headers_on_html(client):
    headers = client.get("/").headers
    assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'self' covers scripts
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "same-origin"
    assert "<script" not in client.get("/").get_data(as_text=True)


@pytest.fixture
def csrf_client(database):
    app = make_app(database, WTF_CSRF_ENABLED=True)
    casey = add_teller(app, "casey")
    open_drawer(app, casey, 0)
    client = log_in(app, app.test_client(), casey)
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app)}"
    yield client
    close_app(app)


def test_csrf_post_without_token_is_400_and_writes_nothing(csrf_client, raw):
    response = post(csrf_client, "CS1", "10", confirm_open="yes")
    assert response.status_code == 400 and "Nothing was recorded" in response.get_data(as_text=True)
    assert journal(raw) == []


def test_csrf_post_with_wrong_token_is_400(csrf_client, raw):
    csrf_client.get("/teller/accounts/CS1")
    response = post(csrf_client, "CS1", "10", confirm_open="yes", csrf_token="forged")
    assert response.status_code == 400 and journal(raw) == []


def test_csrf_post_with_valid_token_is_accepted(csrf_client, raw):
    html = csrf_client.get("/teller/accounts/CS1").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = post(csrf_client, "CS1", "10", confirm_open="yes", csrf_token=token)
    assert response.status_code == 303
    assert journal(raw) == [("CS1", "deposit", 1000, 1000)]


def test_csrf_does_not_apply_to_json_api(csrf_client, raw):
    assert csrf_client.post("/accounts/CS2/deposit", json={"amount": 1}).status_code == 200


def test_a_deposit_past_the_largest_balance_shows_the_form_again(client, db, raw, run):
    from atm_web.core import rules
    from atm_web.ledger import accounts
    run(accounts.deposit(db, "BIG", rules.BALANCE_MAX_CENTS - 5, "test"))
    response = client.post("/teller/transactions", data={"account_number": "BIG", "amount": "0.06",
                                                         "deposit": "Deposit", "form_key": "d" * 32})
    assert response.status_code == 422
    assert "largest balance the ledger holds" in response.get_data(as_text=True)
    assert run(accounts.get_account(db, "BIG")).balance_cents == rules.BALANCE_MAX_CENTS - 5


def test_a_refusal_on_a_page_that_names_no_form_gets_the_refused_page(app):
    """errors.py's fallback: a refusal from a view that named no form page is still a page, with the status."""
    from atm_web.ledger.refusals import InsufficientFunds

    @app.get("/refuse-for-the-test")
    def refuse():
        raise InsufficientFunds()

    response = app.test_client().get("/refuse-for-the-test", headers={"Accept": "text/html"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "<h1>Not recorded</h1>" in html
    assert "Insufficient funds: this would go past the overdraft limit. Nothing was recorded." in html


@pytest.mark.parametrize("zone, moment, shown", [
    ("UTC", 1_700_000_000, "2023-11-14 22:13:20 UTC"),
    ("America/New_York", 1_700_000_000, "2023-11-14 17:13:20 EST"),
    ("America/New_York", 1_690_000_000, "2023-07-22 00:26:40 EDT"),
    ("Europe/Paris", 1_690_000_000, "2023-07-22 06:26:40 CEST"),
])
def test_pages_show_times_in_the_branch_time_zone_with_its_abbreviation(database, clock, zone, moment, shown):
    """BRANCH_TIMEZONE is how every page shows times; the journal and the JSON keep UTC."""
    app = make_app(database, CLOCK=clock, BRANCH_TIMEZONE=zone)
    try:
        tina = add_teller(app, "tina")
        open_drawer(app, tina, 0)
        client = log_in(app, app.test_client(), tina)
        clock.now = moment
        posted = post(client, "TZ1", "5", confirm_open="yes")
        receipt = client.get(posted.location).get_data(as_text=True)
        assert f"<dd>{shown}</dd>" in receipt
        assert f'data-label="Time">{shown}</td>' in client.get("/teller/accounts/TZ1").get_data(as_text=True)
        api = app.test_client()
        api.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app)}"
        (row,) = api.get("/accounts/TZ1/transactions").get_json()["transactions"]
        assert row["created_at"].endswith("Z")
    finally:
        close_app(app)
