"""Holds: money reserved on a customer's account now, and posted once later (two-phase postings).

A hold is placed for an amount; while it is pending the account's available (balance + overdraft limit - held)
counts it, and the database refuses anything that would take available below zero (migration 0017/0010: the
account's held_cents, kept by triggers, inside the CHECK balance_within_limit), so two servers placing holds and
withdrawals on one account can never overspend it. Each hold then ends exactly once:
- captured: a withdrawal (against clearing) of its amount or less, the rest released, the row linked both ways
  (the hold's transaction_id; the row's memo "hold N");
- voided: released by whoever placed it (a script), or by a supervisor with a note (audited);
- expired: released at its expiry time. From that moment reads leave it out (they subtract what is past its time
  from held), and it cannot be captured. It is recorded expired by the first write that touches it: a posting
  that takes money out of the account (the database's trigger, in the posting's own statement, at the posting's
  time), a hold placed on the account, a capture or void of it, a limit set (each when it succeeds: a refused
  write leaves nothing behind, its expiries included). No sweep is needed for correctness;
  a hold nobody touches stays 'pending' in its row, past its time, and every read shows it expired.

Times are journal_time text (UTC, to the microsecond), compared as text with a posting's created_at; `now` is the
app's clock, so a test clock moves expiry too.
"""
from dataclasses import dataclass, replace

from atm_web.core import audit
from atm_web.core.clock import journal_time, or_system
from atm_web.core.refusals import check_amount
from atm_web.core.rules import CLEARING
from atm_web.ledger.idempotency import Once, Replay, at_most_once, purge_expired_keys
from atm_web.ledger.journal import (
    Transaction,
    account_open_in,
    append_entry,
    get_transaction,
    ledger_refusals,
    posting_stamp,
)
from atm_web.ledger.refusals import (
    AccountNotFound,
    CaptureAboveHold,
    HoldEnded,
    HoldNotFound,
    InsufficientFunds,
    check_account_number,
    check_hold_memo,
)
from atm_web.storage import Database

HOLD_COLUMNS = ("id, account_number, amount_cents, status, created_at, expires_at, actor, memo, ended_at, ended_by, "
                "note, captured_cents, transaction_id")
STATUSES = ("pending", "captured", "voided", "expired")
LIST_MAX = 100


@dataclass(frozen=True)
class Hold:
    id: int
    account_number: str
    amount_cents: int
    status: str  # as stored: a pending hold past its time reads as expired (status_at)
    created_at: str
    expires_at: str
    actor: str
    memo: str
    ended_at: str | None
    ended_by: str | None
    note: str
    captured_cents: int | None
    transaction_id: int | None
    replayed: bool = False  # answered from an earlier request with the same idempotency key
    is_hold = True  # an idempotent request's outcome that is a hold, not a transaction (idempotency.py)

    def status_at(self, now: float) -> str:
        """Its status as every request sees it at `now`: a pending hold past its expiry time is expired."""
        if self.status == "pending" and self.expires_at <= journal_time(now):
            return "expired"
        return self.status


@dataclass(frozen=True)
class Captured:
    """A capture: the hold, ended, and the withdrawal it posted (the customer's row)."""
    hold: Hold
    transaction: Transaction

    @property
    def id(self) -> int:  # an idempotent outcome: the hold (idempotency.py)
        return self.hold.id

    is_hold = True


async def _hold_in(conn, hold_id: int) -> Hold:
    rows = await conn.fetchall(f"SELECT {HOLD_COLUMNS} FROM holds WHERE id = ?", (hold_id,))
    if not rows:
        raise HoldNotFound(hold_id)
    return Hold(*rows[0])


async def expire_due_in(conn, number: str, at: str) -> None:
    """Record as expired the account's pending holds whose time has come by `at` (journal_time text), in the
    caller's transaction: the triggers release them from held_cents."""
    await conn.execute("UPDATE holds SET status = 'expired', ended_at = ?, ended_by = 'expiry' "
                       "WHERE account_number = ? AND status = 'pending' AND expires_at <= ?", (at, number, at))


