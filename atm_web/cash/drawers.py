"""Cash drawers: a teller's drawer session, opened with a float counted out of the vault, closed with a blind count
whose variance goes to cash over or cash short, signed off by another administrator beyond the tolerance (the
vault's own movements are vault.py's).

Each drawer session has a cash account of its own ('@drawer-<id>', opened with it), so its expected cash is simply
that account's balance, negated (cash stands at minus the notes held): no movement can be missed by a sum. Every
step is one double-entry transaction with its audit row; cash can never go below zero (the database's
cash_not_negative) and moves through a drawer only while its session is open (the trigger drawer_must_be_open).
"""
import json
from dataclasses import dataclass

from atm_web.approvals import requests as approvals
from atm_web.cash.refusals import DrawerRefused
from atm_web.core import audit
from atm_web.core.clock import or_system
from atm_web.core.money import format_cents
from atm_web.core.refusals import checked_note
from atm_web.core.rules import CASH_OVER, CASH_SHORT, DRAWER_PREFIX, VAULT
from atm_web.core.settings import settings_of
from atm_web.ledger.accounts import balance_in, open_bank_account_in
from atm_web.ledger.journal import append_entry, business_date, posting_stamp
from atm_web.ledger.refusals import DrawerNotOpen, NotEnoughCash
from atm_web.staff.tellers import check_still_allowed_in, usernames_in
from atm_web.storage import Database

_SESSION_COLUMNS = ("s.id, s.teller_id, s.account_number, s.status, s.business_date, s.opened_at, s.opening_counts, "
                    "s.opening_cents, s.closed_at, s.closing_counts, s.expected_cents, s.counted_cents, "
                    "s.variance_cents, s.signed_off_by, s.signed_off_at, s.signoff_note, s.closed_by")
OPENING_MEMO, CLOSING_MEMO = "opening float", "closing count"  # a drawer's first and last rows (the report's key)


@dataclass(frozen=True)
class DrawerSession:
    id: int
    teller_id: int
    username: str
    account_number: str
    status: str  # open, pending_signoff, closed
    business_date: str
    opened_at: str
    opening_counts: str
    opening_cents: int
    closed_at: str | None = None
    closing_counts: str | None = None
    expected_cents: int | None = None
    counted_cents: int | None = None
    variance_cents: int | None = None
    signed_off_by: str | None = None
    signed_off_at: str | None = None
    signoff_note: str | None = None
    closed_by: str | None = None  # who counted at the close: the teller, or an administrator on their behalf

    @property
    def counts_at_open(self) -> dict[int, int]:
        return _counts(self.opening_counts)

    @property
    def counts_at_close(self) -> dict[int, int]:
        return _counts(self.closing_counts)


def counts_total(counts: dict[int, int]) -> int:
    """The cash a count per denomination (cents: number of notes or coins) makes, in cents."""
    return sum(cents * number for cents, number in counts.items())


def _counts_text(counts: dict[int, int]) -> str:
    return json.dumps({str(cents): number for cents, number in sorted(counts.items(), reverse=True) if number})


def _counts(text: str | None) -> dict[int, int]:
    return {int(cents): number for cents, number in json.loads(text or "{}").items()}


async def sessions_in(conn, where: str, params=()) -> list[DrawerSession]:
    """The drawer sessions `where` selects (SQL over drawer_sessions s, with any ORDER BY), with their tellers'
    names (staff's to give)."""
    rows = await conn.fetchall(f"SELECT {_SESSION_COLUMNS} FROM drawer_sessions s WHERE {where}", params)
    names = await usernames_in(conn, (row[1] for row in rows))
    return [DrawerSession(row[0], row[1], names.get(row[1], "?"), *row[2:]) for row in rows]


async def session_where(conn, where: str, params) -> DrawerSession | None:
    found = await sessions_in(conn, where, params)
    return found[0] if found else None


async def open_session_in(conn, teller_id: int) -> DrawerSession | None:
    """The teller's open drawer session (not one waiting for a sign-off), in the caller's transaction."""
    return await session_where(conn, "s.teller_id = ? AND s.status = 'open'", (teller_id,))


