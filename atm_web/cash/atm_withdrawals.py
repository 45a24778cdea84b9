"""Cash paid out at an ATM in two phases, as real ATMs must: the account is never debited for cash the customer did
not get, and cash is never paid twice.

1. withdraw: in one transaction, the cassettes' free notes are checked to make the amount (note_plans: the fewest
   notes, at most ATM_MAX_NOTES; an amount they cannot make is refused, naming the nearest they can, before anything
   is held), the card's daily limit (ATM_DAILY_LIMIT over the cash day's pending and paid ATM withdrawals) and the
   customer's large cash (CTR_THRESHOLD: no identity check can be made at an ATM: "Please see a teller"); then a
   hold is placed on the account (holds.py: the overdraft limit and other holds apply, in the database's CHECK),
   the notes are reserved in their cassettes, and the step goes to the ATM's journal, whose number for it is the
   withdrawal's trace number.
2. report: the dispenser's result, once, by trace number (a second report of the same result answers the first's
   outcome, changes nothing): taken (all paid: the hold captured, posted against the ATM's cash account, the
   notes out of the cassettes), partial (what was paid captured, the rest released), failed (nothing paid: the hold
   voided, the notes stay), retracted (presented, not taken: the hold voided, the notes into the retract bin, out
   of the cassettes); presented is only journaled. Writes are one at a time (SQLite's one writer; PostgreSQL's
   write lock), so two servers reporting at once post once.
3. A withdrawal whose result never comes (the kiosk lost power) ends expired with its hold (HOLD_SECONDS): recorded
   by the next withdrawal at that ATM or its next replenishment, whose blind count finds where the cash is (over or
   short).
"""
import json
from dataclasses import dataclass, replace

from atm_web.cash.atm_journal import record_in
from atm_web.cash.atms import atm_in
from atm_web.cash.note_plans import Free, nearest, plan
from atm_web.cash.refusals import AtmRefused
from atm_web.core.clock import journal_time, or_system
from atm_web.core.money import format_cents
from atm_web.core.refusals import check_amount
from atm_web.core.settings import settings_of
from atm_web.customers.cards import card_in
from atm_web.customers.large_cash import above_threshold
from atm_web.ledger import holds
from atm_web.ledger.journal import note_cash, posting_stamp
from atm_web.storage import Database

HOLD_SECONDS = 300  # a withdrawal's hold: its result must come within this (a card, then the cash, then its take)
OUTCOMES = {"taken": "dispensed", "partial": "partial", "failed": "failed", "retracted": "retracted"}
_COLUMNS = ("id, atm_id, trace, card_id, account_number, amount_cents, notes, hold_id, cash_day, status, paid_cents, "
            "created_at, ended_at, ended_by")


@dataclass(frozen=True)
class Withdrawal:
    id: int
    atm_id: int
    trace: int
    card_id: int
    account_number: str
    amount_cents: int
    notes: dict[int, int]  # position: notes chosen
    hold_id: int
    cash_day: str
    status: str  # pending, dispensed, partial, failed, retracted, expired
    paid_cents: int | None
    created_at: str
    ended_at: str | None
    ended_by: str | None
    replayed: bool = False  # a result reported again: the first report's outcome


class CannotPay(AtmRefused):
    """The cassettes cannot make the amount: the nearest amounts they can."""

    def __init__(self, amount_cents: int, amounts: list[int]):
        can = " or ".join(format_cents(cents) for cents in amounts)
        super().__init__(f"This ATM cannot pay {format_cents(amount_cents)}."
                         + (f" It can pay {can}." if can else " It has no cash to pay out now."))
        self.amounts = amounts


class AboveDailyLimit(AtmRefused):
    def __init__(self, left_cents: int):
        super().__init__("This is above your card's daily limit: "
                         + (f"up to {format_cents(left_cents)} more today." if left_cents > 0 else
                            "no more cash today."))
        self.left_cents = left_cents


class SeeATeller(AtmRefused):
    """Cash that would take the customer's day above CTR_THRESHOLD: it needs an identity check, made at a counter."""

    def __init__(self):
        super().__init__("Please see a teller.")


class WithdrawalNotFound(AtmRefused):
    status = 404

    def __init__(self, trace: int):
        super().__init__(f"No withdrawal with trace number {trace} at this ATM.")


def _withdrawal(row) -> Withdrawal:
    values = list(row)
    values[6] = {int(position): notes for position, notes in json.loads(values[6]).items()}
    return Withdrawal(*values)


async def _withdrawal_in(conn, atm_id: int, trace: int) -> Withdrawal:
    rows = await conn.fetchall(f"SELECT {_COLUMNS} FROM atm_withdrawals WHERE atm_id = ? AND trace = ?",
                               (atm_id, trace))
    if not rows:
        raise WithdrawalNotFound(trace)
    return _withdrawal(rows[0])