async def held_now_in(conn, number: str, held_cents: int, now: float) -> int:
    """What is held on the account at `now`: its held_cents less its pending holds already past their time (not
    yet recorded expired). Reads only that account's pending holds, and only when it has any."""
    if not held_cents:
        return 0
    (due,), = await conn.fetchall(
        "SELECT CAST(coalesce(sum(amount_cents), 0) AS BIGINT) FROM holds WHERE account_number = ? "
        "AND status = 'pending' "
        "AND expires_at <= ?", (number, journal_time(now)))
    return held_cents - due


async def place(db: Database, number: str, amount_cents: int, expires_in_s: int, memo: str, actor: str,
                once: Once | None = None, *, now: float | None = None) -> tuple[Hold, int]:
    """Reserve amount_cents on a customer's account for expires_in_s seconds: (the hold, the account's available
    after it). InsufficientFunds when it does not fit (stored as the outcome of an idempotent request, as a
    withdrawal's is); AccountNotFound for an account not opened."""
    check_account_number(number)
    check_amount(amount_cents)
    if not isinstance(expires_in_s, int) or expires_in_s <= 0:
        raise ValueError("expires_in_s must be a positive int")
    memo = check_hold_memo(memo)
    now = or_system(now)
    at, until = journal_time(now), journal_time(now + expires_in_s)
    await purge_expired_keys(db, once)

    result = await db.write(lambda conn: at_most_once(
        conn, once, lambda: place_in(conn, number, amount_cents, at, until, memo, actor)))
    if isinstance(result, Replay):
        result = await _replayed_hold(db, result)
    return result, await available(db, number, now=now)


async def place_in(conn, number: str, amount_cents: int, at: str, until: str, memo: str, actor: str) -> Hold:
    """Place a hold from `at` to `until` (journal_time text), in the caller's transaction, all or nothing: the
    account locked, its due expiries recorded, InsufficientFunds when it does not fit."""
    if not await account_open_in(conn, number):
        raise AccountNotFound(number)
    await conn.lock_accounts((number,))
    async with conn.savepoint():  # a refusal leaves nothing behind, the expiries recorded first included
        await expire_due_in(conn, number, at)
        async with ledger_refusals(conn):  # balance_within_limit: InsufficientFunds
            (hold_id,), = await conn.fetchall(
                "INSERT INTO holds (account_number, amount_cents, created_at, expires_at, actor, memo) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id", (number, amount_cents, at, until, actor, memo))
    return await _hold_in(conn, hold_id)


async def capture(db: Database, hold_id: int, amount_cents: int | None, actor: str, once: Once | None = None, *,
                  now: float | None = None) -> Captured:
    """Post the hold as a withdrawal of amount_cents (None: all of it; at most the hold's amount), releasing the
    rest, exactly once: a hold already ended (captured, voided, expired) is HoldEnded, with its status."""
    if amount_cents is not None:
        check_amount(amount_cents)
    stamp = posting_stamp(db, now)
    await purge_expired_keys(db, once)

    result = await db.write(lambda conn: at_most_once(
        conn, once, lambda: capture_in(conn, hold_id, amount_cents, actor, stamp)))
    if isinstance(result, Replay):
        hold = await _replayed_hold(db, result)
        return Captured(hold, replace(await get_transaction(db, hold.transaction_id), replayed=True))
    return result


async def capture_in(conn, hold_id: int, amount_cents: int | None, actor: str, stamp, counter: str = CLEARING
                     ) -> Captured:
    """Capture in the caller's transaction, all or nothing: the withdrawal posted against `counter` (clearing; an
    ATM's cash account for cash it paid out)."""
    async with conn.savepoint():  # a refusal leaves nothing behind, the expiries recorded first included
        hold = await _claim_in(conn, hold_id, stamp.created_at)
        amount = hold.amount_cents if amount_cents is None else amount_cents
        if amount > hold.amount_cents:
            raise CaptureAboveHold(hold.amount_cents)
        await conn.execute("UPDATE holds SET status = 'captured', ended_at = ?, ended_by = ?, captured_cents = ? "
                           "WHERE id = ?", (stamp.created_at, actor, amount, hold_id))
        row, _ = await append_entry(conn, [(hold.account_number, "withdrawal", amount, f"hold {hold_id}"),
                                           (counter, "credit", amount, f"withdrawal {hold.account_number}")],
                                    actor, stamp)
        await conn.execute("UPDATE holds SET transaction_id = ? WHERE id = ?", (row.id, hold_id))
    return Captured(await _hold_in(conn, hold_id), row)


