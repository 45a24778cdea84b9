"""Blueprint: the teller's counter (/ and /teller/accounts, /teller/transactions, /teller/transfer,
/teller/receipts): find an account or a customer; an account's page, its cash (with the holder of an account it
opens and the large-cash identity check), its holders and its overdraft limit; transfers; receipts and reversals.

Each view validates its form, makes one call into a domain package (cash/cash_desk.py for the counter's writes),
and redirects to a receipt or a request's page (post/redirect/get); a refusal is shown by errors.py on the page the
view names with show_refusals_on (its form again, with the message).

Over 300 lines: one URL space, the account and what is done from its page, is one blueprint.
"""
import hashlib
from functools import partial

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from atm_web.approvals import requests as approvals
from atm_web.approvals.requests import Approval
from atm_web.cash import drawers
from atm_web.cash.cash_desk import NEW_HOLDER, NewHolder, ask_reversal, post_transfer, take_cash
from atm_web.core.clock import now
from atm_web.core.money import InvalidAmount, to_cents
from atm_web.core.rules import BANK_KINDS, REASON_MAX, is_account_number
from atm_web.customers import records as customers
from atm_web.customers.holders import NEW_CUSTOMER, link_holder
from atm_web.customers.large_cash import IdCheck
from atm_web.customers.refusals import NeedsHolder, NeedsIdentityCheck
from atm_web.ledger import accounts, holds, journal, reversals
from atm_web.ledger.idempotency import Once
from atm_web.ledger.refusals import AccountNotOpen, InvalidAccountNumber, UnknownAccount
from atm_web.storage import get_db
from atm_web.web.errors import flash_refusal, show_refusals_on
from atm_web.web.forms.common import FORM_KEY, error_text, new_form_key
from atm_web.web.forms.teller import (
    HolderForm,
    LookupForm,
    OverdraftLimitForm,
    ReleaseHoldForm,
    ReversalForm,
    SearchForm,
    TransactionForm,
    TransferForm,
)
from atm_web.web.guards import require_teller

bp = Blueprint("teller", __name__)
bp.before_request(require_teller)
ALREADY_DONE = "This form was already submitted: here is its receipt. Nothing new was recorded."


def _once(form, at: float, *fields) -> Once:
    """The form's one-time key, scoped to this teller, with a fingerprint of what it asks for."""
    fingerprint = hashlib.sha256(repr(fields).encode()).hexdigest()
    return Once(f"form:{g.teller.id}", form.form_key.data, fingerprint, at)


@bp.route("/", methods=["GET", "POST"])
async def index():
    """Find an account by its number, or its holders by part of a name or a document number. A name is searched
    by POST: it is never in a URL (nor in a log of one)."""
    if request.method == "GET":
        form = LookupForm(request.args)
        if request.args and form.validate():
            return redirect(url_for("teller.account", number=form.account_number.data))
        return render_template("teller/index.html", form=SearchForm(formdata=None), lookup=form), (
            422 if form.errors else 200)
    form = SearchForm()
    if not form.validate():
        return render_template("teller/index.html", form=form), 422
    text, db = form.query.data, get_db()
    number = text if is_account_number(text) else None
    found = await customers.search(db, text, g.teller.actor, now())
    if number and not found:
        return redirect(url_for("teller.account", number=number), 303)
    held = await customers.accounts_of(db, (c.id for c in found))
    return render_template("teller/index.html", form=form, found=found, held=held, number=number, searched=True)


async def _account_page(number: str, form: TransactionForm, status: int = 200, needs_check=None):
    db = get_db()
    at = now()
    try:
        account, rows = await accounts.account_with_history(db, number, now=at)
    except InvalidAccountNumber:
        abort(404)
    drawer = await drawers.current_session(db, g.teller.id)
    pending = await holds.holds_of(db, number, "pending", now=at) if account.held_cents else []
    return render_template("teller/account.html", account=account, journal=rows, form=form, drawer=drawer,
                           limit_form=OverdraftLimitForm(formdata=None), holders=await customers.holders_of(db, number),
                           needs_check=needs_check, holds=pending, release_form=ReleaseHoldForm(formdata=None)), status


