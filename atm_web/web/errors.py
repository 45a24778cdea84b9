"""One place that turns exceptions into HTML pages for tellers or JSON bodies for scripts.

A ledger refusal (refusals.py) or a busy ledger (storage.LedgerUnavailable) reaching here is answered with its
status: as JSON for the API, and for a teller on the page the view named with show_refusals_on() (the form
again, with the message), else on an error page. Views do not catch them one by one.
"""
import re
from urllib.parse import urlsplit

from flask import current_app, flash, g, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException, InternalServerError

from atm_web.core.money import InvalidAmount
from atm_web.core.refusals import Refusal
from atm_web.core.rules import LEDGER_BUSY, LEDGER_UNCONFIRMED
from atm_web.ledger.refusals import IdempotencyKeyReused
from atm_web.storage import LedgerUnavailable


class ApiError(Exception):
    """A refusal of the JSON API with its status and detail."""

    def __init__(self, status: int, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def unavailable_message(error: LedgerUnavailable, for_teller: bool = False) -> str:
    """What a script or a teller is told when the ledger could not take a write."""
    if error.outcome_unknown:  # the connection was lost while committing: the write may stand
        if for_teller:  # resubmitting this same form is safe: its one-time key finds the first outcome
            return f"{LEDGER_UNCONFIRMED}. Submit the same form again to see (it is never recorded twice)."
        return (f"{LEDGER_UNCONFIRMED}. Retry with the same Idempotency-Key (or look at the account) before "
                "trying again")
    return f"{LEDGER_BUSY}." if for_teller else LEDGER_BUSY


ALREADY_USED = "This form was already used for the transaction below. Nothing new was recorded."


def teller_message(error: Exception) -> str:
    """A refusal as a teller reads it: what happened, and that nothing was recorded."""
    if isinstance(error, LedgerUnavailable):
        return unavailable_message(error, for_teller=True)
    text = (error.for_teller if isinstance(error, Refusal) else str(error)).strip()
    text = f"{text[:1].upper()}{text[1:]}"
    if _SAYS_NOTHING_WRITTEN.search(text):  # the refusal says so itself
        return text if text.endswith(".") else f"{text}."
    return f"{text.rstrip('.')}. Nothing was recorded."


_SAYS_NOTHING_WRITTEN = re.compile(r"\bnothing (new )?was (recorded|posted|written|done)\b", re.IGNORECASE)


def show_refusals_on(page) -> None:
    """Have a refusal during this request shown by page(error, message, status) (the view's own form page, sync
    or async) instead of the error page."""
    g.refusal_page = page


def flash_refusal(prefix: str | None, endpoint: str, **values):
    """A refusal page for show_refusals_on: the message flashed on the page the action came from (endpoint,
    values), after prefix (or, with None, the refusal's own words); a forbidden one (403: a self-approval) is
    answered as such, on the refused page."""
    def page(error, message, status):
        if status == 403:
            return render_template("errors/refused.html", message=message, status=status), status
        flash(str(error) if prefix is None else f"{prefix}: {message}")
        return redirect(url_for(endpoint, **values), 303)
    return page


def status_of(error: Exception) -> int:
    if isinstance(error, LedgerUnavailable):
        return 503
    return getattr(error, "status", 422)


def wants_json() -> bool:
    """An answer for a script: a path of the JSON API (api.register_json_paths names them), or a client that asks
    for JSON first."""
    if request.path.startswith(current_app.extensions.get("json_paths", ())):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def json_error(status: int, detail: str, headers=None, fields: dict | None = None):
    response = jsonify(detail=detail, **(fields or {}))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _http_error(error: HTTPException):
    headers = {name: value for name, value in error.get_headers() if name.lower() in ("allow", "retry-after")}
    if wants_json():
        detail = error.description if error.code != 404 else "Not Found"
        return json_error(error.code, detail, headers)
    return render_template("errors/error.html", error=error), error.code, headers


def _unexpected(error: Exception):
    if isinstance(error, HTTPException):
        return _http_error(error)
    from flask import current_app
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return _http_error(InternalServerError())


def _refused(error: Exception):
    """An ApiError, a ledger refusal, an invalid amount or a busy ledger: answered with the refusal's status."""
    if isinstance(error, ApiError):
        return json_error(error.status, error.detail, error.headers)
    status = status_of(error)
    retry = {"Retry-After": "1"} if status == 503 else {}
    if wants_json():
        if isinstance(error, LedgerUnavailable):
            return json_error(status, unavailable_message(error), retry)
        replayed = {"Idempotent-Replayed": "true"} if getattr(error, "replayed", False) else None
        return json_error(status, str(error), replayed, getattr(error, "json_fields", None))
    if isinstance(error, IdempotencyKeyReused) and error.transaction_id is not None:
        flash(ALREADY_USED)
        return redirect(url_for("teller.receipt", tx_id=error.transaction_id), 303)
    message = teller_message(error)
    page = g.get("refusal_page")
    if page is None:
        return render_template("errors/refused.html", message=message, status=status), status, retry
    return current_app.ensure_sync(page)(error, message, status)


def relative_location(location: str) -> str:
    """The path and query of a redirect target: an answer never sends the client to a host it named itself."""
    parts = urlsplit(location)
    if not parts.scheme and not parts.netloc:
        return location
    path = "/" + parts.path.lstrip("/")
    return path + (f"?{parts.query}" if parts.query else "")


def register(app):
    from atm_web.web import text_input
    text_input.register(app)
    app.register_error_handler(HTTPException, _http_error)
    for kind in (ApiError, Refusal, InvalidAmount, LedgerUnavailable):
        app.register_error_handler(kind, _refused)
    app.register_error_handler(Exception, _unexpected)

    @app.after_request
    def security_headers(response):
        headers = response.headers
        if "Location" in headers:  # werkzeug's own redirects (a doubled slash) name the request's Host: ours never
            headers["Location"] = relative_location(headers["Location"])
        headers.setdefault("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; "
                           "base-uri 'self'; form-action 'self'; object-src 'none'")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("X-Frame-Options", "DENY")
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if not request.path.startswith("/static/"):
            headers.setdefault("Cache-Control", "no-store")
        return response
