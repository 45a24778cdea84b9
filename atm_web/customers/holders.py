"""Recording another holder of an open account, with the large-cash rule re-applied to that customer's day: the
account's cash of the day counts for its new holder from then on, so a holder added to an account that took cash
today may need the identity check then (and is reported), as that cash would have needed had they held it."""
from atm_web.core.settings import settings_of
from atm_web.customers.large_cash import IdCheck, holder_crossing, record
from atm_web.customers.records import Customer, Details, add_customer, add_holder, customer_in
from atm_web.customers.refusals import CustomerRefused
from atm_web.ledger.journal import posting_stamp
from atm_web.ledger.refusals import check_account_number
from atm_web.storage import Database

NEW_CUSTOMER = 0  # an IdCheck's customer when the holder is a new customer, recorded with it


async def link_holder(db: Database, number: str, customer_id: int | None, details: Details | None, actor: str,
                      now: float, *, id_check: IdCheck | None = None, threshold_cents: int | None = None
                      ) -> Customer:
    """Record a holder of an open account: an existing customer, or a new one made from details; refused
    (NeedsIdentityCheck, nothing written) when the account's cash today takes the customer's day above the
    threshold and their identity check (id_check, of this customer, or NEW_CUSTOMER) is not recorded."""
    check_account_number(number)
    day = posting_stamp(db, now).today
    if threshold_cents is None:  # CTR_THRESHOLD
        threshold_cents = settings_of(db).ctr_threshold_cents

    async def op(conn):
        async with conn.savepoint():
            customer = (await add_customer(conn, details, actor, now) if customer_id is None
                        else await customer_in(conn, customer_id))
            if customer is None:
                raise CustomerRefused("No such customer.")
            await add_holder(conn, number, customer.id, actor, now)
            check = id_check
            if check is not None and check.customer_id == NEW_CUSTOMER:
                check = IdCheck(customer.id, check.checked_by)
            if await holder_crossing(conn, number, customer, day, threshold_cents, check):
                await record(conn, [customer], day, check, now, holder_added_to=number)
            return customer
    return await db.write(op)