def _to_confirm_step(number: str, kind: str, form, **extra):
    """Ask first, on a page of its own (a GET: Back from the receipt lands there), for the holder of the account
    the form would open."""
    return redirect(url_for("teller.confirm_open", number=number, kind=kind, amount=form.amount.data,
                            form_key=form.form_key.data, **extra), 303)


async def _refused_on_account_page(number: str, form: TransactionForm, holder_form, error, message: str,
                                   status: int):
    if isinstance(error, AccountNotOpen):
        return _to_confirm_step(number, form.kind, form)
    if holder_form is not None:  # the confirm step of a new account: the refusal is shown there
        return await _confirm_page(number, form.kind, form, holder_form, status, error=message)
    if isinstance(error, NeedsHolder):
        flash(message)
        return redirect(url_for("teller.holders", number=number), 303)
    if isinstance(error, NeedsIdentityCheck):
        return await _account_page(number, form, status, needs_check=error.customers)
    form.amount.errors = [message]
    return await _account_page(number, form, status)


async def _holder_step(number: str, confirmed: bool):
    """The confirm step's holder of a new account: (its form, the holder to open the account with, or None when
    that form is not valid); (None, None) for a form that did not come from the confirm step. An account open by
    now needs no valid holder: its write replays this same form's receipt (Back, then the button again), or is
    refused (AccountOpenedMeanwhile: another teller opened it)."""
    if not confirmed:
        return None, None
    holder_form = HolderForm(meta={"csrf": False})
    if (await accounts.get_account(get_db(), number)).exists:
        return holder_form, NewHolder()
    if not holder_form.validate():
        return holder_form, None
    return holder_form, NewHolder(holder_form.customer_id,
                                  holder_form.details if holder_form.customer_id is None else None)


def _id_check(form, holder: NewHolder | None = None) -> IdCheck | None:
    """The identity check the teller recorded on the form, if any (on the confirm step of a new account: of the
    holder being recorded)."""
    if holder is not None:
        present = str(NEW_HOLDER if holder.customer_id is None else holder.customer_id)
    else:
        present = form.present_customer.data or ""
    if form.id_checked.data and present.isascii() and present.isdigit():
        return IdCheck(int(present), g.teller.actor)
    return None


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
        return render_template("teller/index.html", form=SearchForm(formdata=None), lookup=form), 422
    number, at = form.account_number.data, now()
    # the confirm step of a new account: it is opened with the holder recorded there, or not at all (if it is open
    # meanwhile, this same form went through once and Back brought it here again: its key replays the receipt;
    # else another teller opened it, and the write refuses)
    holder_form, holder = await _holder_step(number, form.confirm_open.data == "yes")
    show_refusals_on(partial(_refused_on_account_page, number, form, holder_form))
    if holder_form is not None and holder is None:
        return await _confirm_page(number, form.kind, form, holder_form, 422)
    done = await take_cash(get_db(), g.teller, number, form.kind, form.amount_cents, now=at,
                           once=_once(form, at, form.kind, number, form.amount_cents),
                           id_check=_id_check(form, holder), holder=holder)
    if isinstance(done, Approval):  # above the approval limit: held for a supervisor, nothing posted
        return redirect(url_for("requests.page", approval_id=done.id), 303)
    flash(ALREADY_DONE if done.replayed else f"{'Deposit' if done.kind == 'deposit' else 'Withdrawal'} recorded.")
    return redirect(url_for("teller.receipt", tx_id=done.id), 303)


async def _confirm_page(number, kind, form, holder_form, status=200, error=None, search_form=None, found=()):
    source = form.from_account.data if kind == "transfer" else None
    search_action = url_for("teller.confirm_open", number=number, kind=kind, amount=form.amount.data,
                            form_key=form.form_key.data, **({"from": source} if source else {}))
    return render_template("teller/confirm_open.html", form=form, kind=kind, number=number, source=source,
                           amount_cents=form.amount_cents, holder_form=holder_form,
                           search_form=search_form or SearchForm(formdata=None), search_action=search_action,
                           found=found, error=error), status


