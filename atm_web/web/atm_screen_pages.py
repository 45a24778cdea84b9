"""Blueprint: the ATM screen (/atm/...), a customer's session at a browser kiosk paired with an ATM.

Only a paired browser's device cookie opens it (cash/atm_screens.py): without one, /atm says "This screen is not an
ATM" and nothing else; a staff session means nothing here, and the device cookie nothing anywhere else. The session
lives on the screen's row; every form carries its token, and each step taken rotates it (one conditional write),
so a form sent twice, an old page, or a second tab finds the session moved on and shows where it is now: nothing is
done twice, no withdrawal is held twice. Every page is no-store (errors.security_headers); a page asked for after
its session ended shows Welcome.

Steps: Welcome -> Insert your card -> Enter your PIN (or, for a new card, its PIN-setting code and a new PIN twice)
-> the menu (Balance, Fast cash, Withdraw) -> for cash: Take your card -> Take your cash ("I have taken my cash"
reports a full dispense; later than ATM_TAKE_CASH_SECONDS it is retracted) -> the receipt or No receipt ->
Welcome. Cancel ends the session from any step; ATM_IDLE_SECONDS without a touch ends it too.
"""
import secrets

from flask import Blueprint, abort, flash, g, make_response, redirect, render_template, request, url_for

from atm_web.cash import atm_deposits, atm_screens, atm_withdrawals
from atm_web.cash.atm_journal import record_in
from atm_web.cash.atms import note_denominations
from atm_web.cash.note_plans import payable
from atm_web.cash.refusals import AtmRefused
from atm_web.core.clock import journal_time, local, now
from atm_web.core.money import InvalidAmount, format_cents, to_cents
from atm_web.core.settings import settings_of
from atm_web.customers import cards
from atm_web.ledger import accounts, holds
from atm_web.ledger.accounts import account_with_history
from atm_web.ledger.refusals import InsufficientFunds
from atm_web.storage import get_db

bp = Blueprint("screen", __name__, url_prefix="/atm")
YEARS_5 = 5 * 365 * 24 * 3600
NOT_ACCEPTED = "Card or PIN not accepted."
KEPT = "Your card has been kept. Please contact your branch."


@bp.context_processor
def kiosk():
    return {"idle_seconds": settings_of(get_db()).atm_idle_seconds}


def device_cookie() -> str:
    return "__Host-atm_device" if request.is_secure else "atm_device"


# Pairing

@bp.get("/pair/<code>")
async def pair_page(code):
    atm = await atm_screens.pairing_atm(get_db(), code, now())
    if atm is None:
        return render_template("atm/message.html", message="This pairing link is not valid (used, expired or "
                               "mistyped): make a new one on the ATM's page."), 404
    return render_template("atm/pair.html", atm=atm, code=code)


@bp.post("/pair/<code>")
async def pair(code):
    try:
        screen, cookie = await atm_screens.pair(get_db(), code, now())
    except AtmRefused as refused:
        return render_template("atm/message.html", message=str(refused)), 404
    answer = redirect(url_for("screen.show"), 303)
    answer.set_cookie(device_cookie(), cookie, max_age=YEARS_5, httponly=True, secure=request.is_secure,
                      samesite="Strict", path="/")
    flash(f"This screen is {screen.atm.label}.")
    return answer


# The screen

async def _screen():
    """The paired screen of this browser (else the 'not an ATM' page), its idle session ended first."""
    db = get_db()
    screen = await atm_screens.screen_of(db, request.cookies.get(device_cookie()))
    if screen is None:
        abort(make_response(render_template("atm/not_an_atm.html"), 403))
    settings = settings_of(db)
    late = screen.seen_at is not None and screen.seen_at + settings.atm_take_cash_seconds < now()
    if screen.session_token and screen.step == "take_cash" and screen.atm.dispenser == "device":
        screen = await _device_result(screen, late)
    elif screen.session_token and screen.step in ("take_card", "take_cash") and late:
        # the cash not taken in time is taken back; a card not taken, kept, and its cash never presented
        await _cash_result(screen, "retracted" if screen.step == "take_cash" else "failed")
        screen = await _end(screen, screen.session_token, "cash not taken: retracted" if screen.step == "take_cash"
                            else "card not taken: kept; no cash presented") or screen
    elif screen.session_token and screen.step not in ("take_card", "take_cash") and \
            screen.seen_at + settings.atm_idle_seconds < now():
        screen = await _end(screen, screen.session_token, "session timed out") or screen
    g.screen = screen
    return screen


