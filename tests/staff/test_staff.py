"""Leavers keep no keys, and the login lock cannot be raced: tellers.py, tokens.py, login_locks.py and the admin
pages that drive them."""
import asyncio
import re

import pytest

from atm_web.core import audit
from atm_web.serving import aio
from atm_web.staff import login_locks, tellers, tokens
from atm_web.storage import IntegrityError

from conftest import PASSWORD, add_teller, bearer, close_app, log_in, make_app


def make_token(client, name, **scope):
    """An API token made on the admin page by the logged-in administrator; returns its secret."""
    response = client.post("/admin/tokens", data={"name": name, **scope})
    assert response.status_code == 201
    return re.search(r'value="(atm_[^"]+)"', response.get_data(as_text=True)).group(1)


@pytest.fixture
def admins(app):
    """ada and bob, two logged-in administrators; ada made an admin token and a read-only one."""
    ada, bob = add_teller(app, "ada", "admin"), add_teller(app, "bob", "admin")
    ada_client, bob_client = log_in(app, app.test_client(), ada), log_in(app, app.test_client(), bob)
    secrets_ = {"ops": make_token(ada_client, "ops", admin="y"), "report": make_token(ada_client, "report",
                                                                                      read_only="y")}
    return ada, bob, ada_client, bob_client, secrets_


def test_deactivating_an_administrator_revokes_every_token_they_made(app, admins, raw):
    ada, _bob, _ada_client, bob_client, secrets_ = admins
    api = app.test_client()
    ops = bearer(secrets_["ops"])
    assert api.post("/accounts/M1/deposit", json={"amount": 10}, headers=ops).status_code == 200  # now cached
    assert bob_client.post(f"/admin/tellers/{ada.id}/deactivate", data={"confirm": "yes"}).status_code == 303
    # The probe's attack, after the deactivation: deposit, raise a limit, withdraw. Every step refused.
    assert api.post("/accounts/M1/deposit", json={"amount": 10}, headers=ops).status_code == 401
    assert api.put("/accounts/M1/overdraft-limit", json={"overdraft_limit": 100000000}, headers=ops
                   ).status_code == 401
    assert api.post("/accounts/M1/withdraw", json={"amount": 1000000}, headers=ops).status_code == 401
    assert api.get("/accounts/M1/balance", headers=bearer(secrets_["report"])).status_code == 401
    revoked = raw.rows("SELECT name, revoked_at IS NOT NULL, revoked_reason FROM api_tokens ORDER BY name")
    audit = raw.rows("SELECT actor, action, target, detail FROM audit_log WHERE action = 'token revoked' ORDER BY id")
    reason = "its maker ada was deactivated"
    assert revoked == [("ops", True, reason), ("report", True, reason)]
    assert audit == [("teller:bob", "token revoked", "ops", "its maker ada was deactivated"),
                     ("teller:bob", "token revoked", "report", "its maker ada was deactivated")]
    page = bob_client.get("/admin/tokens").get_data(as_text=True)
    assert page.count("its maker ada was deactivated") == 2
    # Reactivation gives ada her logins back, not her tokens.
    assert bob_client.post(f"/admin/tellers/{ada.id}/reactivate").status_code == 303
    assert api.post("/accounts/M1/deposit", json={"amount": 10}, headers=ops).status_code == 401
    assert api.get("/accounts/M1/balance", headers=bearer(secrets_["report"])).status_code == 401


def test_only_the_leavers_tokens_are_revoked(app, admins, runner):
    ada, _bob, _ada_client, bob_client, secrets_ = admins
    bobs = make_token(bob_client, "bobs")
    cli = runner.invoke(args=["create-token", "batch"]).output.strip().splitlines()[-1]
    aio.run(tellers.set_active(app.extensions["atm_db"], ada.id, False, "test", app.config["CLOCK"]()))
    api = app.test_client()
    assert api.get("/accounts/M1/balance", headers=bearer(bobs)).status_code == 200
    assert api.get("/accounts/M1/balance", headers=bearer(cli)).status_code == 200
    assert api.get("/accounts/M1/balance", headers=bearer(secrets_["ops"])).status_code == 401


