"""Blueprint: the Approvals page (/approvals/), where a supervisor or administrator approves or declines the
requests other tellers made (held by approvals/requests.py, decided by approvals/decisions.py).

A refusal is flashed on the page the action came from.
"""
from flask import Blueprint, flash, g, redirect, render_template, url_for

from atm_web.approvals import requests as approvals
from atm_web.approvals.decisions import decide
from atm_web.core.clock import now
from atm_web.customers import records as customers
from atm_web.ledger import journal
from atm_web.storage import get_db
from atm_web.web.errors import flash_refusal, show_refusals_on
from atm_web.web.forms.approvals import DecisionForm
from atm_web.web.forms.common import error_text
from atm_web.web.guards import require_approver

bp = Blueprint("approval", __name__, url_prefix="/approvals")
bp.before_request(require_approver)


@bp.get("/")
async def index():
    db, at = get_db(), now()
    waiting = await approvals.waiting(db, at)
    return render_template("approvals/index.html", waiting=waiting, holders=await _holders_for(db, waiting),
                           recent=[a for a in await approvals.recent(db, limit=30) if a.status != "pending"],
                           form=DecisionForm(formdata=None), now=at)


async def _holders_for(db, held: list[approvals.Approval]) -> dict[int, tuple[str, list]]:
    """For whom each request is: {request id: (account number, its holders)}."""
    whom = {}
    for a in held:
        number = a.account_number
        if number is None and a.tx_id is not None:
            tx = await journal.get_transaction(db, a.tx_id)
            number = tx.account_number if tx else None
        if number is not None:
            whom[a.id] = (number, await customers.holders_of(db, number))
    return whom


@bp.post("/<id:approval_id>")
async def decide_request(approval_id):
    form = DecisionForm()
    if not form.validate_on_submit() or not (form.approve.data or form.decline.data):
        flash("Not decided: " + (error_text(form)
                                 or "choose Approve or Decline."))
        return redirect(url_for("approval.index"), 303)
    show_refusals_on(flash_refusal("Not decided", "approval.index"))
    done = await decide(get_db(), approval_id, g.teller, bool(form.approve.data), form.note.data, now=now())
    held = done.approval
    if done.outcome == "expired":
        flash(f"Request {held.reference} had expired: nothing was posted.")
    else:
        flash(f"Request {held.reference} {done.outcome}: {held.what}.")
    return redirect(url_for("approval.index"), 303)
