"""Who may ask: the checks that let only logged-in staff into the pages and valid tokens into the API.

require_teller, require_admin and require_approver are before_request hooks of the blueprints (sync: they run
before the view, on the request's thread, and call the database with aio.run, one hand-off each);
token_required is async: it runs inside the API's async views.
"""
from functools import wraps

from flask import abort, current_app, g, redirect, request, session, url_for

from atm_web.approvals import requests as approvals
from atm_web.core.clock import now
from atm_web.serving import aio
from atm_web.staff import login_sessions, tellers, tokens
from atm_web.storage import get_db
from atm_web.storage.common import StaleAuthorisation
from atm_web.web.errors import ApiError


def load_teller() -> tellers.Teller | None:
    """The teller whose staff session the cookie carries (g.teller), or None."""
    config = current_app.config
    teller = aio.run(login_sessions.session_teller(get_db(), session.get("sid"), now(),
                                             config["SESSION_IDLE_MINUTES"] * 60, config["SESSION_MAX_HOURS"] * 3600))
    g.teller = teller
    if teller is not None and teller.can_approve:  # the count in the top bar
        g.approvals_waiting = aio.run(approvals.count_waiting_for(get_db(), teller.id, now()))
    return teller


def require_teller():
    """before_request of the teller pages: a logged-in, active teller, else the login page."""
    if load_teller() is None:
        session.pop("sid", None)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")), 303)


def require_admin():
    """before_request of the administrators' pages: the login page, or 403 for another role."""
    redirect_to_login = require_teller()
    if redirect_to_login is not None:
        return redirect_to_login
    if not g.teller.is_admin:
        abort(403)


def require_approver():
    """before_request of the Approvals page: the login page, or 403 for a teller (supervisors and administrators
    decide requests)."""
    redirect_to_login = require_teller()
    if redirect_to_login is not None:
        return redirect_to_login
    if not g.teller.can_approve:
        abort(403)


SCOPES = {"read": 0, "write": 1, "admin": 2}


def token_required(write: bool = False, admin: bool = False):
    """Decorate an async JSON view: a valid Bearer token first (401), then its scope (403): write scope for a
    write, admin scope for admin actions (an admin token may also write).

    Checked inside the view's own coroutine, not in a before_request hook: one trip to the event loop per
    request instead of two. A write view's token, when the process has it cached, is trusted on condition
    (tokens.token_for): its writes are made only if no token was revoked since (else nothing is written, the
    token is looked up again and the view runs once more, or 401), and if it wrote nothing the token is checked
    before the answer goes out. A revoked token is refused exactly as when every request reads the generation
    first, for one round trip less per deposit.
    """
    def decorate(view):
        @wraps(view)
        async def wrapped(*args, **kwargs):
            scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
            secret = secret.strip() if scheme.lower() == "bearer" else ""
            db = get_db()
            authorise(await tokens.token_for(db, secret, now(), on_condition=write and not admin))
            try:
                return await view(*args, **kwargs)
            except StaleAuthorisation:  # nothing was written: a token was revoked after this one was cached
                authorise(await tokens.token_for(db, secret, now()))
                return await view(*args, **kwargs)
            finally:  # an answer or an error of a view that wrote nothing goes out only for an unrevoked token
                if not await tokens.confirm(db, secret, now()):
                    authorise(None)

        def authorise(token):
            if token is None:
                raise ApiError(401, "A valid API token is required: send 'Authorization: Bearer <token>'",
                               {"WWW-Authenticate": 'Bearer realm="atm-web"'})
            needed = "admin" if admin else "write" if write else "read"
            if SCOPES[token.scope] < SCOPES[needed]:
                raise ApiError(403, "This token is read-only" if token.scope == "read"
                               else "This needs a token with the admin scope")
            g.token = token
        return wrapped
    return decorate
