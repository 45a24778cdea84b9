"""The teller's counter as writes: a cash deposit or withdrawal through their drawer (or, above the approval limit,
held for a supervisor), a transfer, and a reversal that pays cash back; each with the holder of an account it opens
and the large-cash rule (large_cash.py), all or nothing. The limits are the branch's settings (core.settings):
APPROVAL_CASH_LIMIT is decided here, CTR_THRESHOLD by large_cash.py, never by a view.

The API's postings (accounts.py, against clearing) are not cash and take none of this; an engine's batched path
never takes these either (a CashPosting has no batch_row).
"""
from dataclasses import dataclass

from atm_web.approvals import requests as approvals
from atm_web.approvals.requests import Approval
from atm_web.cash.drawers import counter_drawer, open_session_in
from atm_web.cash.refusals import AccountOpenedMeanwhile, CounterRefused
from atm_web.core.clock import Stamp
from atm_web.core.money import format_cents
from atm_web.core.refusals import check_amount
from atm_web.core.rules import REVERSING_KIND
from atm_web.core.settings import settings_of
from atm_web.customers.large_cash import IdCheck, crossing, record
from atm_web.customers.records import Details, add_customer, add_holder, customer_in, holders_in
from atm_web.customers.refusals import CustomerRefused
from atm_web.ledger.accounts import Posting, get_account, open_account_in, transfer_in
from atm_web.ledger.idempotency import Once, Replay, at_most_once, purge_expired_keys, replayed
from atm_web.ledger.journal import Transaction, account_open_in, append_pair, posting_stamp
from atm_web.ledger.refusals import (
    AccountNotOpen,
    DrawerNotOpen,
    SameAccount,
    UnknownAccount,
    check_account_number,
    check_reason,
)
from atm_web.ledger.reversals import Reversal, moved_cash, original_in, reverse_in
from atm_web.storage import Database

NEW_HOLDER = 0  # an IdCheck's customer on the confirm step of a new account: the holder being recorded


@dataclass(frozen=True)
class NewHolder:
    """The holder of an account a teller's posting opens: an existing customer, or a new one. Neither (NewHolder())
    stands for a confirm step whose account is open by now: its write replays that form's outcome, or refuses."""
    customer_id: int | None = None
    details: Details | None = None


async def open_with_holder(conn, number: str, holder: NewHolder, actor: str, at: Stamp):
    """Open the account (as its first journal row would) and record its holder, in the caller's transaction, before
    anything is posted on it (so the large-cash rule sees the holder). An account opened meanwhile, by another
    teller's confirm or a script, is refused (AccountOpenedMeanwhile): its holders are not this customer."""
    if not await open_account_in(conn, number, at.created_at):
        raise AccountOpenedMeanwhile(number, [c.full_name for c in await holders_in(conn, number)])
    customer = (await add_customer(conn, holder.details, actor, at.seconds)
                if holder.customer_id is None else await customer_in(conn, holder.customer_id))
    if customer is None:
        raise CustomerRefused("No such customer: search again.")
    await add_holder(conn, number, customer.id, actor, at.seconds)
    return customer


def _present(id_check: IdCheck | None, customer) -> IdCheck | None:
    """The identity check of the confirm step of a new account is of the holder just recorded."""
    if id_check is not None and id_check.customer_id == NEW_HOLDER and customer is not None:
        return IdCheck(customer.id, id_check.checked_by)
    return id_check


@dataclass(frozen=True)
class CashPosting:
    number: str
    kind: str  # deposit or withdrawal
    amount_cents: int
    actor: str
    at: Stamp
    drawer: str  # the account of the teller's open drawer
    threshold_cents: int  # CTR_THRESHOLD
    id_check: IdCheck | None = None
    holder: NewHolder | None = None
    once: Once | None = None

    async def apply(self, conn) -> Transaction:
        """In the caller's transaction, all or nothing (a savepoint)."""
        async with conn.savepoint():
            id_check = self.id_check
            if self.holder is not None:
                id_check = _present(id_check, await open_with_holder(conn, self.number, self.holder, self.actor,
                                                                     self.at))
            day = self.at.today  # the cash day: the branch's calendar date
            above = await crossing(conn, self.number, self.kind, self.amount_cents, day, self.threshold_cents,
                                   id_check)
            posting = Posting(self.number, self.kind, self.amount_cents, self.actor, self.at, None, self.drawer)
            tx = await append_pair(conn, self.number, self.kind, self.amount_cents, self.drawer,
                                   posting.counter_memo, self.actor, self.at)  # cash: it notes it for the day
            await record(conn, above, day, id_check, self.at.seconds, entry_id=tx.entry_id)
            return tx

    async def __call__(self, conn):
        return await at_most_once(conn, self.once, lambda: self.apply(conn))


