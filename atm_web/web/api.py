"""Blueprint: the JSON API (the original ATM API's endpoints, kept, plus the journal, transfers and the docs).

Each view parses its input, makes one call into the ledger and answers; refusals are answered by errors.py.
"""
import hashlib
import json
import re
from importlib.resources import files

from flask import Blueprint, current_app, g, render_template, request, send_from_directory

from atm_web.cash import atms, end_of_day, replenishment
from atm_web.core.clock import now
from atm_web.core.money import json_number, to_cents
from atm_web.core.rules import HISTORY_MAX, LIMIT_MAX_CENTS
from atm_web.core.settings import settings_of
from atm_web.customers import records as customers
from atm_web.ledger import accounts, holds, journal, reversals
from atm_web.ledger.idempotency import Once
from atm_web.ledger.refusals import check_account_number
from atm_web.storage import get_db
from atm_web.web.errors import ApiError
from atm_web.web.guards import token_required
from atm_web.web.json_body import json_object
from atm_web.web.openapi import document

bp = Blueprint("api", __name__)  # no URL prefix: the original API's paths are kept as they were
QUERY_PARAMETERS = {"api.transactions": {"limit", "cursor"}, "api.balances": {"accounts"},
                    "api.end_of_day_report": {"date"}, "api.account_holds": {"status"}}
PUBLIC = {"api.is_alive", "api.ready", "api.openapi", "api.docs", "api.swagger_ui_file"}
PAGES = {"api.docs", "api.swagger_ui_file"}  # HTML, not JSON
SWAGGER_UI = files("flask_swagger_ui") / "dist"  # Swagger UI's own files, from its PyPI package (no CDN)
# Swagger UI's stylesheet draws its icons as data: images; nothing else on /docs loosens the app's CSP.
DOCS_CSP = ("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; "
            "form-action 'self'; object-src 'none'")
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
REPLAYED = {"Idempotent-Replayed": "true"}
BALANCES_MAX = 100


def register_json_paths(app, also: tuple[str, ...] = ()) -> None:
    """Tell errors.py which paths are the API's (app.extensions["json_paths"]), so that any error on them, a 404 or
    405 that no view saw included, is answered as JSON: the first segment of each JSON route of this blueprint
    ('/accounts/', '/transfers', ...), taken from the routes themselves, and the prefixes `also` names."""
    paths = set(also)
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(f"{bp.name}.") and rule.endpoint not in PAGES:
            first, _, rest = rule.rule.lstrip("/").partition("/")
            paths.add(f"/{first}/" if rest else f"/{first}")
    app.extensions["json_paths"] = tuple(sorted(paths))


@bp.before_request
def refuse_unknown_query_parameters():
    """A misspelt parameter (?limt=5) is an error, not silently ignored."""
    if request.endpoint in PUBLIC:
        return
    unknown = set(request.args) - QUERY_PARAMETERS.get(request.endpoint, set())
    if unknown:
        raise ApiError(422, f"unknown query parameter: {sorted(unknown)[0]!r}")


def _json_body(optional: bool = False) -> dict:
    return json_object(optional)


def _amount_cents(body: dict) -> int:
    return to_cents(body.get("amount"), maximum_cents=current_app.config["MAX_AMOUNT_CENTS"])


