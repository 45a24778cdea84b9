"""Blueprint: admin pages: tellers and their roles, login locks, API tokens, verification, the audit log and the log of
reads of customers' records.

Async views like the others: each awaits the ledger or the staff modules; password hashing (slow on purpose) runs
in a worker thread, off the event loop. A refusal is answered by errors.py: on the form's field, or flashed on the
page the action came from.
"""
import asyncio

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for

from atm_web.approvals import requests as approvals
from atm_web.core import audit
from atm_web.core.clock import now
from atm_web.customers import records as customers
from atm_web.ledger import verification
from atm_web.staff import login_locks, tellers, tokens
from atm_web.storage import get_db
from atm_web.web.errors import flash_refusal, show_refusals_on
from atm_web.web.forms.admin import (
    DeactivationForm,
    NewTellerForm,
    NewTokenForm,
    PasswordResetForm,
    RoleForm,
    UnlockForm,
)
from atm_web.web.forms.common import ButtonForm, error_text
from atm_web.web.guards import require_admin

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(require_admin)


async def _tellers_page(form=None, status=200):
    db = get_db()
    staff_list, made, locks = await asyncio.gather(tellers.list_tellers(db), tokens.list_tokens(db),
                                                   login_locks.current_locks(db, now()))
    tokens_by_maker: dict[int, list[tokens.Token]] = {}
    for token in made:
        if token.creator_id is not None and token.revoked_at is None:
            tokens_by_maker.setdefault(token.creator_id, []).append(token)
    return render_template("admin/tellers.html", tellers=staff_list, form=form or NewTellerForm(formdata=None),
                           reset_form=PasswordResetForm(formdata=None), button=ButtonForm(formdata=None),
                           role_form=RoleForm(formdata=None),
                           tokens_by_maker=tokens_by_maker, locks=locks, policy=login_locks,
                           locked_usernames={lock.subject for lock in locks if lock.kind == "username"}), status


@bp.get("/tellers", endpoint="tellers")
async def tellers_page():
    return await _tellers_page()


@bp.post("/tellers")
async def add_teller():
    form = NewTellerForm()
    if not form.validate_on_submit():
        return await _tellers_page(form, 422)

    async def refused(error, message, status):  # a username taken, say: on its field
        form.username.errors = [str(error)]
        return await _tellers_page(form, 422)
    show_refusals_on(refused)
    password_hash = await asyncio.to_thread(tellers.hash_password, form.password.data)
    teller = await tellers.create_teller(get_db(), form.username.data, password_hash, form.role.data, g.teller.actor,
                                         now())
    flash(f"Teller {teller.username} added ({teller.role}).")
    return redirect(url_for("admin.tellers"), 303)


@bp.get("/tellers/<id:teller_id>/deactivate")
async def confirm_deactivation(teller_id):
    """The warning before a deactivation: it also revokes every API token the teller made, listed here."""
    teller = await tellers.get_teller(get_db(), teller_id)
    if teller is None:
        abort(404)
    if teller.id == g.teller.id or not teller.active:
        flash("You cannot deactivate yourself." if teller.active else f"Teller {teller.username} is not active.")
        return redirect(url_for("admin.tellers"), 303)
    return render_template("admin/deactivate.html", teller=teller, form=DeactivationForm(formdata=None),
                           tokens=await tokens.live_tokens_made_by(get_db(), teller.id))


@bp.post("/tellers/<id:teller_id>/<any(deactivate, reactivate):action>")
async def set_active(teller_id, action):
    form = DeactivationForm()
    if not form.validate_on_submit():
        return await _tellers_page(status=400)
    if (action == "deactivate" and form.confirm.data != "yes" and teller_id != g.teller.id
            and await tokens.live_tokens_made_by(get_db(), teller_id)):  # not warned yet: warn first
        return redirect(url_for("admin.confirm_deactivation", teller_id=teller_id), 303)
    show_refusals_on(flash_refusal(None, "admin.tellers"))
    teller = await approvals.set_teller_active(get_db(), teller_id, action == "reactivate", g.teller, now())
    flash(f"Teller {teller.username} {action}d.")
    return redirect(url_for("admin.tellers"), 303)