async def take_cash(db: Database, teller, number: str, kind: str, amount_cents: int, *, now: float,
                    once: Once, id_check: IdCheck | None = None, holder: NewHolder | None = None
                    ) -> Transaction | Approval:
    """A teller's cash deposit or withdrawal at the counter, through their open drawer (DrawerNotOpen without
    one): posted (post_cash), or, for a withdrawal above APPROVAL_CASH_LIMIT (exactly the limit is not above it),
    held for a supervisor with nothing posted (the Approval; such a withdrawal cannot open an account)."""
    check_account_number(number)
    check_amount(amount_cents)
    drawer = await counter_drawer(db, teller)
    limit = settings_of(db).approval_cash_limit_cents
    if kind == "withdrawal" and amount_cents > limit:
        if holder is not None:
            raise CounterRefused(f"A withdrawal above {format_cents(limit)} needs a supervisor's approval and cannot "
                                 "open an account")
        return await hold_withdrawal(db, teller, number, amount_cents, once.key, id_check, now=now)
    return await post_cash(db, number, kind, amount_cents, teller.actor, drawer=drawer, now=now, once=once,
                           id_check=id_check, holder=holder)


async def post_cash(db: Database, number: str, kind: str, amount_cents: int, actor: str, *, drawer: str,
                    now: float, once: Once | None = None, id_check: IdCheck | None = None,
                    holder: NewHolder | None = None, threshold_cents: int | None = None) -> Transaction:
    """Post a teller's cash through `drawer`; an account that is not open is opened only with its holder (else
    AccountNotOpen). threshold_cents: CTR_THRESHOLD unless given."""
    check_account_number(number)
    check_amount(amount_cents)
    if holder is None and not (await get_account(db, number)).exists:
        raise AccountNotOpen(number)
    await purge_expired_keys(db, once)
    threshold = settings_of(db).ctr_threshold_cents if threshold_cents is None else threshold_cents
    result = await db.write(CashPosting(number, kind, amount_cents, actor, posting_stamp(db, now), drawer, threshold,
                                        id_check, holder, once))
    return (await replayed(db, result))[0] if isinstance(result, Replay) else result


async def post_transfer(db: Database, from_number: str, to_number: str, amount_cents: int, actor: str,
                        once: Once | None = None, *, now: float, holder: NewHolder | None = None
                        ) -> tuple[Transaction, Transaction]:
    """A teller's transfer: to an open account, or to a new one opened with its holder in the same write (never
    without: AccountNotOpen asks for the holder first)."""
    check_account_number(from_number, "from_account")
    check_account_number(to_number, "to_account")
    check_amount(amount_cents)
    if from_number == to_number:
        raise SameAccount()
    if not (await get_account(db, from_number)).exists:  # said first: no holder is asked for a transfer from nothing
        raise UnknownAccount(from_number)
    if holder is None and not (await get_account(db, to_number)).exists:
        raise AccountNotOpen(to_number)
    at = posting_stamp(db, now)

    async def apply(conn):
        async with conn.savepoint():
            if holder is not None:
                if not await account_open_in(conn, from_number):  # before the new account is opened
                    raise UnknownAccount(from_number)
                await open_with_holder(conn, to_number, holder, actor, at)
            return await transfer_in(conn, from_number, to_number, amount_cents, actor, at)

    await purge_expired_keys(db, once)
    result = await db.write(lambda conn: at_most_once(conn, once, lambda: apply(conn)))
    return await replayed(db, result) if isinstance(result, Replay) else result


