"""Blueprint: admin pages: tellers, login locks, API tokens, verification and the audit log."""
from flask import Blueprint, abort, flash, g, redirect, render_template, url_for

from . import accounts, aio, login_locks, staff
from .auth import hash_password, now, require_admin
from .forms import (ButtonForm, DeactivationForm, NewTellerForm, NewTokenForm, OverdraftLimitForm, PasswordResetForm,
                    ReversalForm, UnlockForm)
from .storage import get_db

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(require_admin)


def _tellers_page(form=None, status=200):
    db = get_db()
    tellers = aio.run(staff.list_tellers(db))
    tokens_by_maker: dict[int, list[staff.Token]] = {}
    for token in aio.run(staff.list_tokens(db)):
        if token.creator_id is not None and token.revoked_at is None:
            tokens_by_maker.setdefault(token.creator_id, []).append(token)
    locks = aio.run(login_locks.current_locks(db, now()))
    return render_template("admin/tellers.html", tellers=tellers, form=form or NewTellerForm(formdata=None),
                           reset_form=PasswordResetForm(formdata=None), button=ButtonForm(formdata=None),
                           tokens_by_maker=tokens_by_maker, locks=locks, policy=login_locks,
                           locked_usernames={lock.subject for lock in locks if lock.kind == "username"}), status


@bp.get("/tellers")
def tellers():
    return _tellers_page()


@bp.post("/tellers")
def add_teller():
    form = NewTellerForm()
    if form.validate_on_submit():
        try:
            password_hash = hash_password(form.password.data)
            teller = aio.run(staff.create_teller(get_db(), form.username.data, password_hash,
                                                 "admin" if form.admin.data else "teller", g.teller.actor, now()))
        except staff.StaffError as error:
            form.username.errors = [str(error)]
        else:
            flash(f"Teller {teller.username} added.")
            return redirect(url_for("admin.tellers"), 303)
    return _tellers_page(form, 422)


@bp.get("/tellers/<id:teller_id>/deactivate")
def confirm_deactivation(teller_id):
    """The warning before a deactivation: it also revokes every API token the teller made, listed here."""
    teller = aio.run(staff.get_teller(get_db(), teller_id))
    if teller is None:
        abort(404)
    if teller.id == g.teller.id or not teller.active:
        flash("You cannot deactivate yourself." if teller.active else f"Teller {teller.username} is not active.")
        return redirect(url_for("admin.tellers"), 303)
    return render_template("admin/deactivate.html", teller=teller, form=DeactivationForm(formdata=None),
                           tokens=aio.run(staff.live_tokens_made_by(get_db(), teller.id)))


@bp.post("/tellers/<id:teller_id>/<any(deactivate, reactivate):action>")
def set_active(teller_id, action):
    form = DeactivationForm()
    if not form.validate_on_submit():
        return _tellers_page(status=400)
    if teller_id == g.teller.id and action == "deactivate":
        flash("You cannot deactivate yourself.")
        return redirect(url_for("admin.tellers"), 303)
    if (action == "deactivate" and form.confirm.data != "yes"
            and aio.run(staff.live_tokens_made_by(get_db(), teller_id))):  # not warned yet: warn first
        return redirect(url_for("admin.confirm_deactivation", teller_id=teller_id), 303)
    try:
        teller = aio.run(staff.set_active(get_db(), teller_id, action == "reactivate", g.teller.actor, now()))
    except staff.StaffError as error:
        flash(str(error))
    else:
        flash(f"Teller {teller.username} {action}d.")
    return redirect(url_for("admin.tellers"), 303)


@bp.post("/login-locks/unlock")
def unlock_login():
    form = UnlockForm()
    if not form.validate_on_submit():
        flash("Nothing to unlock.")
        return redirect(url_for("admin.tellers"), 303)
    kind, subject = form.kind.data, form.subject.data
    if aio.run(login_locks.unlock(get_db(), kind, subject, g.teller.actor, now())):
        flash(f"Logins for the {kind} {subject} are unlocked.")
    else:
        flash(f"The {kind} {subject} was not locked (any more).")
    return redirect(url_for("admin.tellers"), 303)


