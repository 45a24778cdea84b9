"""Who may do what: every route x every kind of caller, CSRF on every form, cookie flags and headers."""
import re
import shutil
import tempfile
from functools import cache
from pathlib import Path

import pytest

from atm_web.approvals import requests as approvals
from atm_web.approvals.refusals import ApprovalRefused
from atm_web.cash import atms
from atm_web.cash.refusals import AccountOpenedMeanwhile
from atm_web.core.refusals import ControlCharacters
from atm_web.customers import cards, holders
from atm_web.customers import records as customers
from atm_web.customers.refusals import CustomerRefused, NeedsHolder, NeedsIdentityCheck
from atm_web.ledger import holds
from atm_web.ledger.refusals import DrawerNotOpen, InsufficientFunds, UnknownAccount
from atm_web.serving import aio
from atm_web.staff import login_sessions, tellers, tokens
from atm_web.web.errors import teller_message

from conftest import (
    Clock,
    _sqlite_template,
    add_teller,
    add_token,
    close_app,
    holder_fields,
    log_in,
    make_app,
    open_drawer,
)

IDENTITIES = ["anonymous", "teller", "supervisor", "admin", "deactivated", "read_only", "read_write", "admin_token",
              "revoked",
              "wrong_token", "deactivated_admins_token"]
SESSION_OK = {"teller", "supervisor", "admin"}

API_PATHS = ("/accounts/", "/transfers", "/balances", "/transactions/", "/reports/", "/holds/",
             "/atms")  # the JSON API's
# (method, path, body) -> expected per identity. "login" means: redirected to the login page, nothing done.
LOGIN = "login"


def html(admin_ok, teller_ok=None, supervisor_ok=None):
    """Expected results of an HTML route: admins get admin_ok, tellers teller_ok (403 if None), supervisors
    supervisor_ok (else as tellers), others the login."""
    teller = 403 if teller_ok is None else teller_ok
    return {"admin": admin_ok, "teller": teller, "supervisor": teller if supervisor_ok is None else supervisor_ok}


def api(ok, read_only_ok=None):
    return {"read_write": ok, "admin_token": ok, "read_only": ok if read_only_ok is None else read_only_ok}


