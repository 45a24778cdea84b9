"""Blueprint: customers for tellers: a customer's record and accounts, changing the record (audited), and recording
the holder of an account (a customer found by a search, or a new one).

Each view validates its form and makes one call into customers.py; a refusal is shown on the form's page.
"""
from functools import partial

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from . import customers
from .auth import require_teller
from .clock import now
from .customer_forms import CustomerForm, HolderForm, SearchForm
from .errors import show_refusals_on
from .holders import NEW_CUSTOMER, link_holder
from .large_cash import IdCheck
from .refusals import NeedsIdentityCheck
from .rules import is_account_number
from .storage import get_db

bp = Blueprint("customer", __name__, url_prefix="/teller")
bp.before_request(require_teller)


@bp.get("/customers/<id:customer_id>")
async def show(customer_id):
    db = get_db()
    customer = await customers.view_customer(db, customer_id, g.teller.actor, now())
    if customer is None:
        abort(404)
    held = await customers.accounts_of(db, [customer.id])
    return render_template("customers/show.html", customer=customer, accounts=held[customer.id])


@bp.route("/customers/<id:customer_id>/edit", methods=["GET", "POST"])
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


def _holders_page(number, holder_form, search_form=None, found=(), status=200, error=None, needs_check=False):
    return render_template("customers/holders.html", number=number, holder_form=holder_form,
                           search_form=search_form or SearchForm(formdata=None), found=found, error=error,
                           needs_check=needs_check,
                           search_action=url_for("customer.holders", number=number)), status


async def _refused_holder(number, holder_form, error, message, status):
    """The form again with the refusal; the customer chosen stays chosen, and the identity check is asked for
    when the large-cash rule needs it."""
    chosen = holder_form.customer_id
    found = [await customers.get_customer(get_db(), chosen)] if chosen is not None else []
    return _holders_page(number, holder_form, found=[c for c in found if c], status=status, error=message,
                         needs_check=isinstance(error, NeedsIdentityCheck))


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
                             await customers.search(get_db(), search_form.query.data, g.teller.actor, now()))
    holder_form = HolderForm()
    if not holder_form.validate():
        return _holders_page(number, holder_form, status=422)
    show_refusals_on(partial(_refused_holder, number, holder_form))
    chosen = holder_form.customer_id
    id_check = (IdCheck(NEW_CUSTOMER if chosen is None else chosen, g.teller.actor)
                if holder_form.id_checked.data else None)
    customer = await link_holder(get_db(), number, chosen, holder_form.details if chosen is None else None,
                                 g.teller.actor, now(), threshold_cents=current_app.config["CTR_THRESHOLD_CENTS"],
                                 id_check=id_check)
    flash(f"Holder added to account {number}: customer no. {customer.id}.")  # no name: a flash is in the cookie
    return redirect(url_for("teller.account", number=number), 303)
