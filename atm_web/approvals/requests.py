"""Requests held for a second person (four eyes): what a teller asked for, kept with the values they entered until a
supervisor or administrator other than them approves or declines it, or 15 minutes pass and it expires.

This module keeps the records (holding a request, reading them, expiring them); approval_decisions.py carries an
approved request out. Nothing here touches the ledger: a held request writes no journal row.
"""
from dataclasses import dataclass

from atm_web.core import audit
from atm_web.core.money import format_cents
from atm_web.ledger import journal
from atm_web.ledger.accounts import check_limit_in
from atm_web.ledger.refusals import check_account_number
from atm_web.staff import tellers
from atm_web.storage import Database

EXPIRES_AFTER_S = 15 * 60
REQUEST_LABELS = {"withdrawal": "Cash withdrawal", "reversal": "Reversal", "overdraft_limit": "Overdraft limit change",
                  "drawer_signoff": "Drawer sign-off", "card_unblock": "Card unblock",
                  "atm_replenishment": "ATM replenishment", "atm_signoff": "ATM variance sign-off"}
DEFAULT_LIMIT = "MAX_DEBT"  # an overdraft limit request's detail when it asks for the default limit again
_COLUMNS = ("id, kind, status, account_number, amount_cents, tx_id, limit_cents, session_id, detail, id_check, "
            "requested_by, requested_at, expires_at, decided_by, decided_at, decision_note, entry_id, card_id, "
            "replenishment_id")


@dataclass(frozen=True)
class Approval:
    id: int
    kind: str
    status: str  # pending, approved, declined, expired
    account_number: str | None
    amount_cents: int | None
    tx_id: int | None
    limit_cents: int | None
    session_id: int | None
    detail: str
    id_check: str | None
    requested_by: int
    requester: str
    requested_at: float
    expires_at: float
    decided_by: str | None
    decided_at: float | None
    decision_note: str | None
    entry_id: int | None
    card_id: int | None = None
    replenishment_id: int | None = None

    @property
    def reference(self) -> str:
        return f"R-{self.id}"

    @property
    def label(self) -> str:
        return REQUEST_LABELS[self.kind]

    @property
    def what(self) -> str:
        """The request in a line: what, and the values the teller entered."""
        if self.kind == "withdrawal":
            return f"Cash withdrawal of {format_cents(self.amount_cents)} from account {self.account_number}"
        if self.kind == "reversal":
            return f"Reversal of entry {self.tx_id}: {self.detail}"
        if self.kind == "overdraft_limit":
            limit = "the default limit (MAX_DEBT)" if self.detail == DEFAULT_LIMIT else format_cents(self.limit_cents)
            return f"Overdraft limit of account {self.account_number}: {limit}"
        if self.kind == "card_unblock":
            return f"Unblock card {self.detail}"
        if self.kind == "atm_replenishment":
            return f"Confirm the replenishment of {self.detail}"
        if self.kind == "atm_signoff":
            return f"Sign-off of {self.detail}"
        return f"Sign-off of drawer {self.session_id}: {self.detail}"

    def status_at(self, now: float) -> str:
        """The status as of now: a pending request past its time is expired, whether or not recorded yet."""
        return "expired" if self.status == "pending" and now >= self.expires_at else self.status


async def _requests_in(conn, where: str, params=()) -> list[Approval]:
    """The requests `where` selects (SQL after WHERE, with its ORDER BY), with their requesters' names."""
    rows = await conn.fetchall(f"SELECT {_COLUMNS} FROM approvals WHERE {where}", params)
    names = await tellers.usernames_in(conn, (row[10] for row in rows))
    return [Approval(*row[:11], names.get(row[10], "?"), *row[11:]) for row in rows]


async def request_in(conn, approval_id: int) -> Approval | None:
    found = await _requests_in(conn, "id = ?", (approval_id,))
    return found[0] if found else None


async def get(db: Database, approval_id: int, now: float | None = None) -> Approval | None:
    """One request; with now, the expiry of every request past its time is recorded first (expire_due)."""
    if now is not None:
        await expire_due(db, now)
    return await db.read(lambda conn: request_in(conn, approval_id))


async def hold_in(conn, kind: str, teller, now: float, form_key: str | None = None, *, account_number=None,
                  amount_cents=None, tx_id=None, limit_cents=None, session_id=None, detail: str = "",
                  id_check: str | None = None, card_id: int | None = None,
                  replenishment_id: int | None = None) -> Approval:
    """Hold a request (in the caller's transaction), audited. The same form sent twice (its form_key) is held
    once: the second time answers the first request."""
    rows = await conn.fetchall(
        "INSERT INTO approvals (kind, status, account_number, amount_cents, tx_id, limit_cents, session_id, detail, "
        "id_check, requested_by, form_key, requested_at, expires_at, card_id, replenishment_id) "
        "VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (requested_by, form_key) DO NOTHING "
        "RETURNING id", (kind, account_number, amount_cents, tx_id, limit_cents, session_id, detail, id_check,
                         teller.id, form_key, now, now + EXPIRES_AFTER_S, card_id, replenishment_id))
    if not rows:
        rows = await conn.fetchall("SELECT id FROM approvals WHERE requested_by = ? AND form_key = ?",
                                   (teller.id, form_key))
        return await request_in(conn, rows[0][0])
    held = await request_in(conn, rows[0][0])
    await audit.record(conn, now, teller.actor, "approval requested", held.reference, held.what)
    return held


async def hold(db: Database, kind: str, teller, now: float, form_key: str | None = None, check=None,
               **values) -> Approval:
    """hold_in in a write of its own; check(conn), if given, runs first in the same transaction (and may refuse, or
    answer more of the request's values, as a dict)."""
    async def op(conn):
        async with conn.savepoint():
            found = await check(conn) if check is not None else None
            return await hold_in(conn, kind, teller, now, form_key, **values, **(found or {}))
    return await db.write(op)


