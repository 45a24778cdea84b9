"""Logins, sessions, lockout, first-run setup, the CLI's tellers and tokens, the audit log, who did it."""
import os
import re
import subprocess
import sys

import pytest

from atm_web.core import audit
from atm_web.serving import aio
from atm_web.staff import common as staff
from atm_web.staff import tellers, tokens

from conftest import PASSWORD, ROOT, add_teller, add_token, bearer, close_app, holder_fields, log_in, make_app


def login(client, username="tina", password=PASSWORD, **kwargs):
    return client.post("/login", data={"username": username, "password": password}, **kwargs)


def sid_of(client):
    with client.session_transaction() as session:
        return session.get("sid")


@pytest.fixture
def tina(app):
    return add_teller(app, "tina")


def test_login_page_labels(app):
    html = app.test_client().get("/login").get_data(as_text=True)
    assert ">Username</label>" in html and ">Password</label>" in html and 'value="Log in"' in html


def test_login_then_pages_then_logout_ends_session_server_side(app, tina):
    client = app.test_client()
    response = login(client)
    assert response.status_code == 303 and response.location == "/"
    assert client.get("/").status_code == 200
    stolen = client.get_cookie("atm_session").value
    assert client.post("/logout").status_code == 303
    assert client.get("/").status_code == 303
    replay = app.test_client()  # the old cookie, replayed after logout, is refused
    replay.set_cookie("atm_session", stolen)
    assert replay.get("/").status_code == 303


def test_login_redirects_back_to_the_page_asked_for_but_never_off_site(app, tina):
    client = app.test_client()
    assert client.get("/teller/accounts/A7").location == "/login?next=/teller/accounts/A7"
    assert login(client, query_string={"next": "/teller/accounts/A7"}).location == "/teller/accounts/A7"
    other = app.test_client()
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        assert login(other, query_string={"next": evil}).location == "/"


@pytest.mark.parametrize("raw_next", ["/%09/evil.example", "/%0a/evil.example", "/%0d%0aSet-Cookie:x=1",
                                      "%2f%2fevil.example", "/%5cevil.example", "/%c2%a0/evil.example",
                                      "https:evil.example", "/%09/evil.example/%0a", "/ /evil.example"])
def test_next_is_checked_after_decoding(app, tina, raw_next):
    client = app.test_client()
    response = client.post(f"/login?next={raw_next}", data={"username": "tina", "password": PASSWORD})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200  # logged in, never a 500


def test_a_next_with_a_nul_is_refused_before_the_login(app, tina, raw):
    """A control character in the query string is refused where it enters (text_input.py), never a 500."""
    response = app.test_client().post("/login?next=/%00/x", data={"username": "tina", "password": PASSWORD})
    assert response.status_code == 422 and "control character" in response.get_data(as_text=True)
    assert raw.scalar("SELECT COUNT(*) FROM sessions") == 0


def test_next_keeps_an_ordinary_path_and_query(app, tina):
    response = login(app.test_client(), query_string={"next": "/teller/accounts/A7?x=1"})
    assert response.location == "/teller/accounts/A7?x=1"


def test_session_is_renewed_at_login(app, tina):
    client = app.test_client()
    with client.session_transaction() as session:  # an attacker-planted session id and CSRF token
        session["sid"], session["csrf_token"] = "planted", "planted-csrf"
    login(client)
    assert sid_of(client) not in (None, "planted")
    with client.session_transaction() as session:
        assert session.get("csrf_token") != "planted-csrf"
    first = sid_of(client)
    login(client)
    assert sid_of(client) != first


def test_idle_expiry_and_absolute_expiry(app, tina, clock):
    client = app.test_client()
    login(client)
    clock.advance(14 * 60)
    assert client.get("/").status_code == 200          # 14 minutes idle: still in
    clock.advance(15 * 60 + 1)
    assert client.get("/").status_code == 303          # 15 minutes idle: out
    login(client)
    for _ in range(12 * 6 - 1):                        # busy all day, a request every 10 minutes
        clock.advance(10 * 60)
        assert client.get("/").status_code == 200
    clock.advance(10 * 60 + 1)                         # past 12 hours since login: out
    assert client.get("/").status_code == 303