async def _open_drawer_of(conn, teller) -> str:
    drawer = await open_session_in(conn, teller.id)
    if drawer is None:
        raise DrawerNotOpen(f"{teller.username}'s drawer is not open: a reversal of cash pays through the drawer of "
                            "the teller who asked for it")
    return drawer.account_number


async def check_reversal_in(conn, tx_id: int, teller, threshold_cents: int, id_check: IdCheck | None, at: Stamp):
    """Whether entry tx_id may be reversed at the counter as `teller` asks (in the caller's transaction): the
    original, and for one that moved cash, the teller's open drawer (DrawerNotOpen without one) and the large-cash
    rule for the cash it pays back (NeedsIdentityCheck...): (original, drawer or None, customers taken above)."""
    original = await original_in(conn, tx_id)
    if not await moved_cash(conn, original):
        return original, None, []
    drawer = await _open_drawer_of(conn, teller)
    above = await crossing(conn, original.account_number, REVERSING_KIND[original.kind], original.amount_cents,
                           at.today, threshold_cents, id_check)
    return original, drawer, above


async def reverse_at_counter_in(conn, tx_id: int, reason: str, teller, threshold_cents: int,
                                id_check: IdCheck | None, now: float, at: Stamp) -> Reversal:
    """A reversal asked by `teller` (in their name, in the caller's transaction): cash it pays back goes through
    their open drawer and counts, on its cash day, for the large-cash rule like any cash."""
    async with conn.savepoint():
        _, drawer, above = await check_reversal_in(conn, tx_id, teller, threshold_cents, id_check, at)
        done = await reverse_in(conn, tx_id, reason, teller.actor, now, at, cash_account=drawer)
        if drawer is not None:  # cash: reverse_in noted it for the day
            await record(conn, above, at.today, id_check, now, entry_id=done.rows[0].entry_id)
        return done


async def reverse_at_counter(db: Database, tx_id: int, reason: str, teller, *, now: float,
                             threshold_cents: int | None = None, id_check: IdCheck | None = None) -> Reversal:
    """reverse_at_counter_in in a write of its own (an approval carries it out in the decision's write)."""
    reason = check_reason(reason)
    at = posting_stamp(db, now)
    threshold = settings_of(db).ctr_threshold_cents if threshold_cents is None else threshold_cents
    return await db.write(lambda conn: reverse_at_counter_in(conn, tx_id, reason, teller, threshold, id_check, now,
                                                             at))


async def hold_withdrawal(db: Database, teller, number: str, amount_cents: int, form_key: str,
                          id_check: IdCheck | None, *, now: float):
    """A withdrawal to hold for a supervisor (approvals.py): nothing posted. Checked first as its posting will be
    (the account open, the large-cash rule with its identity check), so the approval does not fail for what the
    teller can put right now."""
    check_account_number(number)
    check_amount(amount_cents)
    at = posting_stamp(db, now)

    async def check(conn):
        if not await account_open_in(conn, number):
            raise UnknownAccount(number)
        await crossing(conn, number, "withdrawal", amount_cents, at.today, settings_of(db).ctr_threshold_cents,
                       id_check)

    return await approvals.hold(db, "withdrawal", teller, now, form_key, check, account_number=number,
                                amount_cents=amount_cents, id_check=id_check.to_json() if id_check else None)


async def ask_reversal(db: Database, teller, tx_id: int, reason: str, form_key: str | None,
                       id_check: IdCheck | None, *, now: float):
    """A reversal to hold for a supervisor: nothing posted. Checked first as it will be carried out (reversible;
    for cash, the teller's drawer open and the large-cash rule with its identity check)."""
    reason = check_reason(reason)
    at = posting_stamp(db, now)

    async def check(conn):
        await check_reversal_in(conn, tx_id, teller, settings_of(db).ctr_threshold_cents, id_check, at)

    return await approvals.hold(db, "reversal", teller, now, form_key, check, tx_id=tx_id, detail=reason,
                                id_check=id_check.to_json() if id_check else None)
