"""Blueprint: the vault, for administrators: the cash it holds, the drawers open, the tellers' requests to confirm or
reject, closes waiting for a sign-off, and shipments received or sent.

Each view validates its form and makes one call into drawers.py or vault.py; a refusal is flashed on the vault page.
"""
import asyncio
import hashlib

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from atm_web.cash import drawers, vault
from atm_web.core.clock import now
from atm_web.core.money import format_cents
from atm_web.ledger.idempotency import Once
from atm_web.storage import get_db
from atm_web.web.errors import flash_refusal, show_refusals_on
from atm_web.web.forms.common import ButtonForm, error_text, new_form_key
from atm_web.web.forms.drawer import close_form
from atm_web.web.forms.vault import ShipmentForm, SignOffForm
from atm_web.web.guards import require_admin

bp = Blueprint("vault", __name__, url_prefix="/admin/vault")
bp.before_request(require_admin)


_back = flash_refusal("Refused", "vault.index")


@bp.get("/")
async def index(shipment_form=None, status=200):
    db = get_db()
    held, open_sessions, pending, waiting = await asyncio.gather(
        vault.cash_held(db), drawers.sessions(db, status="open"), vault.movements(db),
        drawers.sessions(db, status="pending_signoff"))
    return render_template(
        "vault/index.html", held=held, open_sessions=open_sessions, pending=pending, waiting=waiting,
        button=ButtonForm(formdata=None), signoff_form=SignOffForm(formdata=None),
        shipment_form=shipment_form or ShipmentForm(form_key=new_form_key(), formdata=None)), status


@bp.post("/movements/<id:movement_id>")
async def decide(movement_id):
    form = ButtonForm()
    if form.validate():
        show_refusals_on(_back)
        confirm = request.form.get("decision") == "confirm"
        done = await vault.decide_movement(get_db(), movement_id, g.teller, confirm, now=now())
        flash(f"{done.label} of {format_cents(done.amount_cents)} for {done.username}: {done.status}.")
    return redirect(url_for("vault.index"), 303)


@bp.post("/sessions/<id:session_id>/sign-off")
async def sign_off(session_id):
    form = SignOffForm()
    if not form.validate():
        flash("Sign-off: " + error_text(form))
        return redirect(url_for("vault.index"), 303)
    show_refusals_on(_back)
    done = await drawers.sign_off(get_db(), session_id, g.teller, form.note.data, now=now())
    flash(f"Drawer {done.id} of {done.username} signed off.")
    return redirect(url_for("vault.index"), 303)


@bp.route("/sessions/<id:session_id>/close", methods=["GET", "POST"])
async def close_for(session_id):
    """Close another teller's open drawer on their behalf: the same blind count (a teller who left with it open
    would keep the day from closing)."""
    session = await drawers.get_session(get_db(), session_id)
    if session is None or session.status != "open" or session.teller_id == g.teller.id:
        return redirect(url_for("vault.index"), 303)
    if request.method == "GET":
        return render_template("vault/close.html", form=close_form(), session_for=session)
    form = close_form(posted=True)
    if not form.validate():
        return render_template("vault/close.html", form=form, session_for=session), 422
    show_refusals_on(_back)
    closed = await drawers.close_drawer(get_db(), g.teller, form.counts,
                                        current_app.config["VARIANCE_TOLERANCE_CENTS"], now=now(),
                                        session_id=session_id)
    return redirect(url_for("drawer.result", session_id=closed.id), 303)


@bp.post("/shipments")
async def shipment():
    form = ShipmentForm()
    if not form.validate() or form.direction is None:
        if form.direction is None and not form.errors:
            form.amount.errors = ["Choose Receive cash or Send cash."]
        return await index(form, 422)
    show_refusals_on(_back)
    at = now()
    fingerprint = hashlib.sha256(repr((form.direction, form.amount_cents, form.reference.data)).encode()).hexdigest()
    made = await vault.ship_cash(get_db(), form.direction, form.amount_cents, form.reference.data, g.teller,
                                   Once(f"form:{g.teller.id}", form.form_key.data, fingerprint, at), now=at)
    flash(("Cash received: " if form.direction == "in" else "Cash sent: ") + format_cents(form.amount_cents)
          if made else "This form was already submitted. Nothing new was recorded.")
    return redirect(url_for("vault.index"), 303)