def test_session_limits_are_configurable(database, clock):
    app = make_app(database, CLOCK=clock, SESSION_IDLE_MINUTES="2")
    try:
        add_teller(app, "tina")
        client = app.test_client()
        login(client)
        clock.advance(121)
        assert client.get("/").status_code == 303
    finally:
        close_app(app)


def test_wrong_password_and_unknown_user_get_the_same_answer(app, tina):
    wrong = login(app.test_client(), password="wrong password x")
    unknown = login(app.test_client(), username="nobody")
    assert wrong.status_code == unknown.status_code == 401
    message = "Login failed: check the username and password."
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)


def test_deactivated_teller_cannot_log_in(app, tina, clock):
    aio.run(tellers.set_active(app.extensions["atm_db"], tina.id, False, "test", clock()))
    assert login(app.test_client()).status_code == 401


def test_lockout_after_five_failures_refuses_correct_password_then_lifts(app, tina, clock, caplog):
    client = app.test_client()
    for attempt in range(4):
        assert login(client, password=f"wrong password {attempt}").status_code == 401
    fifth = login(client, password="wrong password 5")
    assert fifth.status_code == 429 and "locked for a while" in fifth.get_data(as_text=True)
    assert login(client).status_code == 429               # the right password, refused while locked
    assert login(client, username="TINA").status_code == 429  # usernames are case-insensitive
    clock.advance(14 * 60)
    assert login(client).status_code == 429
    clock.advance(60 + 1)
    assert login(client).status_code == 303               # 15 minutes later the lock has lifted
    assert "login failed" in caplog.text and "now locked" in caplog.text


def test_lock_does_not_reveal_whether_the_username_exists(app):
    client = app.test_client()
    for attempt in range(5):
        response = login(client, username="ghost", password=f"wrong password {attempt}")
    assert response.status_code == 429 and "locked for a while" in response.get_data(as_text=True)