def test_a_manual_revocation_keeps_its_own_reason(app, admins):
    ada, _bob, _ada_client, bob_client, _secrets = admins
    token_id = next(t.id for t in aio.run(tokens.list_tokens(app.extensions["atm_db"])) if t.name == "report")
    assert bob_client.post(f"/admin/tokens/{token_id}/revoke").status_code == 303
    aio.run(tellers.set_active(app.extensions["atm_db"], ada.id, False, "test", app.config["CLOCK"]()))
    reasons = {t.name: t.revoked_reason for t in aio.run(tokens.list_tokens(app.extensions["atm_db"]))}
    assert reasons == {"ops": "its maker ada was deactivated", "report": "revoked by teller:bob"}


def test_a_deactivation_refused_midway_revokes_nothing(app, admins, raw):
    """The revocations share the deactivation's transaction: a failure in it leaves every token working."""
    ada, _bob, ada_client, _bob_client, secrets_ = admins
    raw.script(  # the last step fails (as a full disk might): after ops is revoked
        "CREATE TRIGGER last_step_fails BEFORE INSERT ON audit_log WHEN NEW.action = 'token revoked' "
        "AND NEW.target = 'report' BEGIN SELECT RAISE(ABORT, 'refused'); END;",
        "CREATE FUNCTION last_step_fails() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.action = "
        "'token revoked' AND NEW.target = 'report' THEN RAISE EXCEPTION 'refused' USING ERRCODE = "
        "'integrity_constraint_violation'; END IF; RETURN NEW; END $$; CREATE TRIGGER last_step_fails BEFORE "
        "INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION last_step_fails();")
    with pytest.raises(IntegrityError, match="refused"):
        aio.run(tellers.set_active(app.extensions["atm_db"], ada.id, False, "test", app.config["CLOCK"]()))
    assert app.test_client().get("/accounts/M1/balance", headers=bearer(secrets_["ops"])).status_code == 200
    assert all(t.revoked_at is None for t in aio.run(tokens.list_tokens(app.extensions["atm_db"])))
    assert aio.run(tellers.get_teller(app.extensions["atm_db"], ada.id)).active
    assert ada_client.get("/").status_code == 200  # her session was not ended either


def test_deactivation_revokes_at_once_in_another_process(database, clock):
    first, second = make_app(database, CLOCK=clock), make_app(database, CLOCK=clock)
    try:
        olga = add_teller(first, "olga", "admin")
        _, secret = aio.run(tokens.create_token(first.extensions["atm_db"], "olgas", False, olga.actor, clock(),
                                               admin=True))
        api = second.test_client()
        assert api.get("/accounts/1/balance", headers=bearer(secret)).status_code == 200  # cached there
        aio.run(tellers.set_active(first.extensions["atm_db"], olga.id, False, "test", clock()))
        assert api.post("/accounts/1/deposit", json={"amount": 1}, headers=bearer(secret)).status_code == 401
    finally:
        close_app(first)
        close_app(second)


def test_admin_page_warns_before_deactivating_someone_who_made_tokens(app, admins):
    ada, bob, _ada_client, bob_client, secrets_ = admins
    carl = add_teller(app, "carl")
    page = bob_client.get("/admin/tellers").get_data(as_text=True)
    assert f'href="/admin/tellers/{ada.id}/deactivate"' in page     # ada: a link to the warning first
    assert f'action="/admin/tellers/{carl.id}/deactivate"' in page  # carl made no tokens: the button itself
    warning = bob_client.get(f"/admin/tellers/{ada.id}/deactivate")
    text = warning.get_data(as_text=True)
    assert warning.status_code == 200
    assert "also revokes the 2 API tokens ada made" in text and "ops" in text and "report" in text
    # A post without the confirmation (an old page, a script) changes nothing and shows the warning.
    unconfirmed = bob_client.post(f"/admin/tellers/{ada.id}/deactivate")
    assert unconfirmed.status_code == 303 and unconfirmed.location == f"/admin/tellers/{ada.id}/deactivate"
    assert aio.run(tellers.find_teller(app.extensions["atm_db"], "ada"))[0].active
    assert app.test_client().get("/accounts/1/balance", headers=bearer(secrets_["ops"])).status_code == 200
    assert bob_client.post(f"/admin/tellers/{carl.id}/deactivate").status_code == 303  # no tokens: no warning
    assert not aio.run(tellers.find_teller(app.extensions["atm_db"], "carl"))[0].active
    assert bob_client.get(f"/admin/tellers/{bob.id}/deactivate").status_code == 303     # not yourself
    assert bob_client.get("/admin/tellers/999/deactivate").status_code == 404