@bp.route("/teller/accounts/<number>/open", methods=["GET", "POST"])
async def confirm_open(number):
    """Asks before a deposit, a withdrawal or a transfer opens a new account, and for its holder (a customer found
    by a search posted here, or a new one); its button posts the same form, confirmed, with the holder."""
    args = request.args
    kind, text, key, source = args.get("kind"), args.get("amount", ""), args.get("form_key", ""), args.get("from")
    try:
        amount_cents = to_cents(text, maximum_cents=current_app.config["MAX_AMOUNT_CENTS"])
    except InvalidAmount:
        amount_cents = None
    if (not is_account_number(number) or kind not in ("deposit", "withdrawal", "transfer") or amount_cents is None
            or not FORM_KEY.fullmatch(key) or (kind == "transfer") != is_account_number(source)
            or source == number):
        return redirect(url_for("teller.account", number=number) if is_account_number(number)
                        else url_for("teller.index"), 303)
    if kind == "transfer":
        form = TransferForm(from_account=source, to_account=number, amount=text, form_key=key, formdata=None)
    else:
        form = TransactionForm(account_number=number, amount=text, form_key=key, formdata=None)
        form.deposit.data, form.withdraw.data = kind == "deposit", kind == "withdrawal"
    form.amount_cents = amount_cents
    holder_form = HolderForm(formdata=None, meta={"csrf": False})
    if request.method == "GET":
        return await _confirm_page(number, kind, form, holder_form)
    search_form = SearchForm()
    if not search_form.validate():
        return await _confirm_page(number, kind, form, holder_form, 422, search_form=search_form)
    found = await customers.search(get_db(), search_form.query.data, g.teller.actor, now())
    return await _confirm_page(number, kind, form, holder_form, search_form=search_form, found=found)


async def _refused_on_transfer_page(form: TransferForm, holder_form, error, message: str, status: int):
    if isinstance(error, AccountNotOpen):
        return _to_confirm_step(form.to_account.data, "transfer", form, **{"from": form.from_account.data})
    if holder_form is not None:
        return await _confirm_page(form.to_account.data, "transfer", form, holder_form, status, error=message)
    (form.from_account if isinstance(error, UnknownAccount) else form.amount).errors = [message]
    return render_template("teller/transfer.html", form=form), status


@bp.route("/teller/transfer", methods=["GET", "POST"])
async def transfer():
    """A transfer; to a new account, only with its holder (the confirm step, as for a deposit)."""
    if request.method == "GET":
        form = TransferForm(from_account=request.args.get("from", ""), form_key=new_form_key(), formdata=None)
        return render_template("teller/transfer.html", form=form)
    form = TransferForm()
    if not form.validate():
        return render_template("teller/transfer.html", form=form), 422
    source, target, at = form.from_account.data, form.to_account.data, now()
    holder_form, holder = await _holder_step(target, form.confirm_open.data == "yes")
    show_refusals_on(partial(_refused_on_transfer_page, form, holder_form))
    if holder_form is not None and holder is None:
        return await _confirm_page(target, "transfer", form, holder_form, 422)
    debit, _ = await post_transfer(get_db(), source, target, form.amount_cents, g.teller.actor,
                                   _once(form, at, "transfer", source, target, form.amount_cents), now=at,
                                   holder=holder)
    flash(ALREADY_DONE if debit.replayed else "Transfer recorded.")
    return redirect(url_for("teller.receipt", tx_id=debit.id), 303)


async def _receipt_page(tx_id: int, reversal_form=None, status: int = 200, needs_check=None):
    db = get_db()
    tx = await journal.get_transaction(db, tx_id)
    if tx is None or tx.kind in BANK_KINDS:  # the bank's side of a transaction has no receipt of its own
        abort(404)
    related = await journal.related_transactions(db, tx)
    if not reversals.reversible(tx, related):
        reversal_form = None
    elif reversal_form is None:
        reversal_form = ReversalForm(formdata=None)
    return render_template("teller/receipt.html", tx=tx, related=related,
                           holders=await customers.holders_of(db, tx.account_number),
                           approved=await approvals.approval_of_entry(db, tx.entry_id), reversal_form=reversal_form,
                           needs_check=needs_check), status