async def ask_limit(db: Database, teller, number: str, limit_cents: int | None, now: float) -> Approval:
    """An overdraft limit for account `number` (None: the default, MAX_DEBT), held for a supervisor; checked first
    as it will be set (the account open, the limit not below what it owes)."""
    check_account_number(number)

    async def check(conn):
        await check_limit_in(conn, number, limit_cents, now)

    return await hold(db, "overdraft_limit", teller, now, None, check, account_number=number, limit_cents=limit_cents,
                      detail=DEFAULT_LIMIT if limit_cents is None else "")


async def expire_due(db: Database, now: float) -> None:
    """Record (and audit) the expiry of every pending request past its time."""
    if not await db.read(lambda conn: conn.fetchall(
            "SELECT 1 FROM approvals WHERE status = 'pending' AND expires_at <= ? LIMIT 1", (now,))):
        return

    async def op(conn):
        async with conn.savepoint():
            for approval_id, in await conn.fetchall(
                    "UPDATE approvals SET status = 'expired', decided_at = expires_at "
                    "WHERE status = 'pending' AND expires_at <= ? RETURNING id", (now,)):
                await audit_expiry_in(conn, await request_in(conn, approval_id), now)
    await db.write(op)


async def audit_expiry_in(conn, expired: Approval, now: float) -> None:
    await audit.record(conn, now, "system", "approval expired", expired.reference,
                       f"requested by {expired.requester}: {expired.what}")


async def waiting(db: Database, now: float) -> list[Approval]:
    """Pending requests still in time, oldest first (the expiry of the others recorded first: expire_due)."""
    await expire_due(db, now)
    return await db.read(lambda conn: _requests_in(conn, "status = 'pending' AND expires_at > ? ORDER BY id",
                                                   (now,)))


async def count_waiting_for(db: Database, teller_id: int, now: float) -> int:
    """Pending requests in time that this approver may decide (not their own)."""
    (count,), = await db.read(lambda conn: conn.fetchall(
        "SELECT COUNT(*) FROM approvals WHERE status = 'pending' AND expires_at > ? AND requested_by != ?",
        (now, teller_id)))
    return count


async def recent(db: Database, *, requested_by: int | None = None, limit: int = 50,
                 now: float | None = None) -> list[Approval]:
    """The latest requests (one teller's, if given), newest first; with now, expire_due first."""
    if now is not None:
        await expire_due(db, now)
    where, params = ("requested_by = ?", (requested_by,)) if requested_by is not None else ("true", ())
    return await db.read(lambda conn: _requests_in(conn, f"{where} ORDER BY id DESC LIMIT ?", (*params, limit)))


async def approval_of_entry(db: Database, entry_id: int | None) -> Approval | None:
    """The approved request a journal transaction carried out, if any (its receipt shows who approved it)."""
    if entry_id is None:
        return None
    found = await db.read(lambda conn: _requests_in(conn, "entry_id = ? AND status = 'approved'", (entry_id,)))
    return found[0] if found else None


async def latest_signoff(db: Database, session_id: int) -> Approval | None:
    """The latest sign-off request of a drawer session."""
    found = await db.read(lambda conn: _requests_in(
        conn, "kind = 'drawer_signoff' AND session_id = ? ORDER BY id DESC LIMIT 1", (session_id,)))
    return found[0] if found else None


async def waiting_signoff_in(conn, session_id: int, now: float) -> bool:
    """Whether a sign-off request of this drawer session is still waiting (in the caller's transaction)."""
    return bool(await conn.fetchall("SELECT 1 FROM approvals WHERE kind = 'drawer_signoff' AND session_id = ? "
                                    "AND status = 'pending' AND expires_at > ?", (session_id, now)))


async def receipt_of(db: Database, held: Approval) -> int | None:
    """The customer's journal row an approved request posted (its receipt), if any."""
    if held.entry_id is None:
        return None
    return await journal.customer_row_of(db, held.entry_id)


async def settle_signoff_in(conn, session_id: int, approver, now: float, note: str) -> None:
    """A drawer signed off directly (Admin > Vault) settles its held sign-off request, in the same transaction."""
    await conn.execute("UPDATE approvals SET status = 'approved', decided_by = ?, decided_at = ?, decision_note = ? "
                       "WHERE kind = 'drawer_signoff' AND session_id = ? AND status = 'pending'",
                       (approver.username, now, note, session_id))


REQUESTER_LEFT = "its requester was deactivated"


async def _decline_waiting_of(conn, teller, now: float) -> None:
    """A requester who loses access: their waiting requests are declined (audited), in the same transaction."""
    for approval_id, in await conn.fetchall(
            "UPDATE approvals SET status = 'declined', decided_by = 'system', decided_at = ?, decision_note = ? "
            "WHERE requested_by = ? AND status = 'pending' RETURNING id", (now, REQUESTER_LEFT, teller.id)):
        declined = await request_in(conn, approval_id)
        await audit.record(conn, now, "system", "approval declined", declined.reference,
                           f"requested by {declined.requester}: {declined.what}; note: {REQUESTER_LEFT}")


async def set_teller_active(db: Database, teller_id: int, active: bool, by, now: float):
    """Deactivate or reactivate a teller (tellers.set_active); a deactivation also declines every request of theirs
    still waiting, in its transaction, so nothing is carried out in a leaver's name."""
    return await tellers.set_active(db, teller_id, active, by, now,
                                    also=None if active else lambda conn, teller: _decline_waiting_of(conn, teller,
                                                                                                     now))