async def get_withdrawal(db: Database, atm_id: int, trace: int) -> Withdrawal:
    return await db.read(lambda conn: _withdrawal_in(conn, atm_id, trace))


async def day_total_in(conn, card_id: int, cash_day: str) -> int:
    """The card's ATM cash out of the day: pending withdrawals at their amount, ended ones at what they paid."""
    (total,), = await conn.fetchall(
        "SELECT CAST(coalesce(sum(CASE WHEN status = 'pending' THEN amount_cents ELSE paid_cents END), 0) AS BIGINT) "
        "FROM atm_withdrawals WHERE card_id = ? AND cash_day = ? AND status IN ('pending', 'dispensed', 'partial')",
        (card_id, cash_day))
    return total


async def _pending_on(conn, numbers: list[str], cash_day: str) -> int:
    """Cash held for ATM withdrawals of the day on these accounts, not yet paid (so not yet in customer_cash)."""
    if not numbers:
        return 0
    (total,), = await conn.fetchall(
        "SELECT CAST(coalesce(sum(amount_cents), 0) AS BIGINT) FROM atm_withdrawals WHERE status = 'pending' "
        f"AND cash_day = ? AND account_number IN ({','.join('?' * len(numbers))})", (cash_day, *numbers))
    return total


async def free_notes_in(conn, atm_id: int) -> list[Free]:
    """Each cassette's notes not reserved for a withdrawal under way."""
    return [Free(position, cents, notes - reserved) for position, cents, notes, reserved in await conn.fetchall(
        "SELECT position, denomination_cents, notes, reserved FROM atm_cassettes WHERE atm_id = ? ORDER BY position",
        (atm_id,))]


async def _end_in(conn, w: Withdrawal, status: str, paid_cents: int, out: dict[int, int], at: str,
                  actor: str) -> Withdrawal:
    """End the withdrawal (once: the database refuses a second end): its reservation released, `out` notes taken
    out of their cassettes (paid, or into the retract bin)."""
    for position, reserved in w.notes.items():
        await conn.execute("UPDATE atm_cassettes SET reserved = reserved - ?, notes = notes - ? "
                           "WHERE atm_id = ? AND position = ?", (reserved, out.get(position, 0), w.atm_id, position))
    paid_cents = paid_cents or None
    await conn.execute("UPDATE atm_withdrawals SET status = ?, paid_cents = ?, ended_at = ?, ended_by = ? "
                       "WHERE id = ?", (status, paid_cents, at, actor, w.id))
    return replace(w, status=status, paid_cents=paid_cents, ended_at=at, ended_by=actor)


async def expire_due_in(conn, atm_id: int, at: str, actor: str = "expiry") -> list[Withdrawal]:
    """End expired the ATM's pending withdrawals whose hold's time has come by `at` (journal_time), in the caller's
    transaction: their notes' reservations released, their holds recorded expired, each in the journal."""
    due = [_withdrawal(row) for row in await conn.fetchall(
        f"SELECT {', '.join('w.' + c for c in _COLUMNS.split(', '))} FROM atm_withdrawals w "
        "JOIN holds h ON h.id = w.hold_id WHERE w.atm_id = ? AND w.status = 'pending' AND h.expires_at <= ? "
        "ORDER BY w.id", (atm_id, at))]
    ended = []
    for w in due:
        await holds.expire_due_in(conn, w.account_number, at)
        ended.append(await _end_in(conn, w, "expired", 0, {}, at, actor))
        await record_in(conn, atm_id, at, "withdrawal expired",
                        f"trace {w.trace}: {format_cents(w.amount_cents)}, no result reported; the hold released",
                        actor)
    return ended


