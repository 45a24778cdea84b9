"""Blueprint: HTML pages and forms for tellers."""
from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from . import accounts, get_db
from .auth import require_teller
from .db import LedgerUnavailable
from .forms import LookupForm, TransactionForm

bp = Blueprint("teller", __name__)
bp.before_request(require_teller)


@bp.get("/")
def index():
    form = LookupForm(request.args)
    if request.args and form.validate():
        return redirect(url_for("teller.account", number=form.account_number.data))
    return render_template("teller/index.html", form=form), (422 if form.errors else 200)


async def _account_page(number: str, form: TransactionForm, status: int = 200):
    try:
        account, journal = await accounts.account_with_history(get_db(), number)
    except accounts.InvalidAccountNumber:
        abort(404)
    return render_template("teller/account.html", account=account, journal=journal, form=form), status


@bp.get("/teller/accounts/<number>")
async def account(number):
    return await _account_page(number, TransactionForm(account_number=number, formdata=None))


@bp.post("/teller/transactions")
async def transaction():
    form = TransactionForm()
    if not form.validate() or form.kind is None:
        if form.kind is None and not form.errors:
            form.amount.errors = ["Choose Deposit or Withdraw."]
        number = form.account_number.data
        if number and accounts.ACCOUNT_NUMBER.fullmatch(number):
            return await _account_page(number, form, 422)
        return render_template("teller/index.html", form=form), 422
    db, number = get_db(), form.account_number.data
    if form.confirm_open.data != "yes" and not (await accounts.get_account(db, number)).exists:
        return render_template("teller/confirm_open.html", form=form)
    try:
        post = accounts.deposit if form.kind == "deposit" else accounts.withdraw
        tx = await post(db, number, form.amount_cents, g.teller.actor)
    except accounts.InsufficientFunds:
        form.amount.errors = ["Insufficient funds: this withdrawal would go past the overdraft limit. "
                              "Nothing was withdrawn."]
        return await _account_page(number, form, 400)
    except LedgerUnavailable:
        form.amount.errors = ["The ledger is busy right now. Nothing was recorded; please try again."]
        return await _account_page(number, form, 503)
    flash(f"{'Deposit' if tx.kind == 'deposit' else 'Withdrawal'} recorded.")
    return redirect(url_for("teller.receipt", tx_id=tx.id), 303)


@bp.get("/teller/receipts/<int:tx_id>")
async def receipt(tx_id):
    tx = await accounts.get_transaction(get_db(), tx_id)
    if tx is None:
        abort(404)
    return render_template("teller/receipt.html", tx=tx)