@bp.post("/tellers/<id:teller_id>/password")
def reset_password(teller_id):
    form = PasswordResetForm()
    if not form.validate_on_submit():
        flash("Password not reset: " + " ".join(sum(form.errors.values(), [])))
        return redirect(url_for("admin.tellers"), 303)
    try:
        teller = aio.run(staff.set_password(get_db(), teller_id, hash_password(form.password.data),
                                            g.teller.actor, now()))
    except staff.StaffError as error:
        flash(str(error))
    else:
        flash(f"Password of {teller.username} reset; their open sessions were ended.")
    return redirect(url_for("admin.tellers"), 303)


def _tokens_page(form=None, new_secret=None, status=200):
    tokens = aio.run(staff.list_tokens(get_db()))
    return render_template("admin/tokens.html", tokens=tokens, form=form or NewTokenForm(formdata=None),
                           new_secret=new_secret, button=ButtonForm(formdata=None)), status


@bp.get("/tokens")
def tokens():
    return _tokens_page()


@bp.post("/tokens")
def create_token():
    form = NewTokenForm()
    if form.validate_on_submit():
        try:
            token, secret = aio.run(staff.create_token(get_db(), form.name.data, form.read_only.data,
                                                       g.teller.actor, now(), form.admin.data))
        except staff.StaffError as error:
            form.name.errors = [str(error)]
        else:  # shown once, in this response only; never stored or flashed
            return _tokens_page(new_secret=(token, secret), status=201)
    return _tokens_page(form, status=422)


@bp.post("/tokens/<id:token_id>/revoke")
def revoke_token(token_id):
    if not ButtonForm().validate_on_submit():
        return _tokens_page(status=400)
    try:
        token = aio.run(staff.revoke_token(get_db(), token_id, g.teller.actor, now()))
    except staff.StaffError as error:
        flash(str(error))
    else:
        flash(f"Token {token.name} revoked.")
    return redirect(url_for("admin.tokens"), 303)


@bp.get("/audit")
def audit():
    return render_template("admin/audit.html", entries=aio.run(staff.audit_entries(get_db())))


@bp.get("/verification")
def verification():
    return render_template("admin/verification.html", last=aio.run(accounts.last_verification(get_db())),
                           button=ButtonForm(formdata=None))


@bp.post("/verification")
def verify_now():
    if ButtonForm().validate_on_submit():
        problems, rows_checked = aio.run(accounts.verify(get_db()))
        aio.run(accounts.record_verification(get_db(), problems, rows_checked, g.teller.actor))
        flash("The ledger verifies." if not problems else "The ledger does NOT verify: see below.")
    return redirect(url_for("admin.verification"), 303)


@bp.post("/accounts/<number>/overdraft-limit")
def overdraft_limit(number):
    form = OverdraftLimitForm()
    if not accounts.ACCOUNT_NUMBER.fullmatch(number):
        abort(404)
    if not form.validate_on_submit():
        flash("Limit not changed: " + " ".join(sum(form.errors.values(), [])))
        return redirect(url_for("teller.account", number=number), 303)
    limit = None if form.use_default.data else form.limit_cents
    detail = "MAX_DEBT" if limit is None else f"{limit / 100:.2f}"
    try:
        aio.run(accounts.set_overdraft_limit(get_db(), number, limit, lambda conn: staff.audit(
            conn, now(), g.teller.actor, "overdraft limit set", number, detail)))
    except accounts.LedgerError as error:
        flash(f"Limit not changed: {error}.")
    else:
        flash("Overdraft limit set." if limit is not None else "The account follows the default limit again.")
    return redirect(url_for("teller.account", number=number), 303)


@bp.post("/transactions/<id:tx_id>/reversal")
def reverse(tx_id):
    form = ReversalForm()
    if not form.validate_on_submit():
        flash("Not reversed: give a reason (up to 200 characters).")
        return redirect(url_for("teller.receipt", tx_id=tx_id), 303)
    reason = form.reason.data.strip()
    try:
        rows = aio.run(accounts.reverse(get_db(), tx_id, reason, g.teller.actor, lambda conn: staff.audit(
            conn, now(), g.teller.actor, "entry reversed", str(tx_id), reason)))
    except accounts.InsufficientFunds:
        flash("Not reversed: it would take the account past its overdraft limit.")
    except accounts.LedgerError as error:
        flash(f"Not reversed: {error}.")
    else:
        flash(f"Entry {tx_id} reversed.")
        return redirect(url_for("teller.receipt", tx_id=rows[0].id), 303)
    return redirect(url_for("teller.receipt", tx_id=tx_id), 303)
