"""Blueprint: four eyes: the teller's held requests (an overdraft limit, a sign-off asked again; a reversal is asked
on its receipt, teller.py) and their page, and the Approvals page where a supervisor or administrator approves or
declines them.

Each view validates its form and makes one call into approvals.py or approval_decisions.py; a refusal is flashed on
the page the action came from.
"""
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, url_for

from . import accounts, approvals, customers, journal
from .approval_decisions import decide
from .auth import require_teller
from .clock import now
from .customer_forms import DecisionForm
from .errors import flash_refusal, show_refusals_on
from .forms import ButtonForm, OverdraftLimitForm, error_text
from .rules import is_account_number
from .storage import get_db

bp = Blueprint("approval", __name__)
bp.before_request(require_teller)


def _require_approver():
    if not g.teller.can_approve:
        abort(403)


def _waiting(held: approvals.Approval):
    """To the request's page: "Waiting for a supervisor", with its reference."""
    return redirect(url_for("approval.request_page", approval_id=held.id), 303)


@bp.post("/teller/accounts/<number>/overdraft-limit")
async def request_limit(number):
    form = OverdraftLimitForm()
    if not is_account_number(number):
        abort(404)
    if not form.validate_on_submit():
        flash("Limit not asked: " + error_text(form))
        return redirect(url_for("teller.account", number=number), 303)
    limit = None if form.use_default.data else form.limit_cents
    show_refusals_on(flash_refusal("Limit not asked", "teller.account", number=number))

    async def check(conn):
        await accounts.check_limit_in(conn, number, limit)

    held = await approvals.hold(get_db(), "overdraft_limit", g.teller, now(), None, check, account_number=number,
                                limit_cents=limit, detail=approvals.DEFAULT_LIMIT if limit is None else "")
    return _waiting(held)


@bp.post("/teller/drawer/sign-off-request")
async def request_signoff():
    """Ask again for the sign-off of the teller's close (its request expired or was declined)."""
    if not ButtonForm().validate_on_submit():
        return redirect(url_for("drawer.index"), 303)
    show_refusals_on(flash_refusal("Not asked", "drawer.index"))
    held = await approvals.ask_signoff_again(get_db(), g.teller, now())
    return _waiting(held)


@bp.get("/teller/requests/")
async def my_requests():
    db, at = get_db(), now()
    await approvals.expire_due(db, at)
    return render_template("approvals/mine.html", requests=await approvals.recent(db, requested_by=g.teller.id),
                           now=at)


@bp.get("/teller/requests/<id:approval_id>")
async def request_page(approval_id):
    """The teller's request: waiting (with Check again), approved (its receipt), declined or expired."""
    db, at = get_db(), now()
    await approvals.expire_due(db, at)
    held = await approvals.get(db, approval_id)
    if held is None or (held.requested_by != g.teller.id and not g.teller.can_approve):
        abort(404)
    receipt_id = await approvals.receipt_of(db, held)
    if held.status == "approved" and receipt_id is not None:
        flash(f"Approved by {held.decided_by}: request {held.reference}.")
        return redirect(url_for("teller.receipt", tx_id=receipt_id), 303)
    return render_template("approvals/request.html", held=held, now=at)


@bp.get("/approvals/")
async def index():
    _require_approver()
    db, at = get_db(), now()
    await approvals.expire_due(db, at)
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


@bp.post("/approvals/<id:approval_id>")
async def decide_request(approval_id):
    _require_approver()
    form = DecisionForm()
    if not form.validate_on_submit() or not (form.approve.data or form.decline.data):
        flash("Not decided: " + (error_text(form)
                                 or "choose Approve or Decline."))
        return redirect(url_for("approval.index"), 303)
    show_refusals_on(flash_refusal("Not decided", "approval.index"))
    done = await decide(get_db(), approval_id, g.teller, bool(form.approve.data), form.note.data, now=now(),
                        threshold_cents=current_app.config["CTR_THRESHOLD_CENTS"])
    held = done.approval
    if done.outcome == "expired":
        flash(f"Request {held.reference} had expired: nothing was posted.")
    else:
        flash(f"Request {held.reference} {done.outcome}: {held.what}.")
    return redirect(url_for("approval.index"), 303)