async def counter_drawer(db: Database, teller) -> str:
    """The account of the teller's open drawer, which their cash at the counter goes through; DrawerNotOpen
    without one (or while it waits for a sign-off)."""
    drawer = await current_session(db, teller.id)
    if drawer is None:
        raise DrawerNotOpen("You have no open drawer: open it (My drawer) before a cash deposit or withdrawal. "
                            "Nothing was recorded.")
    if drawer.status != "open":
        raise DrawerNotOpen("Your drawer waits for an administrator's sign-off: no cash can be posted until then. "
                            "Nothing was recorded.")
    return drawer.account_number


async def current_session(db: Database, teller_id: int) -> DrawerSession | None:
    """The teller's session that is not closed yet (open, or waiting for a sign-off), if any."""
    return await db.read(lambda conn: session_where(conn, "s.teller_id = ? AND s.status != 'closed'", (teller_id,)))


async def get_session(db: Database, session_id: int) -> DrawerSession | None:
    return await db.read(lambda conn: session_where(conn, "s.id = ?", (session_id,)))


async def sessions(db: Database, *, status: str | None = None, business_date: str | None = None
                   ) -> list[DrawerSession]:
    """Sessions of one status, or of one business date; with neither, those not closed yet."""
    if business_date is not None:
        where, params = "s.business_date = ?", (business_date,)
    elif status is not None:
        where, params = "s.status = ?", (status,)
    else:
        where, params = "s.status != 'closed'", ()
    return await db.read(lambda conn: sessions_in(conn, f"{where} ORDER BY s.id", params))


async def cash_entry(conn, rows, actor: str, at, short_of: str):
    """append_entry, a cash account's refusal naming where the cash was short."""
    try:
        return await append_entry(conn, rows, actor, at)
    except NotEnoughCash:
        raise NotEnoughCash(short_of) from None


async def open_drawer(db: Database, teller, counts: dict[int, int], *, now: float | None = None) -> DrawerSession:
    """Open the teller's drawer with the float counted out of the vault (refused if the vault holds less); one
    session per teller that is not closed."""
    now = or_system(now)
    at = posting_stamp(db, now)
    float_cents = counts_total(counts)

    async def op(conn):
        async with conn.savepoint():
            if await session_where(conn, "s.teller_id = ? AND s.status != 'closed'", (teller.id,)):
                raise DrawerRefused("You already have a drawer that is not closed.")
            (session_id,), = await conn.fetchall("SELECT coalesce(max(id), 0) + 1 FROM drawer_sessions")
            number = f"{DRAWER_PREFIX}{session_id}"
            await open_bank_account_in(conn, number, "drawer", at.created_at)
            await conn.execute(
                "INSERT INTO drawer_sessions (id, teller_id, account_number, status, business_date, opened_at, "
                "opening_counts, opening_cents) VALUES (?, ?, ?, 'open', ?, ?, ?, ?)",
                (session_id, teller.id, number, await business_date(conn, at.today), at.created_at,
                 _counts_text(counts), float_cents))
            await cash_entry(conn, [(VAULT, "credit", float_cents, f"float to drawer {session_id} ({teller.username})"),
                                (number, "debit", float_cents, OPENING_MEMO)], teller.actor, at, "the vault")
            await audit.record(conn, now, teller.actor, "drawer opened", f"drawer {session_id}",
                               f"float {float_cents} cents")
            return await session_where(conn, "s.id = ?", (session_id,))

    return await db.write(op)


