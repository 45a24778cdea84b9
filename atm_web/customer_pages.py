"""Blueprint: customers for tellers: a customer's record and accounts, changing the record (audited), and recording
the holder of an account (a customer found by a search, or a new one).

Each view validates its form and makes one call into customers.py; a refusal is shown on the form's page.
"""
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from . import customers
from .auth import require_teller
from .clock import now
from .customer_forms import CustomerForm, HolderForm, SearchForm
from .errors import show_refusals_on
from .rules import is_account_number
from .storage import get_db

bp = Blueprint("customer", __name__, url_prefix="/teller")
bp.before_request(require_teller)


@bp.get("/customers/<id:customer_id>")
async def show(customer_id):
    db = get_db()
    customer = await customers.get_customer(db, customer_id)
    if customer is None:
        abort(404)
    held = await customers.accounts_of(db, [customer.id])
    return render_template("customers/show.html", customer=customer, accounts=held[customer.id])


@bp.route("/customers/<id:customer_id>/edit", methods=["GET", "POST"])
async def edit(customer_id):
    db = get_db()
    customer = await customers.get_customer(db, customer_id)
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


def _holders_page(number, holder_form, search_form=None, found=(), status=200, error=None):
    return render_template("customers/holders.html", number=number, holder_form=holder_form,
                           search_form=search_form or SearchForm(formdata=None), found=found, error=error,
                           search_action=url_for("customer.holders", number=number)), status


@bp.route("/accounts/<number>/holders", methods=["GET", "POST"])
async def holders(number):
    """Record a holder of an open account; a POST with `search` looks for customers, one with `holder` adds."""
    if not is_account_number(number):
        abort(404)
    holder_form = HolderForm(formdata=None)
    if request.method == "GET":
        return _holders_page(number, holder_form)
    if "search" in request.form:
        search_form = SearchForm()
        if not search_form.validate():
            return _holders_page(number, holder_form, search_form, status=422)
        return _holders_page(number, holder_form, search_form,
                             await customers.search(get_db(), search_form.query.data))
    holder_form = HolderForm()
    if not holder_form.validate():
        return _holders_page(number, holder_form, status=422)
    show_refusals_on(lambda error, message, status: _holders_page(number, holder_form, status=status,
                                                                  error=message))
    customer = await customers.link_holder(get_db(), number, holder_form.customer_id,
                                           holder_form.details if holder_form.customer_id is None else None,
                                           g.teller.actor, now())
    flash(f"{customer.full_name} is now a holder of account {number}.")
    return redirect(url_for("teller.account", number=number), 303)
