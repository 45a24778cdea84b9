"""Per-account overdraft limits: set by an admin (API with an admin token, or the account page), audited."""

import pytest

from atm_web.ledger import accounts
from atm_web.serving import aio

from conftest import add_teller, add_token, bearer, close_app, decide, log_in, make_app


@pytest.fixture
def admin_api(app):
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app, 'limits', admin=True)}"
    return client


def put_limit(client, number, value):
    return client.put(f"/accounts/{number}/overdraft-limit", json={"overdraft_limit": value})


def test_own_limit_set_used_and_cleared(admin_api, raw):
    admin_api.post("/accounts/L1/deposit", json={"amount": 100})
    response = put_limit(admin_api, "L1", 50)
    assert response.status_code == 200
    assert response.get_json() == {"account_number": "L1", "overdraft_limit": 50, "own_limit": True,
                                   "balance": 100, "available": 150}
    assert admin_api.post("/accounts/L1/withdraw", json={"amount": 150.01}).status_code == 400
    assert admin_api.post("/accounts/L1/withdraw", json={"amount": 150}).status_code == 200
    cleared = put_limit(admin_api, "L1", None).get_json()
    assert cleared["overdraft_limit"] == 1000 and cleared["own_limit"] is False
    audit = raw.rows("SELECT actor, action, target, detail FROM audit_log WHERE action LIKE 'overdraft%' "
                     "ORDER BY id")
    assert audit == [("token:limits", "overdraft limit set", "L1", "50.00"),
                     ("token:limits", "overdraft limit set", "L1", "MAX_DEBT")]


def test_limit_below_current_debt_is_refused(admin_api, raw):
    admin_api.post("/accounts/L2/withdraw", json={"amount": 300})
    response = put_limit(admin_api, "L2", 299.99)
    assert response.status_code == 422 and "owes 300.00" in response.get_json()["detail"]
    assert put_limit(admin_api, "L2", 300).status_code == 200
    assert raw.scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'overdraft%'") == 1


@pytest.mark.parametrize("body", [{}, {"overdraft_limit": -1}, {"overdraft_limit": "x"}, {"overdraft_limit": 1.001},
                                  {"overdraft_limit": True}, {"overdraft_limit": 10**9}])
def test_bad_limits_are_422(admin_api, body):
    admin_api.post("/accounts/L3/deposit", json={"amount": 1})
    assert admin_api.put("/accounts/L3/overdraft-limit", json=body).status_code == 422


def test_unknown_account_is_404(admin_api):
    response = put_limit(admin_api, "NOPE", 10)
    assert response.status_code == 404 and response.get_json()["detail"] == "account NOPE does not exist"


def test_own_limit_survives_a_max_debt_change(database, clock):
    app = make_app(database, CLOCK=clock)
    db = app.extensions["atm_db"]
    aio.run(accounts.deposit(db, "L4", 100, "t"))
    aio.run(accounts.set_overdraft_limit(db, "L4", 5000, "t"))
    close_app(app)
    app = make_app(database, CLOCK=clock, MAX_DEBT="10")
    assert aio.run(accounts.get_account(app.extensions["atm_db"], "L4")).overdraft_limit_cents == 5000
    close_app(app)


def test_a_limit_change_on_the_account_page_waits_for_a_supervisor(app, raw):
    ada = log_in(app, app.test_client(), add_teller(app, "ada", "admin"))
    tina = log_in(app, app.test_client(), add_teller(app, "tina"))
    sam = log_in(app, app.test_client(), add_teller(app, "sam", "supervisor"))
    ada.post("/accounts/P1/deposit", json={"amount": 1}, headers=bearer(add_token(app)))
    assert "Own overdraft limit" in tina.get("/teller/accounts/P1").get_data(as_text=True)
    asked = tina.post("/teller/accounts/P1/overdraft-limit", data={"limit": "25", "set_limit": "Set limit"})
    assert asked.status_code == 303 and "/teller/requests/" in asked.location
    assert "Waiting for a supervisor" in tina.get(asked.location).get_data(as_text=True)
    own = "SELECT own_overdraft_limit_cents FROM accounts WHERE account_number = 'P1'"
    assert raw.scalar(own) is None  # held: nothing changed
    assert decide(tina, asked).status_code == 403  # a teller decides nothing
    assert raw.scalar(own) is None
    assert decide(sam, asked).status_code == 303
    assert raw.scalar(own) == 2500
    page = tina.get("/teller/accounts/P1").get_data(as_text=True)
    assert "Overdraft limit (own)" in page and "25.00" in page
    back = ada.post("/teller/accounts/P1/overdraft-limit", data={"use_default": "Use the default limit"})
    assert raw.scalar(own) == 2500
    assert decide(sam, back).status_code == 303
    assert raw.scalar(own) is None
    assert "Overdraft limit (own)" not in ada.get("/teller/accounts/P1").get_data(as_text=True)


def test_cli_admin_token(app, runner):
    secret = runner.invoke(args=["create-token", "ops", "--admin"]).output.strip().splitlines()[-1]
    client = app.test_client()
    client.post("/accounts/C1/deposit", json={"amount": 1}, headers=bearer(secret))
    assert client.put("/accounts/C1/overdraft-limit", json={"overdraft_limit": 5}, headers=bearer(secret)
                      ).status_code == 200
    assert runner.invoke(args=["create-token", "both", "--admin", "--read-only"]).exit_code != 0