@bp.get("/teller/receipts/<id:tx_id>")
async def receipt(tx_id):
    return await _receipt_page(tx_id)


async def _refused_on_receipt(tx_id: int, form: ReversalForm, error, message: str, status: int):
    if isinstance(error, NeedsIdentityCheck):  # the receipt again, with the identity check to record
        return await _receipt_page(tx_id, form, status, needs_check=error.customers)
    if isinstance(error, NeedsHolder):
        flash(message)
        return redirect(url_for("teller.holders", number=error.number), 303)
    return flash_refusal("Not asked", "teller.receipt", tx_id=tx_id)(error, message, status)


@bp.post("/teller/receipts/<id:tx_id>/reversal")
async def request_reversal(tx_id):
    """Ask for a reversal, held for a supervisor; cash it pays back goes through this teller's drawer."""
    form = ReversalForm()
    if not form.validate_on_submit():
        flash(f"Not asked: give a reason (up to {REASON_MAX} characters).")
        return redirect(url_for("teller.receipt", tx_id=tx_id), 303)
    show_refusals_on(partial(_refused_on_receipt, tx_id, form))
    held = await ask_reversal(get_db(), g.teller, tx_id, form.reason.data.strip(), form.form_key.data or None,
                              _id_check(form), now=now())
    return redirect(url_for("requests.page", approval_id=held.id), 303)


@bp.post("/teller/holds/<id:hold_id>/release")
async def release_hold(hold_id):
    """A supervisor releases a customer's hold with a reason (audited); nothing is posted."""
    if not g.teller.can_approve:
        abort(403)
    form = ReleaseHoldForm()
    db = get_db()
    hold = await holds.get_hold(db, hold_id)
    if not form.validate_on_submit():
        flash("Not released: " + error_text(form))
        return redirect(url_for("teller.account", number=hold.account_number), 303)
    show_refusals_on(flash_refusal("Not released", "teller.account", number=hold.account_number))
    await holds.void(db, hold_id, g.teller.actor, note=form.note.data, now=now())
    flash(f"Hold {hold_id} released.")
    return redirect(url_for("teller.account", number=hold.account_number), 303)


@bp.post("/teller/accounts/<number>/overdraft-limit")
async def request_limit(number):
    """Ask for an account's own overdraft limit (or the default again): held for a supervisor."""
    form = OverdraftLimitForm()
    if not is_account_number(number):
        abort(404)
    if not form.validate_on_submit():
        flash("Limit not asked: " + error_text(form))
        return redirect(url_for("teller.account", number=number), 303)
    show_refusals_on(flash_refusal("Limit not asked", "teller.account", number=number))
    held = await approvals.ask_limit(get_db(), g.teller, number, None if form.use_default.data else form.limit_cents,
                                     now())
    return redirect(url_for("requests.page", approval_id=held.id), 303)


def _holders_page(number, holder_form, search_form=None, found=(), status=200, error=None, needs_check=False):
    return render_template("teller/holders.html", number=number, holder_form=holder_form,
                           search_form=search_form or SearchForm(formdata=None), found=found, error=error,
                           needs_check=needs_check,
                           search_action=url_for("teller.holders", number=number)), status


async def _refused_holder(number, holder_form, error, message, status):
    """The form again with the refusal; the customer chosen stays chosen, and the identity check is asked for
    when the large-cash rule needs it."""
    chosen = holder_form.customer_id
    found = [await customers.get_customer(get_db(), chosen)] if chosen is not None else []
    return _holders_page(number, holder_form, found=[c for c in found if c], status=status, error=message,
                         needs_check=isinstance(error, NeedsIdentityCheck))


@bp.route("/teller/accounts/<number>/holders", methods=["GET", "POST"])
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
                                 g.teller.actor, now(), id_check=id_check)
    flash(f"Holder added to account {number}: customer no. {customer.id}.")  # no name: a flash is in the cookie
    return redirect(url_for("teller.account", number=number), 303)
