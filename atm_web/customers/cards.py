"""Cards: issued by a teller to a customer for accounts they hold, checked by PIN (three wrong in a row keep the
card), reported lost for good, unblocked by a second person (approvals.decisions carries it out: unblock_in).

The full card number and the PIN-setting code exist only in the answer that issues the card (IssuedCard): the
database keeps keyed digests (pins.py); pages, the audit log and the ATM journal name a card by its last 4 digits.

Wrong PINs in a row are counted in the card's row (pin_tries), so the count holds across ATMs, workers and servers:
each attempt is reserved before its PIN is checked, by one UPDATE that only succeeds while fewer than three are
counted, so however many attempts arrive at once, at most three reach the check. A right PIN sets the count back to
0; a wrong one leaves its reservation counted, and the one that brings the count to three blocks the card. An
attempt whose process died before its answer stays counted until the next right PIN: the safe side.
"""
import asyncio
import hmac
from dataclasses import dataclass

from atm_web.core import audit
from atm_web.core.clock import iso
from atm_web.core.settings import settings_of
from atm_web.customers import pins
from atm_web.customers.card_numbers import card_number as read_number
from atm_web.customers.card_numbers import masked, new_number
from atm_web.customers.records import customer_in
from atm_web.customers.refusals import CardNotFound, CardRefused, CustomerRefused
from atm_web.ledger.journal import posting_stamp
from atm_web.storage import Database

PIN_TRIES = 3  # wrong PINs in a row that keep the card
ACCOUNTS_MAX = 6  # accounts one card may reach
NUMBER_TRIES = 10  # new numbers drawn before giving up (each clashes one time in a billion)
_COLUMNS = "id, customer_id, last4, expires, status, pin_hash IS NOT NULL, pin_tries, issued_at, issued_by"


@dataclass(frozen=True)
class Card:
    id: int
    customer_id: int
    last4: str
    expires: str  # YYYY-MM: valid to that month's last day
    status: str  # as stored: active, blocked or lost (status_on adds expired)
    pin_set: bool
    pin_tries: int
    issued_at: str
    issued_by: str
    accounts: tuple[str, ...] = ()
    default_account: str = ""

    @property
    def masked(self) -> str:
        return masked(self.last4)

    def status_on(self, today: str) -> str:
        """The status on a local date (YYYY-MM-DD): an active card past its month is expired."""
        return "expired" if self.status == "active" and today[:7] > self.expires else self.status


@dataclass(frozen=True)
class IssuedCard:
    """What the issuing page shows once: the card, its full number and its PIN-setting code."""
    card: Card
    number: str
    code: str


@dataclass(frozen=True)
class PinCheck:
    """A PIN's (or a PIN-setting code's) answer: accepted, refused (the same for an unknown, expired, blocked or lost
    card as for a wrong PIN), or kept (the third wrong PIN in a row: the card is blocked now)."""
    outcome: str
    card: Card | None = None

    @property
    def accepted(self) -> bool:
        return self.outcome == "accepted"


async def _cards_in(conn, where: str, params) -> list[Card]:
    rows = await conn.fetchall(f"SELECT {_COLUMNS} FROM cards WHERE {where} ORDER BY id", params)
    reach: dict[int, list[tuple[str, int]]] = {row[0]: [] for row in rows}
    if reach:  # every card's accounts in one statement, the default first
        for card_id, number, default in await conn.fetchall(
                "SELECT card_id, account_number, is_default FROM card_accounts WHERE card_id IN "
                f"({','.join('?' * len(reach))}) ORDER BY card_id, is_default DESC, account_number", list(reach)):
            reach[card_id].append((number, default))
    return [Card(row[0], row[1], row[2], row[3], row[4], bool(row[5]), row[6], row[7], row[8],
                 tuple(number for number, _ in reach[row[0]]),
                 next((number for number, default in reach[row[0]] if default), "")) for row in rows]


async def card_in(conn, card_id: int) -> Card | None:
    found = await _cards_in(conn, "id = ?", (card_id,))
    return found[0] if found else None