@pytest.mark.slow
def test_address_with_twenty_failures_is_refused(app, tina, clock):
    client = app.test_client()
    for attempt in range(19):
        assert login(client, username=f"user{attempt}", password="wrong password!").status_code == 401
    assert login(client, username="user19", password="wrong password!").status_code == 429
    assert login(client).status_code == 429               # tina's right password, from that address
    other = app.test_client()
    assert login(other, environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 303


def test_successful_login_clears_earlier_failures(app, tina):
    client = app.test_client()
    for attempt in range(4):
        login(client, password=f"wrong password {attempt}")
    assert login(client).status_code == 303
    assert login(app.test_client(), password="wrong password again").status_code == 401


# First-run setup

def setup_code(app):
    """The code printed at start-up, as the database keeps it for every server."""
    rows = aio.run(app.extensions["atm_db"].read(lambda conn: conn.fetchall("SELECT code FROM setup_code")))
    return rows[0][0]


def test_first_run_setup_refused_without_code_works_with_it_then_refused(app, caplog):
    code = setup_code(app)
    client = app.test_client()
    assert client.get("/setup").status_code == 404
    assert client.get("/setup?code=wrong").status_code == 404
    form = {"username": "root", "password": "a long password", "confirm": "a long password"}
    assert client.post("/setup", data={**form, "code": "wrong"}).status_code == 404
    page = client.get(f"/setup?code={code}")
    assert page.status_code == 200 and "Create the first administrator" in page.get_data(as_text=True)
    short = client.post("/setup", data={**form, "password": "short", "confirm": "short", "code": code})
    assert short.status_code == 422
    done = client.post("/setup", data={**form, "code": code})
    assert done.status_code == 303
    assert client.get("/admin/tellers").status_code == 200  # logged in, as an admin
    assert client.get(f"/setup?code={code}").status_code == 404
    assert app.test_client().post("/setup", data={**form, "username": "root2", "code": code}).status_code == 404
    found = aio.run(tellers.list_tellers(app.extensions["atm_db"]))
    assert [(t.username, t.role) for t in found] == [("root", "admin")]


def test_startup_prints_the_setup_link_only_while_no_teller_exists(database, clock, caplog):
    app = make_app(database, CLOCK=clock)
    code = setup_code(app)
    assert f"/setup?code={code}" in caplog.text
    caplog.clear()
    other = make_app(database, CLOCK=clock)  # another server, on no shared disk: the same code
    assert f"/setup?code={code}" in caplog.text
    close_app(other)
    add_teller(app, "ada", "admin")
    close_app(app)
    caplog.clear()
    close_app(make_app(database, CLOCK=clock))
    assert "/setup?code=" not in caplog.text


def test_the_setup_code_is_gone_once_the_first_admin_exists(app, raw):
    code = setup_code(app)
    form = {"username": "root", "password": "a long password", "confirm": "a long password", "code": code}
    assert app.test_client().post("/setup", data=form).status_code == 303
    assert raw.rows("SELECT code FROM setup_code") == []


# Admin pages, the audit log, and who did it

def test_admin_manages_tellers_and_tokens_and_everything_is_audited(app, clock):
    ada = add_teller(app, "ada", "admin")
    from conftest import log_in
    client = log_in(app, app.test_client(), ada)
    assert client.post("/admin/tellers", data={"username": "Bob", "password": "b" * 12, "confirm": "b" * 12}
                       ).status_code == 303
    taken = client.post("/admin/tellers", data={"username": "bob", "password": "b" * 12, "confirm": "b" * 12})
    assert taken.status_code == 422 and "taken" in taken.get_data(as_text=True)
    bob = aio.run(tellers.find_teller(app.extensions["atm_db"], "bob"))[0]
    bob_client = app.test_client()
    assert login(bob_client, "bob", "b" * 12).status_code == 303
    assert client.post(f"/admin/tellers/{bob.id}/password", data={"password": "c" * 12}).status_code == 303
    assert bob_client.get("/").status_code == 303          # a reset ends the teller's sessions
    assert login(app.test_client(), "bob", "c" * 12).status_code == 303
    assert client.post(f"/admin/tellers/{bob.id}/deactivate").status_code == 303
    assert client.post(f"/admin/tellers/{ada.id}/deactivate").status_code == 303  # refused: yourself
    assert client.post(f"/admin/tellers/{bob.id}/reactivate").status_code == 303
    created = client.post("/admin/tokens", data={"name": "nightly", "read_only": "y"})
    secret = re.search(r'value="(atm_[^"]+)"', created.get_data(as_text=True)).group(1)
    assert created.status_code == 201
    listing = client.get("/admin/tokens").get_data(as_text=True)
    assert "nightly" in listing and "read-only" in listing and secret not in listing
    api = app.test_client()
    assert api.get("/accounts/1/balance", headers=bearer(secret)).status_code == 200
    assert "never" not in client.get("/admin/tokens").get_data(as_text=True)  # last used is shown
    token_id = aio.run(tokens.list_tokens(app.extensions["atm_db"]))[0].id
    assert client.post(f"/admin/tokens/{token_id}/revoke").status_code == 303
    assert api.get("/accounts/1/balance", headers=bearer(secret)).status_code == 401
    page = client.get("/admin/audit").get_data(as_text=True)
    for action in ("teller added", "password reset", "teller deactivated", "teller reactivated",
                   "token created", "token revoked"):
        assert action in page
    assert 'data-label="By">ada</td>' in page  # the teller's name on the page; the row keeps "teller:ada"
    entries = aio.run(audit.entries(app.extensions["atm_db"]))
    assert [e.action for e in entries if e.target == "ada"] == ["teller added"]  # self-deactivation refused


def test_audit_log_is_append_only(app, raw):
    add_teller(app, "ada", "admin")
    for change in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(raw.IntegrityError, match="immutable"):
            raw.execute(change)
    assert raw.scalar("SELECT COUNT(*) FROM audit_log") == 1


def test_journal_records_who_did_it(app, client):
    client.post("/teller/transactions", data={"account_number": "W1", "amount": "5", "deposit": "Deposit",
                                              "confirm_open": "yes", "form_key": "a" * 32, **holder_fields()})
    client.post("/accounts/W1/deposit", json={"amount": 1})
    rows = client.get("/accounts/W1/transactions").get_json()["transactions"]
    assert [row["actor"] for row in rows] == ["token:test-script", "teller:tina"]
    page = client.get("/teller/accounts/W1").get_data(as_text=True)
    assert 'data-label="By">tina</td>' in page and 'data-label="By">test-script (API token)</td>' in page
    receipt = client.get(f"/teller/receipts/{rows[1]['transaction_id']}").get_data(as_text=True)
    assert "<dd>tina</dd>" in receipt and "teller:" not in receipt  # the JSON keeps the actor, the page the name


# The command line

def test_cli_create_teller_reads_password_from_stdin(app, runner):
    result = runner.invoke(args=["create-teller", "carol", "--admin"], input="a strong password\n")
    assert result.exit_code == 0, result.output
    assert login(app.test_client(), "carol", "a strong password").status_code == 303
    assert runner.invoke(args=["create-teller", "dan"], input="short\n").exit_code != 0
    assert runner.invoke(args=["create-teller", "carol"], input="another long one\n").exit_code != 0


def test_cli_create_teller_takes_a_role(app, runner, raw):
    made = runner.invoke(args=["create-teller", "sam", "--role", "supervisor"], input="a strong password\n")
    assert made.exit_code == 0 and "Added supervisor sam" in made.output
    assert runner.invoke(args=["create-teller", "tom"], input="a strong password\n").output.startswith("Added teller")
    assert runner.invoke(args=["create-teller", "x1", "--role", "boss"], input="a strong password\n").exit_code == 2
    assert runner.invoke(args=["create-teller", "x2", "--role", "teller", "--admin"],
                         input="a strong password\n").exit_code == 2
    assert raw.rows("SELECT username, role FROM tellers ORDER BY username") == [("sam", "supervisor"),
                                                                                ("tom", "teller")]


def test_the_admin_page_sets_roles_audited_and_a_demoted_admin_keeps_no_tokens(app, raw):
    ada, olga = add_teller(app, "ada", "admin"), add_teller(app, "olga", "admin")
    page_client = log_in(app, app.test_client(), ada)
    from atm_web.serving import aio
    from atm_web.staff import tokens
    aio.run(tokens.create_token(app.extensions["atm_db"], "olgas", False, olga.actor, app.config["CLOCK"](), True))
    page = page_client.get("/admin/tellers").get_data(as_text=True)
    assert f'for="role-{olga.id}">Role of olga</label>' in page and 'value="supervisor"' in page
    assert page_client.post(f"/admin/tellers/{olga.id}/role", data={"role": "supervisor"}).status_code == 303
    assert raw.rows("SELECT role FROM tellers WHERE username = 'olga'") == [("supervisor",)]
    assert raw.scalar("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL") == 0
    assert raw.rows("SELECT actor, action, target FROM audit_log WHERE action LIKE 'role%'") == [
        ("teller:ada", "role set to supervisor", "olga")]
    own = page_client.post(f"/admin/tellers/{ada.id}/role", data={"role": "teller"})
    assert "You cannot change your own role" in page_client.get(own.location).get_data(as_text=True)
    assert page_client.post(f"/admin/tellers/{olga.id}/role", data={"role": "king"}).status_code == 303
    assert raw.rows("SELECT username, role FROM tellers ORDER BY 1") == [("ada", "admin"), ("olga", "supervisor")]
    added = page_client.post("/admin/tellers", data={"username": "sue", "password": "p" * 12, "confirm": "p" * 12,
                                                     "role": "supervisor"})
    assert added.status_code == 303 and raw.scalar("SELECT role FROM tellers WHERE username = 'sue'") == "supervisor"


def test_cli_create_token_prints_it_alone_on_the_last_line(app, runner, raw):
    result = runner.invoke(args=["create-token", "nightly", "--read-only"])
    assert result.exit_code == 0
    secret = result.output.strip().splitlines()[-1]
    assert re.fullmatch(r"atm_[A-Za-z0-9_-]{40,}", secret)
    api = app.test_client()
    assert api.get("/accounts/1/balance", headers=bearer(secret)).status_code == 200
    assert api.post("/accounts/1/deposit", json={"amount": 1}, headers=bearer(secret)).status_code == 403
    stored = raw.rows("SELECT * FROM api_tokens")  # stored only as a hash
    assert secret not in str(stored) and staff.sha256(secret) in str(stored)


def test_passwords_are_stored_as_werkzeug_default_hashes(app, raw):
    add_teller(app, "tina")
    stored = raw.scalar("SELECT password_hash FROM tellers")
    assert stored.startswith("scrypt:") and PASSWORD not in stored


def test_token_header_variants(app):
    secret = add_token(app)
    api = app.test_client()
    for header in ("", "Bearer", f"Basic {secret}", f"Bearer {secret}x", "Bearer atm_"):
        response = api.get("/accounts/1/balance", headers={"Authorization": header} if header else {})
        assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    assert api.get("/accounts/1/balance", headers={"Authorization": f"bearer  {secret}"}).status_code == 200


def test_setup_refused_once_a_teller_exists_even_with_a_valid_code(app):
    code = setup_code(app)  # printed at start-up; then someone makes a teller with the CLI
    add_teller(app, "ada", "admin")
    client = app.test_client()
    assert client.get(f"/setup?code={code}").status_code == 404
    form = {"username": "eve", "password": "e" * 12, "confirm": "e" * 12, "code": code}
    assert client.post("/setup", data=form).status_code == 404


def test_a_revocation_the_cache_missed_holds_within_its_lifetime(app, raw, clock):
    """A revocation that never signalled (SQLite: its process died between its commit and replacing the
    generation file; or an edit behind the app's back): the processes trust the token from memory at most
    TOKEN_CACHE_S longer."""
    secret = add_token(app, "crashy")
    api = app.test_client()
    assert api.get("/accounts/1/balance", headers=bearer(secret)).status_code == 200
    raw.execute("UPDATE api_tokens SET revoked_at = '2026-01-01T00:00:00Z' WHERE name = 'crashy'")  # no signal
    clock.advance(tokens.TOKEN_CACHE_S - 1)
    assert api.get("/accounts/1/balance", headers=bearer(secret)).status_code == 200
    clock.advance(1)
    assert api.get("/accounts/1/balance", headers=bearer(secret)).status_code == 401


def test_revocation_holds_at_once_in_another_process(database, clock):
    """Two apps on one database stand for two workers or servers (SQLite: each with its own token cache)."""
    first, second = make_app(database, CLOCK=clock), make_app(database, CLOCK=clock)
    try:
        secret = add_token(first, "shared")
        api = second.test_client()
        assert api.get("/accounts/1/balance", headers=bearer(secret)).status_code == 200  # now cached there
        token_id = aio.run(tokens.list_tokens(first.extensions["atm_db"]))[0].id
        aio.run(tokens.revoke_token(first.extensions["atm_db"], token_id, "test", clock()))
        assert api.get("/accounts/1/balance", headers=bearer(secret)).status_code == 401
    finally:
        close_app(first)
        close_app(second)


def test_cli_commands_do_not_print_the_first_run_link_the_server_does(tmp_path):
    root = ROOT
    env = {**os.environ, "DB_PATH": str(tmp_path / "atm.db"), "SECRET_KEY": "k" * 32}
    env.pop("DATABASE_URL", None)
    for args in (["init-db"], ["verify"], ["create-token", "nightly"]):
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "atm_web", *args], cwd=root, env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "/setup?code=" not in done.stdout + done.stderr, args
    served = subprocess.run([sys.executable, "-c", "from atm_web import create_app; create_app()"], cwd=root,
                            env=env, capture_output=True, text=True, timeout=60)
    assert "/setup?code=" in served.stderr  # starting the app still says how to create the first admin