async def withdraw(db: Database, atm_id: int, card_id: int, number: str, amount_cents: int, actor: str, *,
                   now: float | None = None) -> Withdrawal:
    """Hold amount_cents on the card's account `number` and reserve the notes to pay it, in one transaction (see
    the module's text); the withdrawal, pending, its trace number for the dispenser's result."""
    check_amount(amount_cents)
    settings = settings_of(db)
    now = or_system(now)
    at = posting_stamp(db, now)

    async def op(conn):
        async with conn.savepoint():  # a refusal leaves nothing behind
            atm = await atm_in(conn, atm_id)
            card = await card_in(conn, card_id)
            if card is None or card.status_on(at.today) != "active" or number not in card.accounts:
                raise AtmRefused("This card cannot take cash from that account.")
            await expire_due_in(conn, atm.id, at.created_at)
            free = await free_notes_in(conn, atm.id)
            notes = plan(free, amount_cents, settings.atm_max_notes)
            if notes is None:
                raise CannotPay(amount_cents, nearest(free, amount_cents, settings.atm_max_notes))
            today = await day_total_in(conn, card.id, at.today)
            if today + amount_cents > settings.atm_daily_limit_cents:
                raise AboveDailyLimit(settings.atm_daily_limit_cents - today)
            if await above_threshold(conn, number, "withdrawal", amount_cents, at.today,
                                     settings.ctr_threshold_cents, lambda numbers: _pending_on(conn, numbers,
                                                                                               at.today)):
                raise SeeATeller()
            hold = await holds.place_in(conn, number, amount_cents, at.created_at,
                                        journal_time(now + HOLD_SECONDS), f"{atm.label}", actor)
            for position, count in notes.items():
                await conn.execute("UPDATE atm_cassettes SET reserved = reserved + ? WHERE atm_id = ? "
                                   "AND position = ?", (count, atm.id, position))
            paid_with = ", ".join(f"{count} x {format_cents(c.denomination_cents)}" for c in free
                                  if (count := notes.get(c.position)))
            event = await record_in(conn, atm.id, at.created_at, "cash held",
                                    f"card {card.masked}: {format_cents(amount_cents)} ({paid_with}), hold "
                                    f"{hold.id}", actor)
            await conn.execute(
                "INSERT INTO atm_withdrawals (atm_id, trace, card_id, account_number, amount_cents, notes, "
                "hold_id, cash_day, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (atm.id, event.seq, card.id, number, amount_cents,
                 json.dumps({str(p): n for p, n in notes.items()}), hold.id, at.today, at.created_at))
            return await _withdrawal_in(conn, atm.id, event.seq)

    return await db.write(op)


def _paid_notes(w: Withdrawal, outcome: str, paid_notes: dict | None) -> dict[int, int]:
    """{position: notes} the dispenser paid, by its result (a partial dispense names them; none may exceed the
    withdrawal's own)."""
    if outcome == "taken":
        return dict(w.notes)
    if outcome != "partial":
        return {}
    if not isinstance(paid_notes, dict) or not all(
            isinstance(p, int) and isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= w.notes.get(p, -1)
            for p, n in paid_notes.items()):
        raise AtmRefused(f"A partial dispense names the notes paid from each cassette, at most those of trace "
                         f"{w.trace}: " + ", ".join(f"cassette {p}: {n}" for p, n in w.notes.items()) + ".")
    return {p: n for p, n in paid_notes.items() if n}


async def report(db: Database, atm_id: int, trace: int, outcome: str, actor: str, *, paid_notes: dict | None = None,
                 now: float | None = None) -> Withdrawal:
    """The dispenser's result for the withdrawal `trace` (see the module's text): presented, taken, partial (with
    paid_notes, {cassette position: notes}), failed or retracted. Exactly once: the same result again answers the
    withdrawal as it ended (replayed); another result after it ended is refused."""
    if outcome not in (*OUTCOMES, "presented"):
        raise AtmRefused("A dispenser reports presented, taken, partial, failed or retracted.")
    now = or_system(now)
    at = posting_stamp(db, now)

    async def op(conn):
        async with conn.savepoint():
            atm = await atm_in(conn, atm_id)
            w = await _withdrawal_in(conn, atm.id, trace)
            if outcome == "presented":
                if w.status == "pending":
                    await record_in(conn, atm.id, at.created_at, "cash presented", f"trace {trace}", actor)
                return w
            paid = _paid_notes(w, outcome, paid_notes)
            paid_cents = sum(n * c.denomination_cents for c in atm.cassettes if (n := paid.get(c.position)))
            status = OUTCOMES[outcome]
            if outcome == "partial" and paid_cents in (0, w.amount_cents):
                status = "failed" if paid_cents == 0 else "dispensed"
            if w.status != "pending":  # reported before: the same result answers as it ended
                if (status, paid_cents or None) == (w.status, w.paid_cents):
                    return replace(w, replayed=True)
                raise AtmRefused(f"Trace {trace} ended {w.status} already: nothing was changed.")
            ended = await expire_due_in(conn, atm.id, at.created_at, actor)
            if any(e.id == w.id for e in ended):
                return await _withdrawal_in(conn, atm.id, trace)  # its result came after its hold ended
            if paid_cents:
                captured = await holds.capture_in(conn, w.hold_id, paid_cents, actor, at, counter=atm.account_number)
                await note_cash(conn, captured.transaction.entry_id, w.account_number, "withdrawal", paid_cents,
                                at.today)
            else:
                await holds.void_in(conn, w.hold_id, actor, at.created_at)
            out = dict(w.notes) if outcome == "retracted" else paid
            done = await _end_in(conn, w, status, paid_cents, out, at.created_at, actor)
            detail = {"dispensed": f"{format_cents(paid_cents)} paid",
                      "partial": f"{format_cents(paid_cents)} of {format_cents(w.amount_cents)} paid",
                      "failed": "nothing paid; the notes stay in the cassettes",
                      "retracted": "not taken: retracted into the retract bin; nothing paid"}[status]
            await record_in(conn, atm.id, at.created_at, f"cash {status}", f"trace {trace}: {detail}", actor)
            return done

    return await db.write(op)
