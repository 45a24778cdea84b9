"""Blueprint: customers for tellers (/teller/customers/...): a customer's record, accounts and cards, changing the
record (audited), issuing a card, reporting one lost and asking for one to be unblocked (a supervisor decides, on
Approvals). An account's holders are recorded on the teller's account pages (teller_pages.py).

Each view validates its form and makes one call into customers/records.py; a refusal is shown on the form's page.
"""
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from atm_web.approvals import requests as approvals
from atm_web.core.clock import now
from atm_web.customers import cards
from atm_web.customers import records as customers
from atm_web.customers.card_numbers import grouped
from atm_web.ledger.journal import posting_stamp
from atm_web.storage import get_db
from atm_web.web.errors import flash_refusal, show_refusals_on
from atm_web.web.forms.cards import IssueCardForm, LostForm, UnblockForm
from atm_web.web.forms.common import error_text, new_form_key
from atm_web.web.forms.customers import CustomerForm
from atm_web.web.guards import require_teller

bp = Blueprint("customer", __name__, url_prefix="/teller/customers")
bp.before_request(require_teller)


@bp.get("/<id:customer_id>")
async def show(customer_id):
    db = get_db()
    customer = await customers.view_customer(db, customer_id, g.teller.actor, now())
    if customer is None:
        abort(404)
    held = await customers.accounts_of(db, [customer.id])
    return render_template("customers/show.html", customer=customer, accounts=held[customer.id],
                           cards=await cards.cards_of(db, customer.id), today=posting_stamp(db, now()).today,
                           lost_form=LostForm(formdata=None), unblock_form=UnblockForm(formdata=None))


async def _numbers_held(db, customer_id) -> list[str]:
    held = await customers.accounts_of(db, [customer_id])
    return [number for number, _ in held[customer_id]]


@bp.route("/<id:customer_id>/cards/new", methods=["GET", "POST"])
async def issue_card(customer_id):
    """Issue a card: the form (the customer's accounts), then, once, the card's full number and PIN-setting code."""
    db = get_db()
    customer = await customers.view_customer(db, customer_id, g.teller.actor, now())
    if customer is None:
        abort(404)
    numbers = await _numbers_held(db, customer_id)
    if request.method == "GET":
        form = IssueCardForm(formdata=None, form_key=new_form_key(),
                             default=numbers[0] if len(numbers) == 1 else None).with_accounts(numbers)
        form.accounts.data = numbers[:1] if len(numbers) == 1 else []
        return render_template("customers/issue_card.html", customer=customer, form=form)
    form = IssueCardForm().with_accounts(numbers)
    if not form.validate():
        return render_template("customers/issue_card.html", customer=customer, form=form), 422

    def refused(error, message, status):
        form.accounts.errors = [message]
        return render_template("customers/issue_card.html", customer=customer, form=form), status
    show_refusals_on(refused)
    issued = await cards.issue_card(db, customer_id, form.accounts.data, form.default.data, g.teller, now(),
                                    form.form_key.data)
    return render_template("customers/card_issued.html", customer=customer, card=issued.card,
                           number=grouped(issued.number), code=issued.code), 201


async def _card_of(db, customer_id, card_id):
    card = await cards.get_card(db, card_id)
    if card is None or card.customer_id != customer_id:
        abort(404)
    return card


@bp.post("/<id:customer_id>/cards/<id:card_id>/lost")
async def report_lost(customer_id, card_id):
    db = get_db()
    await _card_of(db, customer_id, card_id)
    form = LostForm()
    if not form.validate_on_submit():
        flash("Not reported: " + error_text(form))
        return redirect(url_for("customer.show", customer_id=customer_id), 303)
    show_refusals_on(flash_refusal("Not reported", "customer.show", customer_id=customer_id))
    card = await cards.report_lost(db, card_id, g.teller, now())
    flash(f"Card {card.masked} reported lost: it is blocked for good. Issue a new card if the customer needs one.")
    return redirect(url_for("customer.show", customer_id=customer_id), 303)


@bp.post("/<id:customer_id>/cards/<id:card_id>/unblock")
async def ask_unblock(customer_id, card_id):
    """Ask a supervisor to unblock a card (kept after three wrong PINs): a held request, decided on Approvals."""
    db = get_db()
    card = await _card_of(db, customer_id, card_id)
    form = UnblockForm()
    if not form.validate_on_submit():
        flash("Unblock not asked: " + error_text(form))
        return redirect(url_for("customer.show", customer_id=customer_id), 303)
    show_refusals_on(flash_refusal("Unblock not asked", "customer.show", customer_id=customer_id))
    held = await approvals.hold(db, "card_unblock", g.teller, now(), None,
                                lambda conn: cards.unblock_request_in(conn, card_id),
                                detail=f"{card.masked}; reason: {form.reason.data}")
    return redirect(url_for("requests.page", approval_id=held.id), 303)


@bp.route("/<id:customer_id>/edit", methods=["GET", "POST"])
async def edit(customer_id):
    db = get_db()
    customer = await (customers.view_customer(db, customer_id, g.teller.actor, now()) if request.method == "GET"
                      else customers.get_customer(db, customer_id))
    if customer is None:
        abort(404)
    if request.method == "GET":
        return render_template("customers/edit.html", customer=customer, form=CustomerForm(obj=customer,
                                                                                            formdata=None))
    form = CustomerForm()
    if not form.validate():
        return render_template("customers/edit.html", customer=customer, form=form), 422

    def refused(error, message, status):
        form.document_number.errors = [message]
        return render_template("customers/edit.html", customer=customer, form=form), status
    show_refusals_on(refused)
    await customers.update_customer(db, customer_id, form.details, g.teller.actor, now())
    flash("Customer record saved.")
    return redirect(url_for("customer.show", customer_id=customer_id), 303)