def _once(body: dict, at: float) -> Once | None:
    """The request's Idempotency-Key (scoped to its token) and fingerprint, when it sent one."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    key = key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key  # a structured-field string
    if not IDEMPOTENCY_KEY.fullmatch(key):
        raise ApiError(422, "Idempotency-Key must be 1 to 255 visible ASCII characters")
    canonical = json.dumps(body, sort_keys=True, default=str)
    fingerprint = hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()
    return Once(f"token:{g.token.id}", key, fingerprint, at)


def _answer(body: dict, replayed: bool):
    return (body, 200, REPLAYED) if replayed else body


def _transaction(tx: journal.Transaction) -> dict:
    return {"transaction_id": tx.id, "kind": tx.kind, "amount": json_number(tx.amount_cents),
            "balance_after": json_number(tx.balance_after_cents), "created_at": tx.created_at,
            "actor": tx.actor, "related_transaction_id": tx.related_id, "memo": tx.memo}


@bp.get("/is_alive")
def is_alive():
    return {"active": "true"}


@bp.get("/health/ready")
async def ready():
    """Readiness, for a platform's health check: 200 when the database answers within a second and its schema is
    the code's, else 503 saying which (no error's text). /is_alive stays as the original API had it: the process
    answers."""
    status = await get_db().readiness(timeout_s=1.0)
    return status, 200 if status == {"database": "ok", "migrations": "current"} else 503


@bp.get("/accounts/<number>/balance")
@token_required()
async def balance(number):
    account = await accounts.get_account(get_db(), number, now=now())
    return {"account_number": number, "balance": json_number(account.balance_cents),
            "held": json_number(account.held_cents), "available": json_number(account.available_cents)}


@bp.get("/accounts/<number>")
@token_required()
async def account(number):
    """The account with its holders (id and full name only: the rest of a customer's record is for staff pages)."""
    db = get_db()
    found = await accounts.get_account(db, number, now=now())
    holders = await customers.holders_of(db, number) if found.exists else []
    return {"account_number": number, "exists": found.exists, "opened_at": found.opened_at,
            "balance": json_number(found.balance_cents), "overdraft_limit": json_number(found.overdraft_limit_cents),
            "own_limit": found.own_overdraft_limit_cents is not None, "held": json_number(found.held_cents),
            "available": json_number(found.available_cents),
            "holders": [{"customer_id": c.id, "full_name": c.full_name} for c in holders]}


@bp.get("/balances")
@token_required()
async def balances():
    numbers = list(dict.fromkeys(n for n in request.args.get("accounts", "").split(",") if n))
    if not 1 <= len(numbers) <= BALANCES_MAX:
        raise ApiError(422, f"accounts must list 1 to {BALANCES_MAX} account numbers, comma separated")
    found = await accounts.get_balances(get_db(), numbers)
    return {"balances": {number: json_number(cents) for number, cents in found.items()}}


async def _move(number: str, post, amount_field: str):
    """A deposit or withdrawal: the original API's body, plus the journal row's id."""
    check_account_number(number)
    body, at = _json_body(), now()
    tx = await post(get_db(), number, _amount_cents(body), g.token.actor, _once(body, at), now=at)
    return _answer({"account_number": number, amount_field: json_number(tx.amount_cents),
                    "balance": json_number(tx.balance_after_cents), "status": "success", "transaction_id": tx.id},
                   tx.replayed)


@bp.post("/accounts/<number>/deposit")
@token_required(write=True)
async def deposit(number):
    return await _move(number, accounts.deposit, "deposited_amount")


@bp.post("/accounts/<number>/withdraw")
@token_required(write=True)
async def withdraw(number):
    return await _move(number, accounts.withdraw, "withdrawn_amount")


@bp.post("/transfers")
@token_required(write=True)
async def transfer():
    body, at = _json_body(), now()
    source = check_account_number(body.get("from_account"), "from_account")
    target = check_account_number(body.get("to_account"), "to_account")
    debit, credit = await accounts.transfer(get_db(), source, target, _amount_cents(body), g.token.actor,
                                            _once(body, at), now=at)
    return _answer({"status": "success", "from_account": debit.account_number, "to_account": credit.account_number,
                    "amount": json_number(debit.amount_cents), "from_balance": json_number(debit.balance_after_cents),
                    "to_balance": json_number(credit.balance_after_cents), "from_transaction_id": debit.id,
                    "to_transaction_id": credit.id}, debit.replayed)


@bp.put("/accounts/<number>/overdraft-limit")
@token_required(admin=True)
async def overdraft_limit(number):
    check_account_number(number)
    body = _json_body()
    if "overdraft_limit" not in body:
        raise ApiError(422, 'body must be {"overdraft_limit": 500.00} or {"overdraft_limit": null} for MAX_DEBT')
    value = body["overdraft_limit"]
    limit = None if value is None else to_cents(value, allow_zero=True, maximum_cents=LIMIT_MAX_CENTS)
    account = await accounts.set_overdraft_limit(get_db(), number, limit, g.token.actor, now=now())
    return {"account_number": account.number, "overdraft_limit": json_number(account.overdraft_limit_cents),
            "own_limit": account.own_overdraft_limit_cents is not None,
            "balance": json_number(account.balance_cents), "available": json_number(account.available_cents)}


@bp.post("/transactions/<id:tx_id>/reversal")
@token_required(admin=True)
async def reversal(tx_id):
    """Reverse a journal entry (admin token). Naturally idempotent: a retry with the same reason gets the
    first answer again (Idempotent-Replayed: true); with another reason, 422. The ledger checks the reason."""
    done = await reversals.reverse(get_db(), tx_id, _json_body().get("reason"), g.token.actor, now=now())
    return _answer({"status": "success", "reversed_transaction_id": tx_id, "reversals": [
        {"transaction_id": r.id, "account_number": r.account_number, "kind": r.kind,
         "amount": json_number(r.amount_cents), "balance_after": json_number(r.balance_after_cents),
         "reverses": r.related_id} for r in done.rows]}, done.replayed)


def _hold(hold: holds.Hold, at: float) -> dict:
    return {"hold_id": hold.id, "account_number": hold.account_number, "status": hold.status_at(at),
            "amount": json_number(hold.amount_cents), "created_at": hold.created_at, "expires_at": hold.expires_at,
            "memo": hold.memo, "ended_at": hold.ended_at if hold.status != "pending" else None,
            "captured_amount": None if hold.captured_cents is None else json_number(hold.captured_cents),
            "transaction_id": hold.transaction_id}


def _expires_in(body: dict) -> int:
    """expires_in: whole seconds, 1 to HOLD_MAX_SECONDS; HOLD_SECONDS when not given."""
    settings = settings_of(get_db())
    value = body.get("expires_in", settings.hold_seconds)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= settings.hold_max_seconds:
        raise ApiError(422, f"expires_in must be a whole number of seconds from 1 to {settings.hold_max_seconds}")
    return value


@bp.post("/accounts/<number>/holds")
@token_required(write=True)
async def place_hold(number):
    """Reserve an amount on the account: 201 with the hold and the account's available after it."""
    check_account_number(number)
    body, at = _json_body(), now()
    hold, available = await holds.place(get_db(), number, _amount_cents(body), _expires_in(body),
                                        body.get("memo", ""), g.token.actor, _once(body, at), now=at)
    answer = {**_hold(hold, at), "available": json_number(available)}
    return answer, 201, REPLAYED if hold.replayed else {}


@bp.post("/holds/<id:hold_id>/capture")
@token_required(write=True)
async def capture_hold(hold_id):
    """Post the hold (all of it, or "amount" of it) as a withdrawal: a withdrawal's answer, plus hold_id."""
    body, at = _json_body(optional=True), now()
    amount = _amount_cents(body) if body.get("amount") is not None else None
    done = await holds.capture(get_db(), hold_id, amount, g.token.actor, _once(body, at), now=at)
    tx = done.transaction
    return _answer({"account_number": tx.account_number, "withdrawn_amount": json_number(tx.amount_cents),
                    "balance": json_number(tx.balance_after_cents), "status": "success", "transaction_id": tx.id,
                    "hold_id": hold_id}, tx.replayed)


@bp.post("/holds/<id:hold_id>/void")
@token_required(write=True)
async def void_hold(hold_id):
    body, at = _json_body(optional=True), now()
    hold = await holds.void(get_db(), hold_id, g.token.actor, _once(body, at), now=at)
    return _answer(_hold(hold, at), hold.replayed)


@bp.get("/holds/<id:hold_id>")
@token_required()
async def get_hold(hold_id):
    return _hold(await holds.get_hold(get_db(), hold_id), now())


@bp.get("/accounts/<number>/holds")
@token_required()
async def account_holds(number):
    """The account's holds, newest first (at most 100), of one status if ?status= names it."""
    status = request.args.get("status")
    if status is not None and status not in holds.STATUSES:
        raise ApiError(422, f"status must be one of: {', '.join(holds.STATUSES)}")
    at = now()
    found = await holds.holds_of(get_db(), number, status, now=at)
    return {"account_number": number, "holds": [_hold(hold, at) for hold in found]}


@bp.get("/accounts/<number>/transactions")
@token_required()
async def transactions(number):
    limit = request.args.get("limit", "20")
    if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= HISTORY_MAX):
        raise ApiError(422, f"limit must be a whole number from 1 to {HISTORY_MAX}")
    rows, next_cursor = await journal.history(get_db(), number, int(limit), request.args.get("cursor"))
    return {"account_number": number, "transactions": [_transaction(tx) for tx in rows],
            "next_cursor": next_cursor}