async def close_drawer(db: Database, teller, counts: dict[int, int], tolerance_cents: int | None = None, *,
                       now: float | None = None, session_id: int | None = None) -> DrawerSession:
    """The blind close: the count is compared with the drawer's balance; the variance goes to cash over or cash
    short, the counted cash back to the vault, and the drawer account ends at zero, in one transaction. A
    variance beyond the tolerance leaves the session pending an administrator's sign-off.

    `teller` closes their own drawer; with session_id, an administrator (`teller`) closes another teller's
    drawer on their behalf (a teller who left with it open would keep the day from closing). The tolerance is
    VARIANCE_TOLERANCE unless given."""
    if tolerance_cents is None:
        tolerance_cents = settings_of(db).variance_tolerance_cents
    now = or_system(now)
    at = posting_stamp(db, now)
    counted = counts_total(counts)

    async def op(conn):
        async with conn.savepoint():
            if session_id is None:
                session = await open_session_in(conn, teller.id)
                if session is None:
                    raise DrawerRefused("You have no open drawer to close.")
            else:
                session = await session_where(conn, "s.id = ? AND s.status = 'open'", (session_id,))
                if session is None:
                    raise DrawerRefused("That drawer is not open.")
                if not teller.is_admin or session.teller_id == teller.id:
                    raise DrawerRefused("Close your own drawer on My drawer; only an administrator closes "
                                        "another teller's.")
                await check_still_allowed_in(conn, teller, lambda current: current.is_admin)
            expected, name = -await balance_in(conn, session.account_number), f"drawer {session.id}"
            variance = counted - expected
            await cash_entry(conn, [
                (session.account_number, "credit", expected, CLOSING_MEMO),
                (VAULT, "debit", counted, f"closing count of {name} ({session.username})"),
                (CASH_SHORT, "debit", max(0, -variance), f"short at the close of {name}"),
                (CASH_OVER, "credit", max(0, variance), f"over at the close of {name}")], teller.actor, at, "the vault")
            status = "pending_signoff" if abs(variance) > tolerance_cents else "closed"
            await conn.execute(
                "UPDATE drawer_sessions SET status = ?, closed_at = ?, closed_by = ?, closing_counts = ?, "
                "expected_cents = ?, counted_cents = ?, variance_cents = ? WHERE id = ?",
                (status, at.created_at, teller.username, _counts_text(counts), expected, counted, variance,
                 session.id))
            await conn.execute("UPDATE vault_movements SET status = 'cancelled', decided_at = ? "
                               "WHERE session_id = ? AND status = 'pending'", (at.created_at, session.id))
            if status != "closed":  # four eyes: held for a supervisor (approvals.py)
                await approvals.hold_in(conn, "drawer_signoff", teller, now, session_id=session.id,
                                        detail=f"variance {format_cents(variance)}")
            await audit.record(conn, now, teller.actor, "drawer closed" if session.teller_id == teller.id
                               else f"drawer closed for {session.username}", name,
                               f"expected {expected}, counted {counted}, variance {variance} cents"
                               + ("; pending sign-off" if status != "closed" else ""))
            return await session_where(conn, "s.id = ?", (session.id,))

    return await db.write(op)


async def ask_signoff_again(db: Database, teller, now: float):
    """The teller's close waits for a sign-off whose request expired or was declined: hold a new one for a
    supervisor (refused while one still waits): the request."""
    await approvals.expire_due(db, now)

    async def op(conn):
        async with conn.savepoint():
            session = await session_where(conn, "s.teller_id = ? AND s.status = 'pending_signoff'", (teller.id,))
            if session is None:
                raise DrawerRefused("Your drawer is not waiting for a sign-off.")
            if await approvals.waiting_signoff_in(conn, session.id, now):
                raise DrawerRefused("A sign-off request for your drawer is waiting already.")
            return await approvals.hold_in(conn, "drawer_signoff", teller, now, session_id=session.id,
                                           detail=f"variance {format_cents(session.variance_cents)}, asked again")
    return await db.write(op)


async def sign_off(db: Database, session_id: int, admin, note: str, *, now: float | None = None) -> DrawerSession:
    """A supervisor or administrator other than the drawer's teller (and whoever counted it) signs off a close
    whose variance was beyond tolerance."""
    note = checked_note(note, DrawerRefused, "A sign-off needs a note")
    now = or_system(now)
    at = posting_stamp(db, now)

    async def op(conn):
        await check_still_allowed_in(conn, admin, lambda current: current.is_admin)
        return await sign_off_in(conn, session_id, admin, note, now, at)
    return await db.write(op)


async def sign_off_in(conn, session_id: int, approver, note: str, now: float, at) -> DrawerSession:
    """sign_off in the caller's transaction; it settles the close's held sign-off request too."""
    async with conn.savepoint():
        session = await session_where(conn, "s.id = ?", (session_id,))
        if session is None or session.status != "pending_signoff":
            raise DrawerRefused("That drawer is not waiting for a sign-off.")
        if session.teller_id == approver.id or session.closed_by == approver.username:
            raise DrawerRefused("Another supervisor must sign off a drawer you kept or counted.")
        await conn.execute("UPDATE drawer_sessions SET status = 'closed', signed_off_by = ?, signed_off_at = ?, "
                           "signoff_note = ? WHERE id = ?", (approver.username, at.created_at, note, session_id))
        await approvals.settle_signoff_in(conn, session_id, approver, now, note)
        await audit.record(conn, now, approver.actor, "drawer signed off", f"drawer {session_id}", note)
        return await session_where(conn, "s.id = ?", (session_id,))