HOLDER = holder_fields(document_number="X1")
ROUTES = [
    ("GET", "/is_alive", None, dict.fromkeys(IDENTITIES, 200)),
    ("GET", "/health/ready", None, dict.fromkeys(IDENTITIES, 200)),
    ("GET", "/openapi.json", None, dict.fromkeys(IDENTITIES, 200)),
    ("GET", "/docs", None, dict.fromkeys(IDENTITIES, 200)),
    ("GET", "/docs/swagger-ui.css", None, dict.fromkeys(IDENTITIES, 200)),
    ("GET", "/favicon.ico", None, dict.fromkeys(IDENTITIES, 200)),
    ("GET", "/accounts/A1/balance", None, api(200)),
    ("GET", "/accounts/A1", None, api(200)),
    ("GET", "/accounts/A1/transactions", None, api(200)),
    ("PUT", "/accounts/A1/overdraft-limit", {"overdraft_limit": 50}, {"admin_token": 200, "read_write": 403,
                                                                      "read_only": 403}),
    ("GET", "/balances?accounts=A1,B1", None, api(200)),
    ("GET", "/reports/end-of-day?date=2026-12-01", None, api(200)),
    ("POST", "/accounts/A1/deposit", {"amount": 5}, api(200, 403)),
    ("POST", "/accounts/A1/withdraw", {"amount": 1}, api(200, 403)),
    ("POST", "/transfers", {"from_account": "A1", "to_account": "B1", "amount": 1}, api(200, 403)),
    ("POST", "/accounts/A1/holds", {"amount": 1}, api(201, 403)),
    ("GET", "/accounts/A1/holds", None, api(200)),
    ("GET", "/holds/{hold}", None, api(200)),
    ("POST", "/holds/{hold}/capture", {"amount": 1}, api(200, 403)),
    ("POST", "/holds/{hold}/void", {}, api(200, 403)),
    ("GET", "/login", None, dict.fromkeys(IDENTITIES, 200)),
    ("POST", "/logout", {}, dict.fromkeys(IDENTITIES, 303)),
    ("GET", "/setup", None, dict.fromkeys(IDENTITIES, 404)),
    ("POST", "/setup", {"code": "guess", "username": "eve", "password": "e" * 12, "confirm": "e" * 12},
     dict.fromkeys(IDENTITIES, 404)),
    ("POST", "/login", {"username": "ada", "password": "not the password"}, dict.fromkeys(IDENTITIES, 401)),
    ("GET", "/", None, html(200, 200)),
    ("GET", "/teller/accounts/A1", None, html(200, 200)),
    ("POST", "/teller/holds/{hold}/release", {"note": "the customer's card was cancelled"}, html(303, 403, 303)),
    ("GET", "/teller/accounts/NEW9/open?kind=deposit&amount=3&form_key=" + "d" * 32, None, html(200, 200)),
    ("POST", "/teller/transactions", {"account_number": "A1", "amount": "3", "deposit": "Deposit",
                                       "form_key": "b" * 32}, html(303, 303)),
    ("GET", "/teller/receipts/1", None, html(200, 200)),
    ("GET", "/teller/transfer", None, html(200, 200)),
    ("POST", "/teller/transfer", {"from_account": "A1", "to_account": "B2", "amount": "2", "form_key": "c" * 32},
     html(303, 303)),
    ("GET", "/teller/drawer/", None, html(200, 200)),
    ("POST", "/teller/drawer/open", {"count_10000": "1"}, html(409, 409)),  # their drawers are open already
    ("POST", "/teller/drawer/movements", {"amount": "5", "to_drawer": "Ask for cash"}, html(303, 303)),
    ("GET", "/teller/drawer/close", None, html(200, 200)),
    ("POST", "/teller/drawer/close", {"count_100": ""}, html(303, 303)),
    ("GET", "/teller/drawer/sessions/999", None, html(404, 404)),
    ("GET", "/admin/vault/", None, html(200)),
    ("POST", "/admin/vault/movements/999", {"decision": "confirm"}, html(303)),
    ("POST", "/admin/vault/sessions/999/sign-off", {"note": "checked"}, html(303)),
    ("GET", "/admin/vault/sessions/1/close", None, html(200)),  # tina's drawer, for ada
    ("POST", "/admin/vault/sessions/1/close", {"count_100": ""}, html(303)),
    ("POST", "/admin/vault/shipments", {"amount": "5", "reference": "CIT 1", "receive": "Receive cash",
                                        "form_key": "e" * 32}, html(303)),
    ("GET", "/admin/end-of-day/", None, html(200)),
    ("GET", "/admin/end-of-day/report.csv", None, html(200)),
    ("POST", "/admin/end-of-day/close", {}, html(303)),
    ("GET", "/admin/tellers", None, html(200)),
    ("POST", "/admin/tellers", {"username": "newbie", "password": "p" * 12, "confirm": "p" * 12}, html(303)),
    ("GET", "/admin/tellers/{tina}/deactivate", None, html(200)),
    ("POST", "/admin/tellers/{tina}/deactivate", {}, html(303)),
    ("POST", "/admin/tellers/{dave}/reactivate", {}, html(303)),
    ("POST", "/admin/tellers/{tina}/password", {"password": "q" * 12}, html(303)),
    ("GET", "/admin/tokens", None, html(200)),
    ("POST", "/admin/tokens", {"name": "new-token"}, html(201)),
    ("POST", "/admin/tokens/{rw_id}/revoke", {}, html(303)),
    ("POST", "/admin/login-locks/unlock", {"kind": "username", "subject": "tina"}, html(303)),
    ("GET", "/admin/audit", None, html(200)),
    ("GET", "/admin/read-access", None, html(200)),
    ("POST", "/transactions/1/reversal", {"reason": "test"}, {"admin_token": 200, "read_write": 403,
                                                              "read_only": 403}),
    ("POST", "/", {"query": "A1"}, html(303, 303)),
    ("POST", "/teller/accounts/NEW9/open?kind=deposit&amount=3&form_key=" + "d" * 32, {"query": "Holly"},
     html(200, 200)),
    ("POST", "/teller/receipts/1/reversal", {"reason": "test", "form_key": "f" * 32}, html(303, 303)),
    ("POST", "/teller/accounts/A1/overdraft-limit", {"limit": "20", "set_limit": "Set limit"}, html(303, 303)),
    ("POST", "/teller/drawer/sign-off-request", {}, html(303, 303)),  # no drawer of theirs waits: refused
    ("GET", "/teller/requests/", None, html(200, 200)),
    ("GET", "/teller/requests/{held}", None, html(200, 200, 200)),  # tina's own; any approver
    ("GET", "/teller/requests/999", None, html(404, 404)),
    ("GET", "/approvals/", None, html(200, 403, 200)),
    ("POST", "/approvals/{held}", {"note": "checked", "approve": "Approve"}, html(303, 403, 303)),
    ("GET", "/teller/customers/{customer}", None, html(200, 200)),
    ("GET", "/teller/customers/{customer}/edit", None, html(200, 200)),
    ("POST", "/teller/customers/{customer}/edit", {**HOLDER, "full_name": "Holly Renamed"}, html(303, 303)),
    ("GET", "/teller/customers/{customer}/cards/new", None, html(200, 200)),
    ("POST", "/teller/customers/{customer}/cards/new", {"accounts": "A1", "default": "A1", "form_key": "c" * 32},
     html(201, 201)),
    ("POST", "/teller/customers/{customer}/cards/{card}/lost", {"confirm": "y"}, html(303, 303)),
    ("POST", "/teller/customers/{customer}/cards/{card}/unblock", {"reason": "customer present"}, html(303, 303)),
    ("GET", "/teller/accounts/A1/holders", None, html(200, 200)),
    ("POST", "/teller/accounts/A1/holders", {**HOLDER, "document_number": "X2"}, html(303, 303)),
    ("GET", "/admin/large-cash/", None, html(200)),
    ("GET", "/admin/large-cash/report.csv", None, html(200)),
    ("POST", "/admin/large-cash/999/filed", {}, html(303)),
    ("POST", "/admin/tellers/{dave}/role", {"role": "supervisor"}, html(303)),
    ("GET", "/admin/atms/", None, html(200)),
    ("POST", "/admin/atms/", {"name": "Kiosk", "location": "Hall", "cassette_1": "5000"}, html(303)),
    ("GET", "/admin/atms/{atm}", None, html(200)),
    ("GET", "/admin/atms/{atm}/journal.csv", None, html(200)),
    ("GET", "/admin/atms/{atm}/replenish", None, html(200)),
    ("POST", "/admin/atms/{atm}/replenish", {"load_1": "1"}, html(303)),
    ("POST", "/admin/atms/{atm}/pair", {}, html(200)),
    ("POST", "/admin/atms/{atm}/screens/7/unpair", {}, html(303)),  # no such screen: refused, flashed
    # the ATM screen: only a paired browser's device cookie opens it (none here); staff sessions mean nothing there
    ("GET", "/atm/", None, dict.fromkeys(IDENTITIES, 403)),
    ("GET", "/atm/pair/not-a-code", None, dict.fromkeys(IDENTITIES, 404)),
    ("POST", "/atm/pair/not-a-code", {}, dict.fromkeys(IDENTITIES, 404)),
    *[("POST", f"/atm/{step}", body, dict.fromkeys(IDENTITIES, 403)) for step, body in (
        ("start", {}), ("cancel", {"session": "x"}), ("card", {"card_number": "4000000000000002", "session": "x"}),
        ("pin", {"pin": "1357", "session": "x"}), ("first-pin", {"code": "1", "new_pin": "1357", "again": "1357"}),
        ("go/menu", {"session": "x"}), ("withdraw", {"amount": "60", "session": "x"}), ("card-taken", {}),
        ("cash-taken", {}), ("more-time", {}), ("done", {}), ("account", {"account": "A1", "session": "x"}),
        ("deposit", {"notes_5000": "1", "session": "x"}), ("transfer", {"to": "A1", "amount": "5", "session": "x"}),
        ("change-pin", {"old_pin": "1357", "new_pin": "2468", "again": "2468"}), ("end", {"session": "x"}))],
    # the device interface: a dispenser's agent's own credential in a header, never a cookie or a staff token
    ("POST", "/atm/device/pair", {"code": "nope"}, dict.fromkeys(IDENTITIES, 422)),  # a JSON body is needed
    ("POST", "/atm/device/withdrawals/1/taken", {}, dict.fromkeys(IDENTITIES, 401)),
    ("GET", "/atms", None, {"admin_token": 200, "read_write": 403, "read_only": 403}),
    ("GET", "/atms/{atm}", None, {"admin_token": 200, "read_write": 403, "read_only": 403}),
    ("GET", "/admin/verification", None, html(200)),
    ("POST", "/admin/verification", {}, html(303)),
]