async def _device_result(screen, late: bool):
    """A device's dispenser: the screen waits for its agent's report (the receipt then), and ends the session once
    the cash has waited twice ATM_TAKE_CASH_SECONDS with no report (the withdrawal stays until its report, or its
    hold's expiry)."""
    w = await atm_withdrawals.get_withdrawal(get_db(), screen.atm_id, screen.trace)
    if w.status != "pending":
        moved = await atm_screens.move(get_db(), screen, screen.session_token, now(), step="receipt")
        if w.status in ("failed", "retracted", "expired"):
            flash("No cash was paid: nothing was taken from your account.")
        return moved or screen
    if late and screen.seen_at + 2 * settings_of(get_db()).atm_take_cash_seconds < now():
        return await _end(screen, screen.session_token, "no report from the dispenser") or screen
    return screen


async def _end(screen, token, why: str):
    ended = await atm_screens.move(get_db(), screen, token, now(), **atm_screens.ENDED)
    if ended is not None:
        await _journal(screen, why)
    return ended


async def _journal(screen, event: str, detail: str = "") -> None:
    """A step of the customer's session in the ATM's journal (a card by its last 4 digits at most)."""
    text = f"screen {screen.id}" + (f": {detail}" if detail else "")
    await get_db().write(lambda conn: record_in(conn, screen.atm_id, _at(), event, text, "atm-screen"))


def _at() -> str:
    return journal_time(now())


async def _claim(screen, **changes):
    """Take the step the form asks for: the session's token rotated, if the form's is still the session's (the
    screen as it is now), else None (a form sent twice, an old page: nothing to do)."""
    token = request.form.get("session", "")
    if not screen.session_token or not secrets.compare_digest(token, screen.session_token):
        return None
    return await atm_screens.move(get_db(), screen, token, now(), session_token=secrets.token_urlsafe(18), **changes)


def _to_screen():
    return redirect(url_for("screen.show"), 303)


@bp.get("/")
async def show():
    screen = await _screen()
    db = get_db()
    step = screen.step
    if step is None:
        return render_template("atm/welcome.html", screen=screen)
    if step in ("card", "pin", "first_pin"):
        return render_template(f"atm/{step}.html", screen=screen)
    card = await cards.get_card(db, screen.card_id)
    context = {"screen": screen, "card": card}
    if step in ("menu", "accounts", "change_pin"):
        return render_template(f"atm/{step}.html", **context)
    if step in ("balance", "statement", "transfer", "deposit"):
        account, rows = await account_with_history(db, screen.account_number, STATEMENT_ROWS, now=now())
        return render_template(f"atm/{step}.html", account=account, rows=rows, notes=note_denominations(db),
                               when=local(journal_time(now()), db.branch_timezone), zone=db.branch_timezone,
                               **context)
    if step == "withdraw":
        free = await _free(screen)
        settings = settings_of(db)
        fast = payable(free, settings.atm_fast_cash, settings.atm_max_notes)
        return render_template("atm/withdraw.html", fast=fast, **context)
    if step in ("take_card", "take_cash", "receipt"):
        w = await atm_withdrawals.get_withdrawal(db, screen.atm_id, screen.trace)
        available = await holds.available(db, w.account_number, now=now())
        return render_template(f"atm/{step}.html", w=w, available=available,
                               when=local(w.created_at, db.branch_timezone), **context)
    # a step under way (checking a PIN, holding cash): ended by the idle timeout if it never finishes (a crash)
    return render_template("atm/message.html", screen=screen, message="Please wait.")


async def _free(screen):
    db = get_db()
    return await db.read(lambda conn: atm_withdrawals.free_notes_in(conn, screen.atm_id))


@bp.post("/start")
async def start():
    screen = await _screen()
    if screen.session_token is None:
        await atm_screens.move(get_db(), screen, None, now(), session_token=secrets.token_urlsafe(18), step="card")
    return _to_screen()


@bp.post("/cancel")
async def cancel():
    screen = await _screen()
    token = request.form.get("session", "")
    if screen.session_token and secrets.compare_digest(token, screen.session_token):
        if screen.step == "take_card" or (screen.step == "take_cash" and screen.atm.dispenser == "screen"):
            # the cash never presented, or taken back (a device's agent reports what its dispenser did)
            await _cash_result(screen, "retracted" if screen.step == "take_cash" else "failed")
        await _end(screen, token, "session ended by the customer")
        flash("Please take your card." if screen.card_id else "Thank you.")
    return _to_screen()


@bp.post("/card")
async def card():
    screen = await _screen()
    db = get_db()
    if screen.step != "card":
        return _to_screen()
    if not await atm_screens.note_card_attempt(db, screen, now()):
        await _end(screen, screen.session_token, "card attempts: the limit of a minute reached")
        flash("This ATM cannot take a card now. Please try again in a minute.")
        return _to_screen()
    reference = cards.card_reference(db, request.form.get("card_number", "").replace(" ", ""))
    found = await cards.card_by_reference(db, reference, now()) if reference else None
    step = "first_pin" if found is not None and not found.pin_set else "pin"
    if await _claim(screen, step=step, card_digest=reference or "none") is not None:
        await _journal(screen, "card read", found.masked if found is not None else "not a card in use here")
    return _to_screen()