async def void_in(conn, hold_id: int, actor: str, at: str, note: str = "") -> Hold:
    """Void in the caller's transaction (HoldEnded if it ended already)."""
    async with conn.savepoint():  # a refusal leaves nothing behind, the expiries recorded first included
        await _claim_in(conn, hold_id, at)
        await conn.execute("UPDATE holds SET status = 'voided', ended_at = ?, ended_by = ?, note = ? "
                           "WHERE id = ?", (at, actor, note, hold_id))
    return await _hold_in(conn, hold_id)


async def void(db: Database, hold_id: int, actor: str, once: Once | None = None, *, note: str = "",
               now: float | None = None) -> Hold:
    """Release the hold, nothing posted, exactly once (HoldEnded if it ended already). A note (a supervisor's
    release at the teller screen) is kept with it and audited."""
    now = or_system(now)
    at = journal_time(now)
    await purge_expired_keys(db, once)

    async def apply(conn):
        hold = await void_in(conn, hold_id, actor, at, note)
        if note:
            await audit.record(conn, now, actor, "hold released", hold.account_number,
                               f"hold {hold_id}: {note}")
        return hold

    result = await db.write(lambda conn: at_most_once(conn, once, lambda: apply(conn)))
    return await _replayed_hold(db, result) if isinstance(result, Replay) else result


async def _claim_in(conn, hold_id: int, at: str) -> Hold:
    """The pending hold, its account locked first (the order a posting's trigger takes: account, then holds), its
    expiry recorded if its time has come; HoldEnded if it is not pending."""
    hold = await _hold_in(conn, hold_id)
    await conn.lock_accounts((hold.account_number,))
    await expire_due_in(conn, hold.account_number, at)
    hold = await _hold_in(conn, hold_id)
    if hold.status != "pending":
        raise HoldEnded(hold.id, hold.status)
    return hold


async def _replayed_hold(db: Database, replay: Replay) -> Hold:
    if replay.refusal is not None:  # the one refusal kept as an outcome
        raise InsufficientFunds(replayed=not replay.first_time)
    hold = await db.read(lambda conn: _hold_in(conn, replay.hold_id))
    return replace(hold, replayed=True)


async def get_hold(db: Database, hold_id: int) -> Hold:
    return await db.read(lambda conn: _hold_in(conn, hold_id))


async def holds_of(db: Database, number: str, status: str | None = None, *, now: float | None = None,
                   limit: int = LIST_MAX) -> list[Hold]:
    """The account's holds, newest first (at most `limit`), only those of `status` as read at `now` if given."""
    check_account_number(number)
    at = journal_time(or_system(now))
    where, params = "account_number = ?", [number]
    if status == "pending":
        where, params = where + " AND status = 'pending' AND expires_at > ?", [*params, at]
    elif status == "expired":
        where, params = (where + " AND (status = 'expired' OR (status = 'pending' AND expires_at <= ?))",
                         [*params, at])
    elif status is not None:
        where, params = where + " AND status = ?", [*params, status]
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT {HOLD_COLUMNS} FROM holds WHERE {where} ORDER BY id DESC LIMIT ?", (*params, limit)))
    return [Hold(*row) for row in rows]


async def available(db: Database, number: str, *, now: float | None = None) -> int:
    """The account's available at `now`: balance + overdraft limit - what is held then."""
    async def op(conn):
        (balance, limit, held), = await conn.fetchall(
            "SELECT balance_cents, overdraft_limit_cents, held_cents FROM accounts WHERE account_number = ?",
            (number,))
        return balance + limit - await held_now_in(conn, number, held, or_system(now))
    return await db.read(op, snapshot=True)