async def get_card(db: Database, card_id: int) -> Card | None:
    return await db.read(lambda conn: card_in(conn, card_id))


async def cards_of(db: Database, customer_id: int) -> list[Card]:
    """A customer's cards, oldest first."""
    return await db.read(lambda conn: _cards_in(conn, "customer_id = ?", (customer_id,)))


def _expiry(today: str, years: int) -> str:
    year, month = int(today[:4]), int(today[5:7])
    return f"{year + years:04d}-{month:02d}"


async def issue_card(db: Database, customer_id: int, accounts, default: str, teller, now: float,
                     form_key: str | None = None) -> IssuedCard:
    """A new card for a customer, for accounts they hold (default: the one an ATM uses first), audited; its number
    and PIN-setting code are in the answer only. The same form sent twice (form_key) issues one card: the second
    time is refused, the number having been shown once."""
    settings = settings_of(db)
    accounts = sorted(set(accounts or ()))
    if not 1 <= len(accounts) <= ACCOUNTS_MAX:
        raise CardRefused(f"Choose 1 to {ACCOUNTS_MAX} of the customer's accounts for the card.")
    if default not in accounts:
        raise CardRefused("Choose the card's default account among the accounts it is for.")
    today = posting_stamp(db, now).today
    code = pins.new_code()

    async def op(conn):
        async with conn.savepoint():
            if form_key and await conn.fetchall("SELECT 1 FROM cards WHERE issued_by = ? AND form_key = ?",
                                                (teller.actor, form_key)):
                raise CardRefused("This card was issued already: its number and PIN-setting code were shown once. "
                                  "If they were not handed over, report that card lost and issue another.")
            if await customer_in(conn, customer_id) is None:
                raise CustomerRefused("No such customer.")
            held = {number for number, in await conn.fetchall(
                "SELECT h.account_number FROM account_holders h JOIN accounts a ON a.account_number = h.account_number "
                f"WHERE h.customer_id = ? AND a.kind = 'customer' AND h.account_number IN "
                f"({','.join('?' * len(accounts))})", (customer_id, *accounts))}
            if missing := [number for number in accounts if number not in held]:
                raise CardRefused(f"The customer does not hold account {missing[0]}: a card reaches only accounts its "
                                  "customer holds.")
            for _ in range(NUMBER_TRIES):  # a number not taken yet (a clash is one in a billion)
                number = new_number(settings.card_prefix)
                digest = pins.number_digest(settings.pin_key, number)
                if not await conn.fetchall("SELECT 1 FROM cards WHERE number_digest = ?", (digest,)):
                    break
            else:
                raise CardRefused("No free card number was found under CARD_PREFIX: try again.")
            (card_id,), = await conn.fetchall(
                "INSERT INTO cards (customer_id, number_digest, last4, expires, code_digest, issued_at, issued_by, "
                "form_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (customer_id, digest, number[-4:], _expiry(today, settings.card_years),
                 pins.code_digest(settings.pin_key, digest, code), iso(now), teller.actor, form_key))
            for account in accounts:
                await conn.execute("INSERT INTO card_accounts (card_id, account_number, is_default) VALUES (?, ?, ?)",
                                   (card_id, account, int(account == default)))
            await audit.record(conn, now, teller.actor, "card issued", f"customer {customer_id}",
                               f"card {masked(number[-4:])} for {', '.join(accounts)} (default {default})")
            return IssuedCard(await card_in(conn, card_id), number, code)

    return await db.write(op)


async def report_lost(db: Database, card_id: int, teller, now: float) -> Card:
    """Block a card for good (a new card is issued instead), audited."""
    async def op(conn):
        async with conn.savepoint():
            card = await card_in(conn, card_id)
            if card is None:
                raise CardNotFound()
            if card.status == "lost":
                raise CardRefused(f"Card {card.masked} was reported lost already.")
            await conn.execute("UPDATE cards SET status = 'lost' WHERE id = ?", (card_id,))
            await audit.record(conn, now, teller.actor, "card reported lost", f"customer {card.customer_id}",
                               f"card {card.masked}")
            return await card_in(conn, card_id)
    return await db.write(op)