@bp.post("/pin")
async def pin():
    screen = await _screen()
    db = get_db()
    if screen.step != "pin" or (screen := await _claim(screen, step="checking")) is None:
        return _to_screen()
    check = await cards.check_pin(db, None, request.form.get("pin", ""), now(), "atm-screen",
                                  reference=screen.card_digest if screen.card_digest != "none" else "")
    return await _after_pin(screen, check)


@bp.post("/first-pin")
async def first_pin():
    """A new card's first PIN: its PIN-setting code, the new PIN twice."""
    return await _new_pin("first_pin", lambda db, screen, form: cards.set_first_pin(
        db, None, form.get("code", ""), form.get("new_pin", ""), now(), "atm-screen", reference=screen.card_digest))


async def _new_pin(step: str, check):
    """A form that sets a new PIN (typed twice): the two compared, the step claimed, then check(db, screen, form)
    (a PinCheck; CardRefused for a PIN against the rules: asked again)."""
    screen = await _screen()
    db = get_db()
    form = request.form
    if screen.step != step:
        return _to_screen()
    if form.get("new_pin", "") != form.get("again", ""):
        flash("The two new PINs differ: type the same new PIN twice.")
        return _to_screen()
    if (screen := await _claim(screen, step="checking")) is None:
        return _to_screen()
    try:
        answer = await check(db, screen, form)
    except cards.CardRefused as refused:
        await atm_screens.move(db, screen, screen.session_token, now(), step=step)
        flash(str(refused))
        return _to_screen()
    if answer.accepted and step == "change_pin":
        await atm_screens.move(db, screen, screen.session_token, now(), step="menu")
        flash("Your PIN is changed.")
        return _to_screen()
    return await _after_pin(screen, answer)


async def _after_pin(screen, check):
    db = get_db()
    if check.accepted:
        await atm_screens.move(db, screen, screen.session_token, now(), step="menu", card_id=check.card.id,
                               account_number=check.card.default_account)
        await _journal(screen, "PIN accepted", check.card.masked)
        return _to_screen()
    await _end(screen, screen.session_token, "card kept" if check.outcome == "kept" else "card or PIN refused")
    flash(KEPT if check.outcome == "kept" else NOT_ACCEPTED)
    return _to_screen()


MENU = ("menu", "balance", "withdraw", "deposit", "statement", "transfer", "change_pin", "accounts")
STATEMENT_ROWS = 10


@bp.post("/go/<step>")
async def go(step):
    """A menu choice, or back to the menu."""
    screen = await _screen()
    if step not in MENU or screen.card_id is None or screen.step not in MENU:
        return _to_screen()
    await _claim(screen, step=step)
    return _to_screen()


async def _card_of(screen):
    return await cards.get_card(get_db(), screen.card_id)


@bp.post("/account")
async def account():
    """Another account: one of the card's."""
    screen = await _screen()
    number = request.form.get("account", "")
    if screen.step == "accounts" and number in (await _card_of(screen)).accounts:
        await _claim(screen, step="menu", account_number=number)
    return _to_screen()


@bp.post("/deposit")
async def deposit():
    """The notes counted by denomination (standing in for the note acceptor): credited at once."""
    screen = await _screen()
    db = get_db()
    if screen.step != "deposit":
        return _to_screen()
    notes = {}
    for cents in note_denominations(db):
        text = request.form.get(f"notes_{cents}", "").strip() or "0"
        if not (text.isascii() and text.isdigit() and len(text) <= 4):
            flash("Count the notes of each kind: a whole number, or nothing.")
            return _to_screen()
        notes[cents] = int(text)
    if (claimed := await _claim(screen, step="depositing")) is None:
        return _to_screen()
    try:
        done = await atm_deposits.deposit(db, screen.atm_id, screen.card_id, screen.account_number, notes,
                                          f"atm:{screen.atm_id}", now=now())
    except AtmRefused as refused:
        await atm_screens.move(db, claimed, claimed.session_token, now(), step="deposit")
        flash(str(refused))
        return _to_screen()
    await atm_screens.move(db, claimed, claimed.session_token, now(), step="menu")
    flash(f"Deposited {format_cents(done.transaction.amount_cents)} (trace {done.trace}). Balance: "
          f"{format_cents(done.transaction.balance_after_cents)}.")
    return _to_screen()


