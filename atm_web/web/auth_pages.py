"""Blueprint: login, logout and first-run setup (/login, /logout, /setup).

Its pages are plain (sync) views that call the database with aio.run, unlike the other blueprints' async views:
a login checks a password (scrypt, slow on purpose) on the request's own thread, between two database calls.
A refused login (a locked username or address) is answered by errors.py on the login page (show_refusals_on).
"""
import logging
import re
import secrets
from functools import partial
from urllib.parse import urlsplit

import click
from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from atm_web.core.clock import now
from atm_web.serving import aio
from atm_web.staff import login_locks, login_sessions, tellers
from atm_web.staff.refusals import LoginLocked
from atm_web.storage import get_db
from atm_web.web.errors import show_refusals_on
from atm_web.web.forms.auth import LoginForm, SetupForm
from atm_web.web.forms.common import ButtonForm

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
    if not form.validate_on_submit():
        return render_template("auth/setup.html", form=form), 422 if form.errors else 200

    def refused(error, message, status):  # a username taken, a password too short: on its field
        form.username.errors = [str(error)]
        return render_template("auth/setup.html", form=form), status
    show_refusals_on(refused)
    teller = aio.run(tellers.create_teller(db, form.username.data, tellers.hash_password(form.password.data), "admin",
                                           "setup", now(), only_if_none=True))
    if teller is None:
        abort(404)
    _log_in(teller)
    flash(f"Administrator {teller.username} created. Welcome.")
    return redirect(url_for("teller.index"), 303)


# Log in and out

def _log_in(teller: tellers.Teller) -> None:
    session.clear()  # a new session (and CSRF token) at every login: no session fixation
    session["sid"] = aio.run(login_sessions.start_session(get_db(), teller.id, now()))


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
    show_refusals_on(partial(_refused_login, form, username, address))
    # before the slow hash: however many arrive at once, only the policy's number get a password check (LoginLocked)
    attempt = aio.run(login_locks.reserve_attempt(db, username, address, now()))
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


def _refused_login(form, username: str, address: str, error, message: str, status: int):
    if not isinstance(error, LoginLocked):  # a busy ledger, say: the login page with its message
        return render_template("auth/login.html", form=form, error=message), status
    log.warning("login refused (%s locked): username=%r address=%s", error.kind, username[:64], address)
    return _login_refused(form, locked=True)


def _login_refused(form, locked: bool):
    message = ("Too many failed logins: logging in is locked for a while. Try again in 15 minutes."
               if locked else "Login failed: check the username and password.")
    return render_template("auth/login.html", form=form, error=message), 429 if locked else 401


@bp.post("/logout")
def logout():
    if ButtonForm().validate_on_submit():
        aio.run(login_sessions.end_session(get_db(), session.get("sid"), now()))
        session.clear()
        flash("You are logged out.")
    return redirect(url_for("auth.login"), 303)