@bp.post("/tellers/<id:teller_id>/role")
async def set_role(teller_id):
    form = RoleForm()
    if not form.validate_on_submit():
        flash("Role not set: " + error_text(form))
        return redirect(url_for("admin.tellers"), 303)
    show_refusals_on(flash_refusal(None, "admin.tellers"))
    teller = await tellers.set_role(get_db(), teller_id, form.role.data, g.teller, now())
    flash(f"{teller.username} is now a {teller.role}; their sessions were ended.")
    return redirect(url_for("admin.tellers"), 303)


@bp.post("/login-locks/unlock")
async def unlock_login():
    form = UnlockForm()
    if not form.validate_on_submit():
        flash("Nothing to unlock.")
        return redirect(url_for("admin.tellers"), 303)
    kind, subject = form.kind.data, form.subject.data
    if await login_locks.unlock(get_db(), kind, subject, g.teller.actor, now()):
        flash(f"Logins for the {kind} {subject} are unlocked.")
    else:
        flash(f"The {kind} {subject} was not locked (any more).")
    return redirect(url_for("admin.tellers"), 303)


@bp.post("/tellers/<id:teller_id>/password")
async def reset_password(teller_id):
    form = PasswordResetForm()
    if not form.validate_on_submit():
        flash("Password not reset: " + error_text(form))
        return redirect(url_for("admin.tellers"), 303)
    show_refusals_on(flash_refusal(None, "admin.tellers"))
    password_hash = await asyncio.to_thread(tellers.hash_password, form.password.data)
    teller = await tellers.set_password(get_db(), teller_id, password_hash, g.teller.actor, now())
    flash(f"Password of {teller.username} reset; their open sessions were ended.")
    return redirect(url_for("admin.tellers"), 303)


async def _tokens_page(form=None, new_secret=None, status=200):
    return render_template("admin/tokens.html", tokens=await tokens.list_tokens(get_db()),
                           form=form or NewTokenForm(formdata=None), new_secret=new_secret,
                           button=ButtonForm(formdata=None)), status


@bp.get("/tokens", endpoint="tokens")
async def tokens_page():
    return await _tokens_page()


@bp.post("/tokens")
async def create_token():
    form = NewTokenForm()
    if not form.validate_on_submit():
        return await _tokens_page(form, status=422)

    async def refused(error, message, status):  # read-only and admin at once, say: on the name's field
        form.name.errors = [str(error)]
        return await _tokens_page(form, status=422)
    show_refusals_on(refused)
    token, secret = await tokens.create_token(get_db(), form.name.data, form.read_only.data, g.teller.actor, now(),
                                              form.admin.data)
    return await _tokens_page(new_secret=(token, secret), status=201)  # shown once, here only; never stored


@bp.post("/tokens/<id:token_id>/revoke")
async def revoke_token(token_id):
    if not ButtonForm().validate_on_submit():
        return await _tokens_page(status=400)
    show_refusals_on(flash_refusal(None, "admin.tokens"))
    token = await tokens.revoke_token(get_db(), token_id, g.teller.actor, now())
    flash(f"Token {token.name} revoked.")
    return redirect(url_for("admin.tokens"), 303)


@bp.get("/audit", endpoint="audit")
async def audit_page():
    return render_template("admin/audit.html", entries=await audit.entries(get_db()))


@bp.get("/read-access", endpoint="read_access")
async def read_access_page():
    """Who read which customers' records (ASVS V8.3.5): ids only."""
    return render_template("admin/read_access.html", entries=await customers.reads(get_db()))


@bp.get("/verification", endpoint="verification")
async def verification_page():
    return render_template("admin/verification.html", last=await verification.last_verification(get_db()),
                           button=ButtonForm(formdata=None))


@bp.post("/verification")
async def verify_now():
    if ButtonForm().validate_on_submit():
        outcome = await verification.verify_and_record(get_db(), g.teller.actor, now=now())
        flash("The ledger verifies." if outcome.ok else "The ledger does NOT verify: see below.")
    return redirect(url_for("admin.verification"), 303)
