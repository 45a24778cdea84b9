"""Cash deposited at an ATM: the notes counted by denomination (the note acceptor's count; on the browser kiosk, the
customer's entry standing in for it), credited to the card's account at once against the ATM's cash account (the
notes go into its deposit bin, which the next replenishment's blind count counts), noted in the customer's large
cash of the day, and journaled with its trace number. Cash that would take the customer's day above CTR_THRESHOLD
is refused ("Please see a teller": no identity check can be made at an ATM)."""
from dataclasses import dataclass

from atm_web.cash.atm_journal import record_in
from atm_web.cash.atm_withdrawals import SeeATeller
from atm_web.cash.atms import atm_in, note_denominations
from atm_web.cash.refusals import AtmRefused
from atm_web.core.money import format_cents
from atm_web.core.refusals import check_amount
from atm_web.core.settings import settings_of
from atm_web.customers.cards import card_in
from atm_web.customers.large_cash import above_threshold
from atm_web.ledger.journal import Transaction, append_pair, posting_stamp
from atm_web.storage import Database

NOTES_MAX = 200  # notes one deposit takes (a note acceptor's bundle)


@dataclass(frozen=True)
class Deposit:
    transaction: Transaction
    trace: int
    notes: dict[int, int]  # denomination (cents): notes


def counted(db: Database, notes: dict) -> dict[int, int]:
    """The notes of a deposit, {denomination cents: notes}: the branch's notes only, whole numbers, 1 to NOTES_MAX
    in all (AtmRefused otherwise)."""
    allowed = note_denominations(db)
    if not isinstance(notes, dict) or any(d not in allowed for d in notes) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in notes.values()):
        raise AtmRefused("Count the notes of each denomination: whole numbers of the branch's notes.")
    notes = {d: n for d, n in sorted(notes.items(), reverse=True) if n}
    if not 1 <= sum(notes.values()) <= NOTES_MAX:
        raise AtmRefused(f"A deposit is 1 to {NOTES_MAX} notes.")
    return notes


async def deposit(db: Database, atm_id: int, card_id: int, number: str, notes: dict, actor: str, *,
                  now: float) -> Deposit:
    notes = counted(db, notes)
    amount = sum(d * n for d, n in notes.items())
    check_amount(amount)
    settings = settings_of(db)
    at = posting_stamp(db, now)

    async def op(conn):
        async with conn.savepoint():
            atm = await atm_in(conn, atm_id)
            card = await card_in(conn, card_id)
            if card is None or card.status_on(at.today) != "active" or number not in card.accounts:
                raise AtmRefused("This card cannot deposit to that account.")
            if await above_threshold(conn, number, "deposit", amount, at.today, settings.ctr_threshold_cents):
                raise SeeATeller()
            tx = await append_pair(conn, number, "deposit", amount, atm.account_number, f"deposit at {atm.label}",
                                   actor, at)
            event = await record_in(conn, atm.id, at.created_at, "cash deposited", f"card {card.masked}: "
                                    f"{format_cents(amount)} (" + ", ".join(
                                        f"{n} x {format_cents(d)}" for d, n in notes.items())
                                    + f"), into the deposit bin; transaction {tx.id}", actor)
            return Deposit(tx, event.seq, notes)

    return await db.write(op)