@bp.post("/transfer")
async def transfer():
    """Between the card's own accounts."""
    screen = await _screen()
    db = get_db()
    card = await _card_of(screen)
    to = request.form.get("to", "")
    if screen.step != "transfer" or to not in card.accounts or to == screen.account_number:
        return _to_screen()
    try:
        amount = to_cents(request.form.get("amount", ""), maximum_cents=settings_of(db).max_amount_cents)
    except InvalidAmount:
        flash("Type an amount, such as 25 or 25.50.")
        return _to_screen()
    if (claimed := await _claim(screen, step="transferring")) is None:
        return _to_screen()
    try:
        await accounts.transfer(db, screen.account_number, to, amount, f"atm:{screen.atm_id}", now=now())
    except InsufficientFunds:
        await atm_screens.move(db, claimed, claimed.session_token, now(), step="transfer")
        flash("Not enough money available in this account for that amount.")
        return _to_screen()
    await atm_screens.move(db, claimed, claimed.session_token, now(), step="menu")
    flash(f"Transferred {format_cents(amount)} from {screen.account_number} to {to}.")
    return _to_screen()


@bp.post("/change-pin")
async def change_pin():
    """Change PIN: the PIN now (counted as any PIN), the new one twice."""
    return await _new_pin("change_pin", lambda db, screen, form: cards.change_pin(
        db, screen.card_id, form.get("old_pin", ""), form.get("new_pin", ""), now(), "atm-screen"))


@bp.post("/end")
async def end():
    """End: "Take your card", then Welcome."""
    screen = await _screen()
    if screen.step in MENU and request.form.get("session") == screen.session_token:
        await _end(screen, screen.session_token, "session ended")
        flash("Please take your card. Thank you.")
    return _to_screen()


@bp.post("/withdraw")
async def withdraw():
    screen = await _screen()
    db = get_db()
    if screen.step != "withdraw":
        return _to_screen()
    try:
        amount = to_cents(request.form.get("amount", ""), maximum_cents=settings_of(db).max_amount_cents)
    except InvalidAmount:
        flash("Type an amount, such as 60 or 60.00.")
        return _to_screen()
    claimed = await _claim(screen, step="holding")
    if claimed is None:
        return _to_screen()  # sent twice: the first one is under way or done
    try:
        w = await atm_withdrawals.withdraw(db, screen.atm_id, screen.card_id, screen.account_number, amount,
                                           f"atm:{screen.atm_id}", now=now())
    except InsufficientFunds:
        await atm_screens.move(db, claimed, claimed.session_token, now(), step="withdraw")
        flash("Not enough money available in this account for that amount.")
        return _to_screen()
    except AtmRefused as refused:
        await atm_screens.move(db, claimed, claimed.session_token, now(), step="withdraw")
        flash(str(refused))
        return _to_screen()
    await atm_screens.move(db, claimed, claimed.session_token, now(), step="take_card", trace=w.trace)
    return _to_screen()


@bp.post("/card-taken")
async def card_taken():
    screen = await _screen()
    if screen.step != "take_card" or await _claim(screen, step="take_cash") is None:
        return _to_screen()
    if screen.atm.dispenser == "screen":  # a device's agent reports its own presenting
        await atm_withdrawals.report(get_db(), screen.atm_id, screen.trace, "presented", "dispenser:screen",
                                     now=now())
    return _to_screen()


async def _cash_result(screen, outcome):
    return await atm_withdrawals.report(get_db(), screen.atm_id, screen.trace, outcome, "dispenser:screen",
                                        now=now())


@bp.post("/cash-taken")
async def cash_taken():
    screen = await _screen()
    late = screen.seen_at is not None and now() - screen.seen_at > settings_of(get_db()).atm_take_cash_seconds
    if screen.atm.dispenser != "screen" or screen.step != "take_cash" or await _claim(screen, step="receipt") is None:
        return _to_screen()
    done = await _cash_result(screen, "retracted" if late else "taken")
    if done.status == "retracted":
        flash("Your cash was not taken in time and has been taken back. Nothing was taken from your account.")
    elif done.status == "expired":
        flash("Your withdrawal could not be completed. Please contact your branch.")
    return _to_screen()


@bp.post("/more-time")
async def more_time():
    """The idle warning's More time: the session's clock starts again."""
    screen = await _screen()
    if screen.step not in (None, "take_card", "take_cash"):
        await _claim(screen)
    return _to_screen()


@bp.post("/done")
async def done():
    """No receipt, or the receipt printed: the session ends (the card was given back before the cash)."""
    screen = await _screen()
    if screen.step == "receipt" and request.form.get("session") == screen.session_token:
        await _end(screen, screen.session_token, "session ended")
        flash("Thank you.")
    return _to_screen()