async def unblock_request_in(conn, card_id: int) -> dict:
    """The values of a request to unblock a card (approvals.hold): refused unless the card is blocked."""
    card = await card_in(conn, card_id)
    if card is None:
        raise CardNotFound()
    if card.status != "blocked":
        raise CardRefused(f"Card {card.masked} is {card.status}: only a blocked card is unblocked"
                          + (" (a lost card stays lost: issue a new one)." if card.status == "lost" else "."))
    return {"card_id": card.id, "account_number": card.default_account}


async def unblock_in(conn, card_id: int, requester, approver, now: float) -> None:
    """Carry out an approved unblock (in the decision's transaction): the card active, its wrong PINs forgotten."""
    rows = await conn.fetchall("UPDATE cards SET status = 'active', pin_tries = 0 WHERE id = ? AND status = 'blocked' "
                               "RETURNING customer_id, last4", (card_id,))
    if not rows:
        raise CardRefused("This card is not blocked any more: nothing was done.")
    customer_id, last4 = rows[0]
    await audit.record(conn, now, approver.actor, "card unblocked", f"customer {customer_id}",
                       f"card {masked(last4)}; asked by {requester.username}, approved by {approver.username}")


# PINs, as an ATM checks them

async def _reserve(db: Database, card_id: int) -> bool:
    rows = await db.write(lambda conn: conn.fetchall(
        "UPDATE cards SET pin_tries = pin_tries + 1 WHERE id = ? AND status = 'active' AND pin_tries < ? "
        "RETURNING pin_tries", (card_id, PIN_TRIES)))
    return bool(rows)


async def _failed(db: Database, card: Card, actor: str, now: float) -> PinCheck:
    """A reserved attempt was wrong: it stays counted; the one that brings the count to three blocks the card."""
    async def op(conn):
        async with conn.savepoint():
            if not await conn.fetchall("UPDATE cards SET status = 'blocked' WHERE id = ? AND status = 'active' "
                                       "AND pin_tries >= ? RETURNING id", (card.id, PIN_TRIES)):
                return PinCheck("refused")
            await audit.record(conn, now, actor, "card kept", f"customer {card.customer_id}",
                               f"card {card.masked}: {PIN_TRIES} wrong PINs in a row")
            return PinCheck("kept", await card_in(conn, card.id))
    return await db.write(op)


async def _succeeded(db: Database, card: Card, sets_pin: str | None = None) -> PinCheck:
    """A reserved attempt was right: the count back to 0 (and the new PIN's hash kept, for a first PIN), unless the
    card was blocked meanwhile."""
    if sets_pin is None:
        sql, params = "UPDATE cards SET pin_tries = 0 WHERE id = ? AND status = 'active' RETURNING id", (card.id,)
    else:
        sql = ("UPDATE cards SET pin_tries = 0, pin_hash = ?, code_digest = NULL WHERE id = ? AND status = 'active' "
               "AND pin_hash IS NULL RETURNING id")
        params = (sets_pin, card.id)
    rows = await db.write(lambda conn: conn.fetchall(sql, params))
    return PinCheck("accepted", await get_card(db, card.id)) if rows else PinCheck("refused")


def card_reference(db: Database, number: str) -> str:
    """What stands for a card number between an ATM's screens: its keyed digest ('' for text that is no card
    number). The number itself is never kept."""
    number = read_number(number)
    return "" if number is None else pins.number_digest(settings_of(db).pin_key, number)


async def card_by_reference(db: Database, reference: str, now: float) -> Card | None:
    """The card a reference (card_reference) names if it may be used today (active, not expired), else None."""
    return (await _card_by_number(db, None, now, reference))[0]


async def _card_by_number(db: Database, number: str | None, now: float, digest: str = "") -> tuple[Card | None, str]:
    """The card a number (or its reference) names if it may be used today (active, not expired), and its number's
    digest."""
    digest = digest or card_reference(db, number or "")
    if not digest:
        return None, ""
    found = await db.read(lambda conn: _cards_in(conn, "number_digest = ?", (digest,)))
    if not found or found[0].status_on(posting_stamp(db, now).today) != "active":
        return None, digest
    return found[0], digest