# The login lock: attempts are reserved before the password check

def reserve(db, username, address, now):
    """The attempt's id, or the kind of lock that refused it."""
    try:
        return aio.run(login_locks.reserve_attempt(db, username, address, now))
    except login_locks.LoginLocked as refused:
        return refused.kind


def test_concurrent_attempts_reserve_at_most_five_checks(db, clock):
    async def burst():
        return await asyncio.gather(*(login_locks.reserve_attempt(db, "tina", "10.0.0.1", clock())
                                      for _ in range(40)), return_exceptions=True)

    outcomes = aio.run(burst())
    assert sum(isinstance(o, int) for o in outcomes) == login_locks.USERNAME_ATTEMPTS
    assert {o.kind for o in outcomes if not isinstance(o, int)} == {"username"}


def test_address_reservations_stop_at_twenty(db, clock):
    async def burst():
        return await asyncio.gather(*(login_locks.reserve_attempt(db, f"user{i}", "10.0.0.2", clock())
                                      for i in range(30)), return_exceptions=True)

    outcomes = aio.run(burst())
    assert sum(isinstance(o, int) for o in outcomes) == login_locks.ADDRESS_ATTEMPTS
    assert {o.kind for o in outcomes if not isinstance(o, int)} == {"address"}


def test_a_success_releases_its_reservation_but_not_the_others_in_flight(db, clock):
    now = clock()
    in_flight = [reserve(db, "tina", "10.0.0.3", now) for _ in range(4)]
    mine = reserve(db, "tina", "10.0.0.3", now)
    assert all(isinstance(a, int) for a in [*in_flight, mine])
    assert reserve(db, "tina", "10.0.0.3", now) == "username"
    aio.run(login_locks.attempt_succeeded(db, "tina", mine))
    assert isinstance(reserve(db, "tina", "10.0.0.3", now), int)   # one place freed
    assert reserve(db, "tina", "10.0.0.3", now) == "username"      # four still held


def test_failures_reaching_the_limit_lock_for_fifteen_minutes(db, clock):
    for _ in range(5):
        locked = aio.run(login_locks.attempt_failed(db, reserve(db, "tina", "10.0.0.4", clock()), clock()))
    assert locked == "username"
    clock.advance(login_locks.LOCK_S - 1)
    assert reserve(db, "tina", "10.0.0.4", clock()) == "username"
    clock.advance(1)
    assert isinstance(reserve(db, "tina", "10.0.0.4", clock()), int)


def login(client, username="tina", password=PASSWORD):
    return client.post("/login", data={"username": username, "password": password})


def test_admin_unlocks_a_locked_username_and_it_is_audited(app, clock):
    _tina, ada = add_teller(app, "tina"), add_teller(app, "ada", "admin")
    for attempt in range(5):
        login(app.test_client(), password=f"typo {attempt}")
    assert login(app.test_client()).status_code == 429
    admin = log_in(app, app.test_client(), ada)
    page = admin.get("/admin/tellers").get_data(as_text=True)
    assert "Locked logins" in page and "Unlock tina" in page
    assert admin.post("/admin/login-locks/unlock", data={"kind": "username", "subject": "tina"}).status_code == 303
    assert login(app.test_client()).status_code == 303
    assert "Unlock tina" not in admin.get("/admin/tellers").get_data(as_text=True)
    entries = [(e.actor, e.action, e.target) for e in aio.run(audit.entries(app.extensions["atm_db"]))]
    assert ("teller:ada", "login unlocked", "username tina") in entries


def test_unlock_of_nothing_locked_says_so_and_writes_nothing(app):
    ada = add_teller(app, "ada", "admin")
    admin = log_in(app, app.test_client(), ada)
    response = admin.post("/admin/login-locks/unlock", data={"kind": "username", "subject": "nobody"},
                          follow_redirects=True)
    assert "not locked" in response.get_data(as_text=True)
    bad = admin.post("/admin/login-locks/unlock", data={"kind": "planet", "subject": "x"})
    assert bad.status_code == 303
    assert [e.action for e in aio.run(audit.entries(app.extensions["atm_db"]))] == ["teller added"]
