"""A teller's cash deposit or withdrawal as one write: the posting through their drawer, the holder of an account
it opens, and the large-cash rule (large_cash.py), all or nothing.

The API's postings (accounts.py, against clearing) are not cash and take none of this; an engine's batched path
never takes these either (a CashPosting has no batch_row).
"""
from dataclasses import dataclass

from . import approvals
from .accounts import Posting, get_account
from .clock import Stamp
from .customers import Details, add_customer, add_holder, get_in
from .idempotency import Once, Replay, at_most_once, purge_expired_keys, replayed
from .journal import Transaction, account_is_open, append_pair, business_date, stamp
from .large_cash import IdCheck, crossing, record
from .refusals import AccountNotOpen, CustomerRefused, UnknownAccount, check_account_number, check_amount
from .storage import Database

NEW_HOLDER = 0  # an IdCheck's customer on the confirm step of a new account: the holder being recorded


@dataclass(frozen=True)
class NewHolder:
    """The holder of an account a deposit opens: an existing customer, or a new one."""
    customer_id: int | None = None
    details: Details | None = None


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
                customer = await self._open_with_holder(conn)
                if id_check is not None and id_check.customer_id == NEW_HOLDER and customer is not None:
                    id_check = IdCheck(customer.id, id_check.checked_by)  # the holder just recorded is present
            day = await business_date(conn, self.at.today)
            above = await crossing(conn, self.number, self.kind, self.amount_cents, day, self.threshold_cents,
                                   id_check)
            posting = Posting(self.number, self.kind, self.amount_cents, self.actor, self.at, None, self.drawer)
            tx = await append_pair(conn, self.number, self.kind, self.amount_cents, self.drawer,
                                   posting.counter_memo, self.actor, self.at)
            await record(conn, above, tx.entry_id, day, id_check, self.at.seconds)
            return tx

    async def _open_with_holder(self, conn):
        """Open the account (as its first journal row would) and record its holder before the cash is posted, so
        the large-cash rule sees the holder. An account opened meanwhile (another teller's confirm) keeps the
        holders it has: more are added on its page."""
        if not await conn.fetchall(
                "INSERT INTO accounts (account_number, balance_cents, overdraft_limit_cents, opened_at) "
                "SELECT ?, 0, max_debt_cents, ? FROM settings WHERE true ON CONFLICT (account_number) DO NOTHING "
                "RETURNING account_number", (self.number, self.at.created_at)):
            return None
        customer = (await add_customer(conn, self.holder.details, self.actor, self.at.seconds)
                    if self.holder.customer_id is None else await get_in(conn, self.holder.customer_id))
        if customer is None:
            raise CustomerRefused("No such customer: search again.")
        await add_holder(conn, self.number, customer.id, self.actor, self.at.seconds)
        return customer

    async def __call__(self, conn):
        return await at_most_once(conn, self.once, lambda: self.apply(conn))


async def post_cash(db: Database, number: str, kind: str, amount_cents: int, actor: str, *, drawer: str,
                    threshold_cents: int, now: float, once: Once | None = None, id_check: IdCheck | None = None,
                    holder: NewHolder | None = None) -> Transaction:
    """Post a teller's cash; an account that is not open is opened only with its holder (else AccountNotOpen)."""
    check_account_number(number)
    check_amount(amount_cents)
    if holder is None and not (await get_account(db, number)).exists:
        raise AccountNotOpen(number)
    await purge_expired_keys(db, once)
    result = await db.write(CashPosting(number, kind, amount_cents, actor, stamp(db, now), drawer, threshold_cents,
                                        id_check, holder, once))
    return (await replayed(db, result))[0] if isinstance(result, Replay) else result


async def hold_withdrawal(db: Database, teller, number: str, amount_cents: int, form_key: str,
                          id_check: IdCheck | None, *, now: float, threshold_cents: int):
    """A withdrawal to hold for a supervisor (approvals.py): nothing posted. Checked first as its posting will be
    (the account open, the large-cash rule with its identity check), so the approval does not fail for what the
    teller can put right now."""
    check_account_number(number)
    check_amount(amount_cents)
    at = stamp(db, now)

    async def check(conn):
        if not await account_is_open(conn, number):
            raise UnknownAccount(number)
        await crossing(conn, number, "withdrawal", amount_cents, await business_date(conn, at.today),
                       threshold_cents, id_check)

    return await approvals.hold(db, "withdrawal", teller, now, form_key, check, account_number=number,
                                amount_cents=amount_cents, id_check=id_check.to_json() if id_check else None)