@bp.get("/reports/end-of-day")
@token_required()
async def end_of_day_report():
    """The day's report (any valid token): its sessions, the vault, totals, the proof."""
    if "date" not in request.args:
        raise ApiError(422, "date is required: ?date=YYYY-MM-DD (a business date)")
    day = await end_of_day.report(get_db(), end_of_day.check_date(request.args["date"]))
    return end_of_day.to_json(day)


async def _atm(db, atm: atms.Atm) -> dict:
    last = await replenishment.latest(db, atm.id)
    money = {name: None if cents is None else json_number(cents) for name, cents in (
        ("counted", last and last.counted_cents), ("loaded", last and last.loaded_cents),
        ("expected", last and last.expected_cents), ("variance", last and last.variance_cents))}
    return {"atm_id": atm.id, "name": atm.name, "location": atm.location, "account_number": atm.account_number,
            "expected_cash": json_number(atm.cash_cents),
            "cassettes": [{"position": c.position, "denomination": json_number(c.denomination_cents),
                           "notes": c.notes} for c in atm.cassettes],
            "last_replenishment": None if last is None else {
                "replenishment_id": last.id, "status": last.status, "entered_by": last.entered_by,
                "entered_at": last.entered_at, "confirmed_by": last.confirmed_by, "confirmed_at": last.confirmed_at,
                **money}}


@bp.get("/atms")
@token_required(admin=True)
async def list_atms():
    """Every ATM (admin token): expected cash, notes per cassette, last replenishment."""
    db = get_db()
    return {"atms": [await _atm(db, atm) for atm in await atms.all_atms(db)]}


@bp.get("/atms/<id:atm_id>")
@token_required(admin=True)
async def get_atm(atm_id):
    db = get_db()
    return await _atm(db, await atms.get_atm(db, atm_id))


@bp.get("/openapi.json")
def openapi():
    return document()


@bp.get("/docs")
def docs():
    """Swagger UI over /openapi.json: Authorize takes a Bearer token, Try it out calls this server."""
    return render_template("api/docs.html", spec=document()), 200, {"Content-Security-Policy": DOCS_CSP}


@bp.get("/docs/<any('swagger-ui.css', 'swagger-ui-bundle.js'):name>")
def swagger_ui_file(name):
    return send_from_directory(SWAGGER_UI, name, max_age=3600)