def expected(route, identity):
    _method, path, _, table = route
    if identity in table:
        return table[identity]
    if path.startswith(API_PATHS):
        return 401
    return LOGIN


def snapshot(raw):
    """Ledger and admin state (a token's last-used time is bookkeeping, not state anyone changed)."""
    state = {table: raw.rows(f"SELECT * FROM {table} ORDER BY 1")
             for table in ("accounts", "journal", "tellers", "audit_log", "customers", "account_holders", "approvals",
                  "large_cash", "holds", "cards", "card_accounts", "atms", "atm_cassettes", "atm_replenishments",
                  "atm_journal", "atm_withdrawals", "atm_screens")}
    state["api_tokens"] = raw.rows("SELECT id, name, token_hash, scope, created_at, created_by, revoked_at, "
                                   "revoked_reason FROM api_tokens ORDER BY id")
    return state


def _build_world(app, clock):
    """A teller, a supervisor, an admin, a deactivated teller, a deactivated admin, tokens (one revoked, one made by
    that admin), one journal row, a customer with a card kept (3 wrong codes) and a held request: (token secrets, staff
    session ids, ids)."""
    db = app.extensions["atm_db"]
    people = {name: add_teller(app, name, role) for name, role in
              (("tina", "teller"), ("ada", "admin"), ("dave", "teller"), ("sam", "supervisor"))}
    sessions = {}
    for identity, name in (("teller", "tina"), ("supervisor", "sam"), ("admin", "ada"), ("deactivated", "dave")):
        sessions[identity] = aio.run(login_sessions.start_session(db, people[name].id, clock()))
        open_drawer(app, people[name], 0)
    aio.run(tellers.set_active(db, people["dave"].id, False, "test", clock()))  # after dave logged in
    secrets_ = {"read_only": add_token(app, "ro", read_only=True), "read_write": add_token(app, "rw"),
                "admin_token": add_token(app, "adm", admin=True),
                "revoked": add_token(app, "gone"), "wrong_token": "atm_" + "x" * 43}
    olga = add_teller(app, "olga", "admin")  # made an admin token, then was deactivated by another admin
    secrets_["deactivated_admins_token"] = aio.run(tokens.create_token(db, "olgas", False, olga.actor, clock(),
                                                                      admin=True))[1]
    aio.run(tellers.set_active(db, olga.id, False, people["ada"].actor, clock()))
    made = {t.name: t for t in aio.run(tokens.list_tokens(db))}
    aio.run(tokens.revoke_token(db, made["gone"].id, "test", clock()))
    assert app.test_client().post("/accounts/A1/deposit", json={"amount": 100}, headers={
        "Authorization": f"Bearer {secrets_['read_write']}"}).status_code == 200
    holly = aio.run(holders.link_holder(db, "A1", None, customers.Details(
        "Holly Holder", "1980-02-29", "passport", "X0", "US", "1 Main Street", "+1 555 0100"), "test", clock(),
        threshold_cents=1_000_000))
    held = aio.run(approvals.hold(db, "overdraft_limit", people["tina"], clock(), None, account_number="A1",
                                  limit_cents=2000))
    placed, _ = aio.run(holds.place(db, "A1", 500, 3600, "", "test", now=clock()))
    card = aio.run(cards.issue_card(db, holly.id, ["A1"], "A1", people["tina"], clock()))
    for wrong in ("00000000", "11111111", "22222222"):  # kept by 3 wrong PIN-setting codes (no slow hash made)
        aio.run(cards.set_first_pin(db, card.number, wrong, "1357", clock()))
    atm = aio.run(atms.register_atm(db, "Lobby", "Main Street", [5000], people["ada"], clock()))
    ids = {"tina": people["tina"].id, "dave": people["dave"].id, "rw_id": made["rw"].id, "customer": holly.id,
           "held": held.id, "hold": placed.id, "card": card.card.id,
           "atm": atm.id}
    return secrets_, sessions, ids


