"""Deciding a held request: a supervisor or administrator other than the teller approves it, which carries it out
exactly once with the values the teller entered, or declines it; past its 15 minutes it expires instead.

The decision and what it carries out are one write: the request's status moves from pending only once (the
decision reads and changes it in the write's transaction, and writes take turns), so an approval clicked twice,
or by two supervisors at once, posts once; a refusal by the ledger (the account's limit, the drawer's cash)
leaves the request pending and nothing written.
"""
from dataclasses import dataclass

from atm_web.approvals.refusals import ApprovalRefused, SelfApproval
from atm_web.approvals.requests import DEFAULT_LIMIT, REQUESTER_LEFT, Approval, audit_expiry_in, request_in
from atm_web.cash import drawers, replenishment
from atm_web.cash.cash_desk import CashPosting, reverse_at_counter_in
from atm_web.core import audit
from atm_web.core.refusals import checked_note
from atm_web.core.settings import settings_of
from atm_web.customers import cards
from atm_web.customers.large_cash import IdCheck
from atm_web.ledger.accounts import set_limit_in
from atm_web.ledger.journal import posting_stamp
from atm_web.ledger.refusals import DrawerNotOpen
from atm_web.staff.tellers import check_still_allowed_in, teller_in
from atm_web.storage import Database


@dataclass(frozen=True)
class Decision:
    approval: Approval
    outcome: str  # approved, declined, expired
    receipt_id: int | None = None  # the customer's journal row it posted, if any


async def decide(db: Database, approval_id: int, approver, approve: bool, note: str, *, now: float,
                 threshold_cents: int | None = None) -> Decision:
    """Approve (carry it out) or decline a pending request; SelfApproval for the requester's own. The approver must
    still be a supervisor or administrator, in an open session, when the decision is written (NoLongerAuthorised)."""
    note = checked_note(note, ApprovalRefused, "A decision needs a note")
    if threshold_cents is None:  # CTR_THRESHOLD, for the cash an approval pays
        threshold_cents = settings_of(db).ctr_threshold_cents
    if not approver.can_approve:
        raise ApprovalRefused("Only a supervisor or an administrator decides requests.")
    at = posting_stamp(db, now)

    async def expire(conn, held: Approval) -> Decision:
        async with conn.savepoint():
            await conn.execute("UPDATE approvals SET status = 'expired', decided_at = expires_at WHERE id = ?",
                               (held.id,))
            await audit_expiry_in(conn, held, now)
            return Decision(await request_in(conn, held.id), "expired")

    async def op(conn):
        await check_still_allowed_in(conn, approver, lambda current: current.can_approve)
        held = await request_in(conn, approval_id)
        if held is None:
            raise ApprovalRefused("No such request.")
        if held.requested_by == approver.id:
            raise SelfApproval()
        if held.status != "pending":
            raise ApprovalRefused(f"Request {held.reference} was {held.status} already"
                                  + (f" by {held.decided_by}" if held.decided_by else "") + ": nothing more was done.")
        if now >= held.expires_at:
            return await expire(conn, held)
        async with conn.savepoint():
            receipt_id = entry_id = None
            if approve:
                receipt_id, entry_id = await _carry_out(conn, db, held, approver, note, now, at, threshold_cents)
            elif held.kind == "atm_replenishment":  # declined: nothing was moved, the ATM may be counted again
                await replenishment.cancel_in(conn, held.replenishment_id, approver.actor, at)
            await conn.execute(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, decision_note = ?, entry_id = ? "
                "WHERE id = ? AND status = 'pending'",
                ("approved" if approve else "declined", approver.username, now, note, entry_id, held.id))
            await audit.record(conn, now, approver.actor, "approval approved" if approve else "approval declined",
                               held.reference, f"requested by {held.requester}: {held.what}; note: {note}")
            return Decision(await request_in(conn, held.id), "approved" if approve else "declined", receipt_id)

    return await db.write(op)


async def _requester(conn, held: Approval):
    return await teller_in(conn, held.requested_by)


async def _carry_out(conn, db, held: Approval, approver, note, now, at, threshold_cents):
    """Do what was asked, as the teller asked it and in their name: (the customer's row, its transaction)."""
    teller = await _requester(conn, held)
    if not teller.active:  # a deactivation declines its requests in its own write: this is belt and braces
        raise ApprovalRefused(f"Request {held.reference} cannot be carried out: {REQUESTER_LEFT}.")
    if held.kind == "withdrawal":
        drawer = await drawers.open_session_in(conn, teller.id)
        if drawer is None:
            raise DrawerNotOpen(f"{teller.username}'s drawer is not open: the cash cannot be paid out. Nothing was "
                                "posted; the request still waits.")
        tx = await CashPosting(held.account_number, "withdrawal", held.amount_cents, teller.actor, at,
                               drawer.account_number, threshold_cents, IdCheck.from_json(held.id_check)).apply(conn)
        return tx.id, tx.entry_id
    if held.kind == "reversal":
        done = await reverse_at_counter_in(conn, held.tx_id, held.detail, teller, threshold_cents,
                                           IdCheck.from_json(held.id_check), now, at)
        return done.rows[0].id, done.rows[0].entry_id
    if held.kind == "overdraft_limit":
        limit = None if held.detail == DEFAULT_LIMIT else held.limit_cents
        await set_limit_in(conn, held.account_number, limit, db.max_debt_cents, teller.actor, now)
        return None, None
    if held.kind == "card_unblock":
        await cards.unblock_in(conn, held.card_id, teller, approver, now)
        return None, None
    if held.kind == "atm_replenishment":
        entry_id = await replenishment.confirm_in(conn, held.replenishment_id, teller, approver, now,
                                                  settings_of(db).variance_tolerance_cents, at)
        return None, entry_id
    if held.kind == "atm_signoff":
        await replenishment.sign_off_in(conn, held.replenishment_id, approver, note, now, at)
        return None, None
    await drawers.sign_off_in(conn, held.session_id, approver, note, now, at)
    return None, None
