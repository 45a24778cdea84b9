"""The teller's drawer pages and the administrators' vault page: cash needs an open drawer, counts are whole
numbers by denomination, the close is blind, variances beyond tolerance wait for another admin's sign-off."""
import re
import uuid

import pytest

from atm_web.cash import vault
from atm_web.serving import aio
from atm_web.staff import tellers

from conftest import add_teller, holder_fields, log_in, open_drawer

VAULT_KEEPER = tellers.Teller(0, "vault-keeper", "admin", True, "")


def post_cash(client, number, amount, action="deposit"):
    return client.post("/teller/transactions", data={"account_number": number, "amount": amount,
                                                     action: action.capitalize(), "form_key": uuid.uuid4().hex,
                                                     "confirm_open": "yes", **holder_fields()})


def counts(**by_denomination):
    """Form data for a count: counts(n2000=3) -> {'count_2000': '3'}."""
    return {f"count_{name[1:]}": str(value) for name, value in by_denomination.items()}


@pytest.fixture
def people(app):
    tina, ada = add_teller(app, "tina"), add_teller(app, "ada", "admin")
    return (tina, log_in(app, app.test_client(), tina)), (ada, log_in(app, app.test_client(), ada))


def test_cash_without_an_open_drawer_is_refused_with_a_link_and_writes_nothing(people, raw):
    (_, teller), _ = people
    page = teller.get("/teller/accounts/N1").get_data(as_text=True)
    assert 'href="/teller/drawer/">Open drawer</a>' in page
    rows = raw.all_rows_count()
    for action in ("deposit", "withdraw"):
        refused = post_cash(teller, "N1", "10", action)
        assert refused.status_code == 409
        assert "You have no open drawer" in refused.get_data(as_text=True)
    assert raw.all_rows_count() == rows
    assert teller.post("/teller/transfer", data={"from_account": "N1", "to_account": "N2", "amount": "1",
                                                 "form_key": uuid.uuid4().hex}).status_code == 422  # not cash:
    # refused only because N1 does not exist, not for want of a drawer


def test_the_top_bar_links_my_drawer_and_count_fields_are_labelled_by_denomination(people):
    (_, teller), _ = people
    page = teller.get("/teller/drawer/").get_data(as_text=True)
    assert '<a href="/teller/drawer/" aria-current="page">My drawer</a>' in page
    labels = re.findall(r'<label for="count_(\d+)">(Count of [0-9.,]+)</label>', page)
    assert labels[:3] == [("10000", "Count of 100.00"), ("5000", "Count of 50.00"), ("2000", "Count of 20.00")]
    assert labels[-1] == ("1", "Count of 0.01") and len(labels) == 11
    assert 'type="submit" value="Open drawer"' in page


@pytest.mark.parametrize("bad", ["-1", "1.5", "abc", "1e3", "٣", "1000001"])
def test_a_count_that_is_not_a_whole_number_from_zero_is_a_form_error(people, raw, bad):
    (_, teller), _ = people
    rows = raw.all_rows_count()
    refused = teller.post("/teller/drawer/open", data=counts(n2000=bad))
    assert refused.status_code == 422
    assert "Enter a whole number from 0" in refused.get_data(as_text=True)
    assert raw.all_rows_count() == rows and raw.scalar("SELECT COUNT(*) FROM drawer_sessions") == 0


def test_open_needs_the_float_in_the_vault(app, people, raw):
    (_, teller), _ = people
    refused = teller.post("/teller/drawer/open", data=counts(n2000=5))
    assert refused.status_code == 409 and "Not enough cash in the vault" in refused.get_data(as_text=True)
    aio.run(vault.ship_cash(app.extensions["atm_db"], "in", 50000, "CIT", VAULT_KEEPER))
    opened = teller.post("/teller/drawer/open", data=counts(n2000=5, n100=3))
    assert opened.status_code == 303
    page = teller.get("/teller/drawer/").get_data(as_text=True)
    assert "Drawer open with a float of 103.00." in page and "Close drawer" in page