@cache
def _sqlite_world():
    """The world built once per run on SQLite: (its folder, the time it was built at, what _build_world gave). Each
    test gets a copy of its files, and its clock at that time (the sessions and the held request are as fresh)."""
    folder = Path(tempfile.mkdtemp(prefix="atm-test-world-"))
    shutil.copyfile(_sqlite_template(), folder / "atm.db")
    clock = Clock()
    app = make_app(folder / "atm.db", CLOCK=clock)
    try:
        return folder, clock.now, _build_world(app, clock)
    finally:
        close_app(app)


@pytest.fixture
def world(engine, database, clock):
    """The world (_build_world) and a client per identity: a copy of the one built once on SQLite, built afresh
    on PostgreSQL."""
    if engine == "sqlite":
        folder, built_at, (secrets_, sessions, ids) = _sqlite_world()
        for name in ("atm.db", "atm.db.token-generation"):
            shutil.copyfile(folder / name, database.parent / name)
        clock.now = built_at
        app = make_app(database, CLOCK=clock)
    else:
        app = make_app(database, CLOCK=clock)
        secrets_, sessions, ids = _build_world(app, clock)
    clients = {"anonymous": app.test_client()}
    for identity, session_id in sessions.items():
        clients[identity] = app.test_client()
        with clients[identity].session_transaction() as session:
            session["sid"] = session_id
    for identity, secret in secrets_.items():
        clients[identity] = app.test_client()
        clients[identity].environ_base["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    yield app, clients, ids
    close_app(app)


@pytest.mark.parametrize("identity", IDENTITIES)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_access_matrix(world, raw, route, identity):
    _app, clients, ids = world
    method, path, body, _ = route
    path = path.format(**ids)
    want = expected(route, identity)
    before = snapshot(raw)
    if path.startswith(API_PATHS) and method in ("POST", "PUT"):
        response = clients[identity].open(path, method=method, json=body)
    else:
        response = clients[identity].open(path, method=method, data=body)
    if want == LOGIN:
        assert response.status_code == 303 and "/login" in response.location, response.status_code
    else:
        assert response.status_code == want
    if response.status_code == 401 and path.startswith(API_PATHS):
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["detail"]
    refused = want in (LOGIN, 401, 403, 404) or path in ("/logout", "/login")
    if refused:
        after = snapshot(raw)
        if path == "/logout":  # logging out ends a session; nothing else
            after.pop("tellers"), before.pop("tellers")
        assert after == before


def test_matrix_covers_every_route(app):
    """A new route fails here until it is given its row in ROUTES."""
    covered = {(m, re.sub(r"\{[a-z_]+\}", "7", p).split("?")[0]) for m, p, _, _ in ROUTES}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        pattern = re.sub(r"<[^>]+>", "[^/]+", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert any(m == method and re.fullmatch(pattern, p) for m, p in covered), \
                f"{method} {rule.rule} is not in the access matrix"


def test_deactivated_teller_session_stops_at_next_request(app, clock):
    tina = add_teller(app, "tina")
    client = log_in(app, app.test_client(), tina)
    assert client.get("/").status_code == 200
    aio.run(tellers.set_active(app.extensions["atm_db"], tina.id, False, "test", clock()))
    response = client.get("/")
    assert response.status_code == 303 and "/login" in response.location


# CSRF on every state-changing form

@pytest.fixture
def csrf_world(database, clock):
    app = make_app(database, CLOCK=clock, WTF_CSRF_ENABLED=True)
    ada = add_teller(app, "ada", "admin")
    tina = add_teller(app, "tina")
    token_id = aio.run(tokens.create_token(app.extensions["atm_db"], "t", False, "test", clock()))[0].id
    client = log_in(app, app.test_client(), ada)
    yield app, client, {"tina": tina.id, "dave": tina.id, "rw_id": token_id, "customer": 1, "held": 1, "hold": 1,
                      "card": 1, "atm": 1}
    close_app(app)


FORM_POSTS = [(m, p, b) for m, p, b, _ in ROUTES
              if m == "POST" and not p.startswith((*API_PATHS, "/atm/device/"))]
FORM_POSTS.append(("POST", "/login", {"username": "ada", "password": "wrong password!"}))


@pytest.mark.parametrize("csrf_token", [None, "forged-token"])
@pytest.mark.parametrize("method, path, body", FORM_POSTS, ids=lambda v: v if isinstance(v, str) else None)
def test_forms_refuse_missing_or_wrong_csrf_token(csrf_world, raw, method, path, body, csrf_token):
    _app, client, ids = csrf_world
    data = dict(body or {})
    if csrf_token:
        data["csrf_token"] = csrf_token
    before = snapshot(raw)
    response = client.post(path.format(**ids), data=data)
    assert response.status_code == 400
    assert snapshot(raw) == before
    assert client.get("/").status_code == 200  # still logged in: even log out needs the token


# Cookies and headers, over HTTP and behind a proxy that says HTTPS

SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def _check_headers(response, https):
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert ("Strict-Transport-Security" in response.headers) == https


@pytest.mark.parametrize("trusted, forwarded, https", [
    (0, None, False), (0, "https", False), (1, "https", True), (1, "http", False)])
def test_cookie_flags_and_headers(database, clock, trusted, forwarded, https):
    app = make_app(database, CLOCK=clock, TRUST_PROXY_HEADERS=str(trusted))
    try:
        add_teller(app, "tina")
        client = app.test_client()
        headers = {"X-Forwarded-Proto": forwarded} if forwarded else {}
        from conftest import PASSWORD
        response = client.post("/login", data={"username": "tina", "password": PASSWORD}, headers=headers,
                               base_url="http://bank.example")
        assert response.status_code == 303
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
        assert ("Secure" in cookie) == https and cookie.startswith("__Host-atm_session=") == https
        assert "Domain=" not in cookie
        _check_headers(response, https)
        for path in ("/", "/accounts/1/balance", "/is_alive", "/nope", "/static/css/atm.css"):
            _check_headers(client.get(path, headers=headers, base_url="http://bank.example"), https)
    finally:
        close_app(app)


def test_no_inline_scripts_or_styles_in_templates():
    from pathlib import Path
    for template in Path(__file__).resolve().parents[1].joinpath("templates").rglob("*.html"):
        text = template.read_text()
        scripts = re.findall(r"<script[^>]*>", text)
        assert all(re.fullmatch(r'<script src="[^"]+">', tag) for tag in scripts), template  # files only
        assert "style=" not in text and "<style" not in text, template


# Issue 19: text comes in without control characters, ids in paths are bounded, no personal data in the cookie

TEXT_POSTS = [(m, p, b) for m, p, b, _ in ROUTES if m in ("POST", "PUT") and b]


@pytest.mark.parametrize("character", ["\x00", "\x1b", "\x7f", "\x85"])
@pytest.mark.parametrize("method, path, body", TEXT_POSTS, ids=lambda v: v if isinstance(v, str) else None)
def test_a_control_character_in_any_field_is_refused_where_it_enters_never_a_500(world, raw, method, path, body,
                                                                                  character):
    """Point 7: in every field of every form and JSON body (the login too, logged out), on both engines: 422 (JSON
    for the API, the refusal page for forms), nothing written; PostgreSQL would answer a NUL with a 500."""
    _app, clients, ids = world
    path = path.format(**ids)
    api_route = path.startswith(("/accounts/", "/transfers", "/transactions/"))
    client = clients["admin_token" if api_route else "anonymous" if path == "/login" else "admin"]
    for name, value in body.items():
        poisoned = {**body, name: f"{value}{character}"}
        before = snapshot(raw)
        response = (client.open(path, method=method, json=poisoned) if api_route
                    else client.open(path, method=method, data=poisoned))
        assert response.status_code == 422, (name, response.status_code)
        assert "control character" in response.get_data(as_text=True)
        assert snapshot(raw) == before


@pytest.mark.parametrize("query", ["/?account_number=A1%00", "/teller/accounts/NEW9/open?kind=deposit%00&amount=3",
                                   "/accounts/A1/transactions?cursor=1%00", "/login?next=/%01"])
def test_a_control_character_in_a_query_string_is_refused(world, query):
    _app, clients, _ = world
    client = clients["read_write" if query.startswith("/accounts/") else "admin"]
    response = client.get(query)
    assert response.status_code == 422 and "control character" in response.get_data(as_text=True)


def test_a_search_for_a_nul_lists_nobody(world, raw):
    """On SQLite a LIKE stops at a NUL: the search for it listed 20 customers."""
    _app, clients, _ = world
    response = clients["teller"].post("/", data={"query": "\x00"})
    assert response.status_code == 422 and "Holly Holder" not in response.get_data(as_text=True)
    assert raw.scalar("SELECT COUNT(*) FROM customer_reads") == 0


def test_tab_newline_and_return_are_text(world, raw):
    _app, clients, ids = world
    response = clients["teller"].post(f"/teller/customers/{ids['customer']}/edit",
                                      data={**HOLDER, "address": "1 Main Street\r\n\tFlat 2", "document_number": "X0"})
    assert response.status_code == 303
    assert raw.scalar("SELECT address FROM customers WHERE id = ?", (ids["customer"],)) == "1 Main Street Flat 2"


ID_ROUTES = [("GET", "/teller/drawer/sessions/{}"), ("POST", "/admin/vault/movements/{}"),
             ("POST", "/admin/vault/sessions/{}/sign-off"), ("GET", "/admin/vault/sessions/{}/close"),
             ("POST", "/admin/vault/sessions/{}/close"), ("GET", "/teller/receipts/{}"),
             ("GET", "/teller/customers/{}"), ("POST", "/approvals/{}")]


@pytest.mark.parametrize("row_id", [str(2**63), str(2**64), "99999999999999999999999", "٢", "0", "-1", "1e3"])
@pytest.mark.parametrize("method, path", ID_ROUTES)
def test_every_id_in_a_path_is_the_apps_bounded_row_id(world, method, path, row_id):
    """Point 8: an id of 2^63 or more, or in another script's digits, is a 404 on every route, never a 500 or a
    200."""
    _app, clients, _ = world
    assert clients["admin"].open(path.format(row_id), method=method, data={"note": "x"}).status_code == 404


def test_no_route_takes_a_plain_int_converter(app):
    assert all("int" not in str(type(converter)).lower() or type(converter).__name__ == "RowIdConverter"
               for rule in app.url_map.iter_rules() for converter in rule._converters.values())


def test_the_session_cookie_carries_no_personal_data(world, raw):
    """Point 10: a flash travels in the signed (not encrypted) session cookie: it names customers by number."""
    app, clients, ids = world
    client = clients["teller"]
    assert client.post("/teller/accounts/A1/holders", data={**HOLDER, "full_name": "Harriet Secret",
                                                            "document_number": "SECRET9"}).status_code == 303
    assert client.post(f"/teller/customers/{ids['customer']}/edit", data={**HOLDER, "full_name": "Holly Changed",
                                                                          "document_number": "X0"}).status_code == 303
    cookie = client.get_cookie("atm_session").value
    payload = app.session_interface.get_signing_serializer(app).loads(cookie)
    text = repr(payload)
    assert "_flashes" in payload and "Holder added to account A1: customer no." in text
    for personal in ("Harriet", "Secret", "SECRET9", "Holly", "1980-02-29", "Main Street"):
        assert personal not in text


@pytest.mark.parametrize("refusal", [
    NeedsHolder("N1"), DrawerNotOpen("Your drawer is not open. Nothing was recorded."),
    ApprovalRefused("That report is not open (filed already, or unknown)."),
    CustomerRefused("No such customer."), InsufficientFunds(), UnknownAccount("Z9"),
    AccountOpenedMeanwhile("A1", ["Holly Holder"]), ControlCharacters("The form"),
    NeedsIdentityCheck([customers.Details("Holly Holder", "", "", "", "", "", "")])],
    ids=lambda r: type(r).__name__)
def test_a_refusal_says_nothing_was_recorded_once_with_one_full_stop(refusal):
    """Point 13: '... .. Nothing was recorded.' no more."""
    message = teller_message(refusal)
    assert ".." not in message and message.endswith(".")
    assert len(re.findall(r"[Nn]othing (?:new )?was (?:recorded|posted|written|done)", message)) == 1