_DUMMY = {}  # a hash to check when there is no card, so that the answer takes as long as a wrong PIN's


def _dummy_hash(key: bytes) -> str:
    if key not in _DUMMY:
        _DUMMY.setdefault(key, pins.hash_pin(key, "no card"))  # the first one made stays, whatever the threads
    return _DUMMY[key]


async def check_pin(db: Database, number: str | None, pin: str, now: float, actor: str = "atm", *,
                    reference: str = "") -> PinCheck:
    """Check a card's PIN (typed at an ATM), the card by its number or its reference: accepted, refused or kept
    (PinCheck)."""
    key = settings_of(db).pin_key
    card, _ = await _card_by_number(db, number, now, reference)
    if card is None or not card.pin_set or not await _reserve(db, card.id):
        await asyncio.to_thread(pins.pin_matches, key, _dummy_hash(key), pin or "")
        return PinCheck("refused")
    stored = await db.read(lambda conn: conn.fetchall("SELECT pin_hash FROM cards WHERE id = ?", (card.id,)))
    if await asyncio.to_thread(pins.pin_matches, key, stored[0][0], pin if isinstance(pin, str) else ""):
        return await _succeeded(db, card)
    return await _failed(db, card, actor, now)


async def set_first_pin(db: Database, number: str | None, code: str, new_pin: str, now: float,
                        actor: str = "atm", *, reference: str = "") -> PinCheck:
    """A new card's first PIN, set with its PIN-setting code (counted as a PIN attempt). The new PIN is checked
    against the rules first (pins.pin_problem: CardRefused, nothing counted)."""
    if problem := pins.pin_problem(new_pin):
        raise CardRefused(problem)
    key = settings_of(db).pin_key
    card, digest = await _card_by_number(db, number, now, reference)
    if card is None or card.pin_set or not await _reserve(db, card.id):
        return PinCheck("refused")
    stored = await db.read(lambda conn: conn.fetchall("SELECT code_digest FROM cards WHERE id = ?", (card.id,)))
    expected = stored[0][0] or ""
    if not hmac.compare_digest(expected, pins.code_digest(key, digest, code if isinstance(code, str) else "")):
        return await _failed(db, card, actor, now)
    return await _succeeded(db, card, await asyncio.to_thread(pins.hash_pin, key, new_pin))


async def change_pin(db: Database, card_id: int, old_pin: str, new_pin: str, now: float,
                     actor: str = "atm") -> PinCheck:
    """A card's PIN changed at an ATM: the old PIN checked as any PIN is (counted; the third wrong one in a row keeps
    the card), the new one against the rules first (CardRefused, nothing counted)."""
    if problem := pins.pin_problem(new_pin):
        raise CardRefused(problem)
    key = settings_of(db).pin_key
    card = await get_card(db, card_id)
    usable = card is not None and card.status_on(posting_stamp(db, now).today) == "active" and card.pin_set
    if not usable or not await _reserve(db, card.id):
        await asyncio.to_thread(pins.pin_matches, key, _dummy_hash(key), old_pin or "")
        return PinCheck("refused")
    stored = await db.read(lambda conn: conn.fetchall("SELECT pin_hash FROM cards WHERE id = ?", (card.id,)))
    if not await asyncio.to_thread(pins.pin_matches, key, stored[0][0], old_pin if isinstance(old_pin, str) else ""):
        return await _failed(db, card, actor, now)
    new_hash = await asyncio.to_thread(pins.hash_pin, key, new_pin)
    rows = await db.write(lambda conn: conn.fetchall(
        "UPDATE cards SET pin_tries = 0, pin_hash = ? WHERE id = ? AND status = 'active' RETURNING id",
        (new_hash, card.id)))
    return PinCheck("accepted", await get_card(db, card.id)) if rows else PinCheck("refused")
