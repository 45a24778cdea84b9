"""Blueprint: customers for tellers (/teller/customers/...): a customer's record and accounts, and changing the
record (audited). An account's holders are recorded on the teller's account pages (teller_pages.py).

Each view validates its form and makes one call into customers/records.py; a refusal is shown on the form's page.
"""
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from atm_web.core.clock import now
from atm_web.customers import records as customers
from atm_web.storage import get_db
from atm_web.web.errors import show_refusals_on
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
    return render_template("customers/show.html", customer=customer, accounts=held[customer.id])


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
