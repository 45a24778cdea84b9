"""One place that turns exceptions into HTML pages for tellers or JSON bodies for scripts."""
from urllib.parse import urlsplit

from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from .accounts import InsufficientFunds, LedgerError
from .storage import LedgerUnavailable
from .money import InvalidAmount

API_PREFIXES = ("/accounts/", "/transfers", "/balances", "/transactions/", "/is_alive", "/openapi.json")


class ApiError(Exception):
    """A refusal of the JSON API with its status and detail."""

    def __init__(self, status: int, detail: str, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def unavailable_message(error: LedgerUnavailable) -> str:
    """What a script or a teller is told when the ledger could not take a write."""
    if error.outcome_unknown:  # the connection was lost while committing: the write may stand
        return ("The ledger did not confirm the write: it may have been recorded. Retry with the same "
                "Idempotency-Key (or look at the account) before trying again")
    return "The ledger is busy; nothing was written, try again"


def wants_json() -> bool:
    if request.blueprint == "api" or request.path.startswith(API_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def json_error(status: int, detail: str, headers=None):
    response = jsonify(detail=detail)
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


def _ledger_error(error: Exception):
    """Domain refusals reaching here come from the API (teller views catch their own)."""
    if isinstance(error, ApiError):
        return json_error(error.status, error.detail, error.headers)
    if isinstance(error, LedgerUnavailable):
        return json_error(503, unavailable_message(error), {"Retry-After": "1"})
    status = 400 if isinstance(error, InsufficientFunds) else 422
    return json_error(status, str(error), {"Idempotent-Replayed": "true"} if getattr(error, "replayed", False) else None)


def relative_location(location: str) -> str:
    """The path and query of a redirect target: an answer never sends the client to a host it named itself."""
    parts = urlsplit(location)
    if not parts.scheme and not parts.netloc:
        return location
    path = "/" + parts.path.lstrip("/")
    return path + (f"?{parts.query}" if parts.query else "")


def register(app):
    app.register_error_handler(HTTPException, _http_error)
    for kind in (ApiError, LedgerError, InvalidAmount, LedgerUnavailable):
        app.register_error_handler(kind, _ledger_error)
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
