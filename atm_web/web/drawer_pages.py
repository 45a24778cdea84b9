"""Blueprint: the teller's drawer: My drawer, Open drawer (the float counted), vault requests, and the blind Close
drawer (its page never shows the expected cash; the result page after it does).

Each view validates its form and makes one call into drawers.py or vault.py; refusals are shown on the drawer page.
"""
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from atm_web.approvals import requests as approvals
from atm_web.cash import drawers, vault
from atm_web.core.clock import now
from atm_web.core.money import format_cents
from atm_web.storage import get_db
from atm_web.web.errors import flash_refusal, show_refusals_on
from atm_web.web.forms.common import ButtonForm
from atm_web.web.forms.drawer import MovementForm, close_form, open_form
from atm_web.web.guards import require_teller

bp = Blueprint("drawer", __name__, url_prefix="/teller/drawer")
bp.before_request(require_teller)


async def _drawer_page(form=None, movement_form=None, status=200, error=None):
    db = get_db()
    session = await drawers.current_session(db, g.teller.id)
    requests = await vault.movements(db, session_id=session.id) if session else []
    signoff = (await approvals.latest_signoff(db, session.id)
               if session and session.status == "pending_signoff" else None)
    return render_template("drawer/index.html", session=session, requests=requests, error=error,
                           signoff=signoff, now=now(), button=ButtonForm(formdata=None),
                           form=form or (open_form() if session is None else None),
                           movement_form=movement_form or MovementForm(formdata=None)), status


def _refused(form=None, movement_form=None):
    async def page(error, message, status):
        return await _drawer_page(form, movement_form, status, error=message)
    return page


@bp.get("/")
async def index():
    return await _drawer_page()


@bp.post("/open")
async def open_drawer():
    form = open_form(posted=True)
    if not form.validate():
        return await _drawer_page(form, status=422)
    show_refusals_on(_refused(form))
    session = await drawers.open_drawer(get_db(), g.teller, form.counts, now=now())
    flash(f"Drawer open with a float of {format_cents(session.opening_cents)}.")
    return redirect(url_for("drawer.index"), 303)


@bp.post("/movements")
async def movement():
    form = MovementForm()
    if not form.validate() or form.direction is None:
        if form.direction is None and not form.errors:
            form.amount.errors = ["Choose Send to the vault or Ask for cash."]
        return await _drawer_page(movement_form=form, status=422)
    show_refusals_on(_refused(movement_form=form))
    requested = await vault.request_movement(get_db(), g.teller, form.direction, form.amount_cents, now=now())
    flash(f"{requested.label}: requested; an administrator confirms it.")
    return redirect(url_for("drawer.index"), 303)


@bp.post("/sign-off-request")
async def request_signoff():
    """Ask again for the sign-off of the teller's close (its request expired or was declined)."""
    if not ButtonForm().validate_on_submit():
        return redirect(url_for("drawer.index"), 303)
    show_refusals_on(flash_refusal("Not asked", "drawer.index"))
    held = await drawers.ask_signoff_again(get_db(), g.teller, now())
    return redirect(url_for("requests.page", approval_id=held.id), 303)


@bp.route("/close", methods=["GET", "POST"])
async def close():
    """The blind count: this page shows no expected amount, before or after a refused submit."""
    db = get_db()
    session = await drawers.current_session(db, g.teller.id)
    if session is None or session.status != "open":
        return redirect(url_for("drawer.index"), 303)
    if request.method == "GET":
        return render_template("drawer/close.html", form=close_form())
    form = close_form(posted=True)
    if not form.validate():
        return render_template("drawer/close.html", form=form), 422
    closed = await drawers.close_drawer(db, g.teller, form.counts, current_app.config["VARIANCE_TOLERANCE_CENTS"],
                                        now=now())
    return redirect(url_for("drawer.result", session_id=closed.id), 303)


@bp.get("/sessions/<id:session_id>")
async def result(session_id):
    """A closed session: expected, counted and the variance (the teller's own, or any for an administrator)."""
    session = await drawers.get_session(get_db(), session_id)
    if session is None or session.status == "open" or (session.teller_id != g.teller.id and not g.teller.is_admin):
        abort(404)
    return render_template("drawer/result.html", session=session,
                           denominations=current_app.config["DENOMINATIONS"])
