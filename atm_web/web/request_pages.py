"""Blueprint: the teller's held requests (/teller/requests/): My requests, and one request's page (waiting, with
Check again; its receipt once approved; declined or expired). Requests are made on the pages of what they ask
for (a withdrawal or a limit on the account page, a reversal on its receipt, a sign-off on My drawer)."""
from flask import Blueprint, abort, flash, g, redirect, render_template, url_for

from atm_web.approvals import requests as approvals
from atm_web.core.clock import now
from atm_web.storage import get_db
from atm_web.web.guards import require_teller

bp = Blueprint("requests", __name__, url_prefix="/teller/requests")
bp.before_request(require_teller)


@bp.get("/")
async def mine():
    at = now()
    return render_template("requests/mine.html", now=at,
                           requests=await approvals.recent(get_db(), requested_by=g.teller.id, now=at))


@bp.get("/<id:approval_id>")
async def page(approval_id):
    """The teller's request: waiting (with Check again), approved (its receipt), declined or expired."""
    db, at = get_db(), now()
    held = await approvals.get(db, approval_id, at)
    if held is None or (held.requested_by != g.teller.id and not g.teller.can_approve):
        abort(404)
    receipt_id = await approvals.receipt_of(db, held)
    if held.status == "approved" and receipt_id is not None:
        flash(f"Approved by {held.decided_by}: request {held.reference}.")
        return redirect(url_for("teller.receipt", tx_id=receipt_id), 303)
    return render_template("requests/request.html", held=held, now=at)

