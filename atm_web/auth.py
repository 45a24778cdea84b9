"""Blueprint: login, logout and first-run setup; the checks that let only tellers and tokens in.

Its pages are plain (sync) views that call the database with aio.run, unlike the other blueprints' async views:
a login checks a password (scrypt, slow on purpose) on the request's own thread, between two database calls,
and require_teller/require_admin are before_request hooks of the other blueprints. token_required is async: it
runs inside the API's async views.
"""
import logging
import re
import secrets
from functools import wraps
from urllib.parse import urlsplit

import click
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from . import aio, approvals, login_locks, sessions, tellers, tokens
from .clock import now
from .errors import ApiError
from .forms import ButtonForm, LoginForm, SetupForm
from .staff import StaffError
from .storage import get_db
from .storage.common import StaleAuthorisation

bp = Blueprint("auth", __name__)
log = logging.getLogger(__name__)
# Checked against when the username does not exist, so a failed login takes as long either way.
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))


# First run: a one-time setup code kept in the database, so every worker and every server prints and accepts
# the same one (servers on Heroku or Render share no disk).

def announce_setup(app) -> None:
    """When no teller exists, make (once) and print the setup link: when serving, not in a CLI command (flask
    init-db, create-teller...), where it would only be noise."""
    command = click.get_current_context(silent=True)
    if command is not None and command.info_name != "run":
        return
    code = aio.run(tellers.setup_code(app.extensions["atm_db"], secrets.token_urlsafe(24)))
    if code is not None:
        log.warning("No teller exists yet. Create the first admin at http://127.0.0.1:%s/setup?code=%s",
                    app.config["PORT"], code)


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    form = SetupForm()
    code = request.values.get("code", "")
    db = get_db()
    if aio.run(tellers.count_tellers(db)) or not aio.run(tellers.setup_code_matches(db, code)):
        abort(404)
    form.code.data = code
    if form.validate_on_submit():
        try:
            password_hash = tellers.hash_password(form.password.data)
            teller = aio.run(tellers.create_teller(db, form.username.data, password_hash, "admin", "setup", now(),
                                                   only_if_none=True))
        except StaffError as error:
            form.username.errors = [str(error)]
        else:
            if teller is None:
                abort(404)
            _log_in(teller)
            flash(f"Administrator {teller.username} created. Welcome.")
            return redirect(url_for("teller.index"), 303)
    return render_template("auth/setup.html", form=form), 422 if form.errors else 200


# Log in and out

def _log_in(teller: tellers.Teller) -> None:
    session.clear()  # a new session (and CSRF token) at every login: no session fixation
    session["sid"] = aio.run(sessions.start_session(get_db(), teller.id, now()))


# What a same-site path may hold, checked on the decoded value: printable ASCII without spaces or backslashes
# (browsers drop tabs and newlines and read '\\' as '/', so '/\t/evil.example' would leave the site).
_SAFE_PATH = re.compile(r"/(?![/\\])[\x21-\x7e]*")


def _safe_next(target: str | None) -> str:
    """The page to go to after login: a path on this site, else the start page."""
    if target and _SAFE_PATH.fullmatch(target) and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("teller.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form), 422 if form.errors else 200
    db, address, username = get_db(), request.remote_addr or "?", form.username.data
    try:  # before the slow hash: however many arrive at once, only the policy's number get a password check
        attempt = aio.run(login_locks.reserve_attempt(db, username, address, now()))
    except login_locks.LoginLocked as refused:
        log.warning("login refused (%s locked): username=%r address=%s", refused.kind, username[:64], address)
        return _login_refused(form, locked=True)
    found = aio.run(tellers.find_teller(db, username))
    password_ok = check_password_hash(found[1] if found else _DUMMY_HASH, form.password.data)
    if found and password_ok and found[0].active:
        aio.run(login_locks.attempt_succeeded(db, username, attempt))
        _log_in(found[0])
        log.info("login: %s from %s", found[0].username, address)
        return redirect(_safe_next(request.args.get("next")), 303)
    locked = aio.run(login_locks.attempt_failed(db, attempt, now()))
    log.warning("login failed: username=%r address=%s%s", username[:64], address,
                f"; {locked} now locked for 15 minutes" if locked else "")
    return _login_refused(form, locked=bool(locked))


def _login_refused(form, locked: bool):
    message = ("Too many failed logins: logging in is locked for a while. Try again in 15 minutes."
               if locked else "Login failed: check the username and password.")
    return render_template("auth/login.html", form=form, error=message), 429 if locked else 401


@bp.post("/logout")
def logout():
    if ButtonForm().validate_on_submit():
        aio.run(sessions.end_session(get_db(), session.get("sid"), now()))
        session.clear()
        flash("You are logged out.")
    return redirect(url_for("auth.login"), 303)


# Who is asking: tellers by session, scripts by token

def load_teller() -> tellers.Teller | None:
    config = current_app.config
    teller = aio.run(sessions.session_teller(get_db(), session.get("sid"), now(),
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
    redirect_to_login = require_teller()
    if redirect_to_login is not None:
        return redirect_to_login
    if not g.teller.is_admin:
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
