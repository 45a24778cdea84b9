"""Blueprint: HTML pages and forms for tellers."""
import hashlib
import uuid

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from . import accounts
from .auth import now, require_teller
from .forms import LookupForm, OverdraftLimitForm, ReversalForm, TransactionForm, TransferForm
from .storage import LedgerUnavailable, get_db

bp = Blueprint("teller", __name__)
bp.before_request(require_teller)
ALREADY_DONE = "This form was already submitted: here is its receipt. Nothing new was recorded."


def new_form_key() -> str:
    return uuid.uuid4().hex


def _once(form, *fields) -> accounts.Once:
    """The form's one-time key, scoped to this teller, with a fingerprint of what it asks for."""
    fingerprint = hashlib.sha256(repr(fields).encode()).hexdigest()
    return accounts.Once(f"form:{g.teller.id}", form.form_key.data, fingerprint, now())


def _already_used(error: accounts.IdempotencyKeyReused, form):
    if error.transaction_id is not None:
        flash("This form was already used for the transaction below. Nothing new was recorded.")
        return redirect(url_for("teller.receipt", tx_id=error.transaction_id), 303)
    form.amount.errors = ["This form was already used. Nothing new was recorded; start again from the account."]
    return None


def _unavailable(error: LedgerUnavailable) -> str:
    if error.outcome_unknown:  # resubmitting this same form is safe: its one-time key finds the first outcome
        return ("The ledger did not confirm this; it may have been recorded. Submit the same form again to see "
                "(it is never recorded twice).")
    return "The ledger is busy right now. Nothing was recorded; please try again."


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
    limit_form = OverdraftLimitForm(formdata=None) if g.teller.is_admin else None
    return render_template("teller/account.html", account=account, journal=journal, form=form,
                           limit_form=limit_form), status


@bp.get("/teller/accounts/<number>")
async def account(number):
    form = TransactionForm(account_number=number, form_key=new_form_key(), formdata=None)
    return await _account_page(number, form)


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
    post = accounts.deposit if form.kind == "deposit" else accounts.withdraw
    try:
        tx = await post(db, number, form.amount_cents, g.teller.actor,
                        _once(form, form.kind, number, form.amount_cents))
    except accounts.InsufficientFunds:
        form.amount.errors = ["Insufficient funds: this withdrawal would go past the overdraft limit. "
                              "Nothing was withdrawn."]
        return await _account_page(number, form, 400)
    except accounts.IdempotencyKeyReused as error:
        return _already_used(error, form) or await _account_page(number, form, 422)
    except LedgerUnavailable as error:
        form.amount.errors = [_unavailable(error)]
        return await _account_page(number, form, 503)
    except accounts.LedgerError as error:  # e.g. a balance past the largest the ledger holds
        form.amount.errors = [f"{str(error).capitalize()}. Nothing was recorded."]
        return await _account_page(number, form, 422)
    flash(ALREADY_DONE if tx.replayed else f"{'Deposit' if tx.kind == 'deposit' else 'Withdrawal'} recorded.")
    return redirect(url_for("teller.receipt", tx_id=tx.id), 303)


@bp.route("/teller/transfer", methods=["GET", "POST"])
async def transfer():
    if request.method == "GET":
        form = TransferForm(from_account=request.args.get("from", ""), form_key=new_form_key(), formdata=None)
        return render_template("teller/transfer.html", form=form)
    form = TransferForm()
    if not form.validate():
        return render_template("teller/transfer.html", form=form), 422
    source, target = form.from_account.data, form.to_account.data
    try:
        debit, _ = await accounts.transfer(get_db(), source, target, form.amount_cents, g.teller.actor,
                                           _once(form, "transfer", source, target, form.amount_cents))
    except accounts.InsufficientFunds:
        form.amount.errors = [f"Insufficient funds in {source}: this transfer would go past its overdraft "
                              "limit. Nothing was moved."]
        return render_template("teller/transfer.html", form=form), 400
    except accounts.UnknownAccount as error:
        form.from_account.errors = [str(error).capitalize() + "."]
        return render_template("teller/transfer.html", form=form), 422
    except accounts.IdempotencyKeyReused as error:
        return _already_used(error, form) or (render_template("teller/transfer.html", form=form), 422)
    except LedgerUnavailable as error:
        form.amount.errors = [_unavailable(error)]
        return render_template("teller/transfer.html", form=form), 503
    except accounts.LedgerError as error:
        form.amount.errors = [f"{str(error).capitalize()}. Nothing was recorded."]
        return render_template("teller/transfer.html", form=form), 422
    flash(ALREADY_DONE if debit.replayed else "Transfer recorded.")
    return redirect(url_for("teller.receipt", tx_id=debit.id), 303)


@bp.get("/teller/receipts/<id:tx_id>")
async def receipt(tx_id):
    tx = await accounts.get_transaction(get_db(), tx_id)
    if tx is None:
        abort(404)
    related = await accounts.related_transactions(get_db(), tx)
    reversible = g.teller.is_admin and tx.kind in accounts.REVERSING_KIND and not any(
        r.kind.startswith("reversal") for r in related)
    return render_template("teller/receipt.html", tx=tx, related=related,
                           reversal_form=ReversalForm(formdata=None) if reversible else None)
