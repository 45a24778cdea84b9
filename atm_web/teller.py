"""Blueprint: HTML pages and forms for tellers.

Each view validates its form, makes one call into the ledger, and redirects to a receipt (post/redirect/get); a
refusal is shown by errors.py on the page the view names with show_refusals_on (its form again, with the message).
"""
import hashlib
from functools import partial

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from . import accounts, drawers, journal, reversals
from .auth import require_teller
from .clock import now
from .errors import show_refusals_on
from .forms import FORM_KEY, LookupForm, OverdraftLimitForm, ReversalForm, TransactionForm, TransferForm, new_form_key
from .idempotency import Once
from .money import InvalidAmount, to_cents
from .refusals import AccountNotOpen, DrawerNotOpen, InvalidAccountNumber, UnknownAccount
from .rules import BANK_KINDS, is_account_number
from .storage import get_db

bp = Blueprint("teller", __name__)
bp.before_request(require_teller)
ALREADY_DONE = "This form was already submitted: here is its receipt. Nothing new was recorded."


def _once(form, at: float, *fields) -> Once:
    """The form's one-time key, scoped to this teller, with a fingerprint of what it asks for."""
    fingerprint = hashlib.sha256(repr(fields).encode()).hexdigest()
    return Once(f"form:{g.teller.id}", form.form_key.data, fingerprint, at)


@bp.get("/")
def index():
    form = LookupForm(request.args)
    if request.args and form.validate():
        return redirect(url_for("teller.account", number=form.account_number.data))
    return render_template("teller/index.html", form=form), (422 if form.errors else 200)


async def _account_page(number: str, form: TransactionForm, status: int = 200):
    try:
        account, rows = await accounts.account_with_history(get_db(), number)
    except InvalidAccountNumber:
        abort(404)
    limit_form = OverdraftLimitForm(formdata=None) if g.teller.is_admin else None
    drawer = await drawers.current_session(get_db(), g.teller.id)
    return render_template("teller/account.html", account=account, journal=rows, form=form, drawer=drawer,
                           limit_form=limit_form), status


async def _cash_drawer() -> str:
    """The account of the teller's open drawer, which their cash goes through; DrawerNotOpen without one."""
    drawer = await drawers.current_session(get_db(), g.teller.id)
    if drawer is None:
        raise DrawerNotOpen("You have no open drawer: open it (My drawer) before a cash deposit or withdrawal. "
                            "Nothing was recorded.")
    if drawer.status != "open":
        raise DrawerNotOpen("Your drawer waits for an administrator's sign-off: no cash can be posted until then. "
                            "Nothing was recorded.")
    return drawer.account_number


async def _refused_on_account_page(number: str, form: TransactionForm, error, message: str, status: int):
    if isinstance(error, AccountNotOpen):  # ask first, on a page of its own (a GET: Back from the receipt lands there)
        return redirect(url_for("teller.confirm_open", number=number, kind=form.kind, amount=form.amount.data,
                                form_key=form.form_key.data), 303)
    form.amount.errors = [message]
    return await _account_page(number, form, status)


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
        if is_account_number(number):
            return await _account_page(number, form, 422)
        return render_template("teller/index.html", form=form), 422
    number, at = form.account_number.data, now()
    show_refusals_on(partial(_refused_on_account_page, number, form))
    post = accounts.deposit if form.kind == "deposit" else accounts.withdraw
    tx = await post(get_db(), number, form.amount_cents, g.teller.actor,
                    _once(form, at, form.kind, number, form.amount_cents), now=at,
                    open_new=form.confirm_open.data == "yes", counter=await _cash_drawer())
    flash(ALREADY_DONE if tx.replayed else f"{'Deposit' if tx.kind == 'deposit' else 'Withdrawal'} recorded.")
    return redirect(url_for("teller.receipt", tx_id=tx.id), 303)


@bp.get("/teller/accounts/<number>/open")
def confirm_open(number):
    """Asks before a deposit or withdrawal opens a new account; its button posts the same form, confirmed."""
    args = request.args
    kind, text, key = args.get("kind"), args.get("amount", ""), args.get("form_key", "")
    try:
        amount_cents = to_cents(text, maximum_cents=current_app.config["MAX_AMOUNT_CENTS"])
    except InvalidAmount:
        amount_cents = None
    if (not is_account_number(number) or kind not in ("deposit", "withdrawal") or amount_cents is None
            or not FORM_KEY.fullmatch(key)):
        return redirect(url_for("teller.account", number=number) if is_account_number(number)
                        else url_for("teller.index"), 303)
    form = TransactionForm(account_number=number, amount=text, form_key=key, formdata=None)
    return render_template("teller/confirm_open.html", form=form, kind=kind, amount_cents=amount_cents)


def _refused_on_transfer_page(form: TransferForm, error, message: str, status: int):
    (form.from_account if isinstance(error, UnknownAccount) else form.amount).errors = [message]
    return render_template("teller/transfer.html", form=form), status


@bp.route("/teller/transfer", methods=["GET", "POST"])
async def transfer():
    if request.method == "GET":
        form = TransferForm(from_account=request.args.get("from", ""), form_key=new_form_key(), formdata=None)
        return render_template("teller/transfer.html", form=form)
    form = TransferForm()
    if not form.validate():
        return render_template("teller/transfer.html", form=form), 422
    source, target, at = form.from_account.data, form.to_account.data, now()
    show_refusals_on(partial(_refused_on_transfer_page, form))
    debit, _ = await accounts.transfer(get_db(), source, target, form.amount_cents, g.teller.actor,
                                       _once(form, at, "transfer", source, target, form.amount_cents), now=at)
    flash(ALREADY_DONE if debit.replayed else "Transfer recorded.")
    return redirect(url_for("teller.receipt", tx_id=debit.id), 303)


@bp.get("/teller/receipts/<id:tx_id>")
async def receipt(tx_id):
    tx = await journal.get_transaction(get_db(), tx_id)
    if tx is None or tx.kind in BANK_KINDS:  # the bank's side of a transaction has no receipt of its own
        abort(404)
    related = await journal.related_transactions(get_db(), tx)
    reversible = g.teller.is_admin and reversals.reversible(tx, related)
    return render_template("teller/receipt.html", tx=tx, related=related,
                           reversal_form=ReversalForm(formdata=None) if reversible else None)