def test_the_close_is_blind_then_shows_expected_counted_and_the_variance(app, people, raw):
    (tina, teller), (_, admin) = people
    open_drawer(app, tina, 10000)
    assert post_cash(teller, "B1", "23.45").status_code == 303  # expected now 123.45
    for page in (teller.get("/teller/drawer/"), teller.get("/teller/drawer/close"),
                 teller.post("/teller/drawer/close", data=counts(n2000="x"))):
        assert "123.45" not in page.get_data(as_text=True)
    closed = teller.post("/teller/drawer/close", data=counts(n10000=1, n1000=1, n100=3, n25=1, n10=2))  # 113.45
    assert closed.status_code == 303
    result = teller.get(closed.location).get_data(as_text=True)
    for shown in ("<dt>Expected</dt><dd>123.45</dd>", "<dt>Counted</dt><dd>113.45</dd>",
                  "<dd>-10.00 short</dd>", "waits for an administrator"):
        assert shown in result
    waiting = post_cash(teller, "B1", "1")
    assert waiting.status_code == 409 and "sign-off" in waiting.get_data(as_text=True)
    page = admin.get("/admin/vault/").get_data(as_text=True)
    assert "Drawer 1 of tina" in page and "Sign off" in page
    csrf = admin.post("/admin/vault/sessions/1/sign-off", data={"note": ""})
    assert csrf.status_code == 303 and raw.scalar("SELECT status FROM drawer_sessions") == "pending_signoff"
    assert admin.post("/admin/vault/sessions/1/sign-off", data={"note": "recounted"}).status_code == 303
    assert raw.rows("SELECT status, signed_off_by FROM drawer_sessions") == [("closed", "ada")]


def test_vault_requests_are_confirmed_by_an_admin_on_the_vault_page(app, people, raw):
    (tina, teller), (_, admin) = people
    open_drawer(app, tina, 5000)
    aio.run(vault.ship_cash(app.extensions["atm_db"], "in", 20000, "CIT", VAULT_KEEPER))
    assert teller.post("/teller/drawer/movements", data={"amount": "40", "to_drawer": "Ask for cash"}
                       ).status_code == 303
    assert "Cash from the vault" in teller.get("/teller/drawer/").get_data(as_text=True)
    page = admin.get("/admin/vault/").get_data(as_text=True)
    assert "Confirm 40.00 for tina" in page and "200.00" in page
    assert admin.post("/admin/vault/movements/1", data={"decision": "confirm"}).status_code == 303
    assert aio.run(vault.cash_held(app.extensions["atm_db"], "@drawer-1")) == 9000
    assert raw.scalar("SELECT status FROM vault_movements") == "confirmed"


def test_an_admins_own_drawer_request_waits_for_another_admin(app, people, raw):
    _, (ada, admin) = people
    open_drawer(app, ada, 0)
    admin.post("/teller/drawer/movements", data={"amount": "5", "to_vault": "Send to the vault"})
    assert "another administrator decides" in admin.get("/admin/vault/").get_data(as_text=True)
    refused = admin.post("/admin/vault/movements/1", data={"decision": "confirm"}, follow_redirects=True)
    assert "Another administrator must confirm" in refused.get_data(as_text=True)
    assert raw.scalar("SELECT status FROM vault_movements") == "pending"


def test_a_shipment_form_submitted_twice_moves_cash_once(app, people, raw):
    _, (_, admin) = people
    form = {"amount": "500", "reference": "CIT 42", "receive": "Receive cash", "form_key": uuid.uuid4().hex}
    first = admin.post("/admin/vault/shipments", data=form, follow_redirects=True)
    again = admin.post("/admin/vault/shipments", data=form, follow_redirects=True)
    assert "Cash received: 500.00" in first.get_data(as_text=True)
    assert "already submitted" in again.get_data(as_text=True)
    assert aio.run(vault.cash_held(app.extensions["atm_db"])) == 50000
    assert admin.post("/admin/vault/shipments", data={**form, "receive": "", "form_key": uuid.uuid4().hex}
                      ).status_code == 422


def test_an_admin_closes_a_drawer_left_open_from_the_vault_page(app, people, raw):
    (tina, teller), (_, admin) = people
    open_drawer(app, tina, 5000)
    assert post_cash(teller, "L1", "12.34").status_code == 303  # expected now 62.34
    assert "close it for tina" in admin.get("/admin/vault/").get_data(as_text=True)
    page = admin.get("/admin/vault/sessions/1/close").get_data(as_text=True)
    assert "Close drawer 1 of tina" in page and "62.34" not in page
    closed = admin.post("/admin/vault/sessions/1/close", data=counts(n1000=6, n100=2, n25=1, n5=1, n1=4))
    assert closed.status_code == 303
    result = admin.get(closed.location).get_data(as_text=True)
    assert "counted by ada" in result and "<dt>Variance</dt><dd>0.00</dd>" in result
    assert raw.rows("SELECT status, closed_by FROM drawer_sessions") == [("closed", "ada")]
    assert teller.get("/admin/vault/sessions/1/close").status_code == 403
