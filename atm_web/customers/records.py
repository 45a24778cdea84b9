"""Customers: their records (every change audited), the accounts they hold, and the search tellers find them by.

A customer's personal data is for logged-in staff: it is never logged, and the audit log names the fields a change
touched, not their values. Every page that shows records logs who read which (customer_reads: ids, never data).
"""
from dataclasses import dataclass, fields

from atm_web.core import audit
from atm_web.core.clock import iso
from atm_web.customers.refusals import CustomerRefused
from atm_web.ledger.accounts import balances_in
from atm_web.ledger.journal import account_open_in
from atm_web.ledger.refusals import AccountNotFound
from atm_web.storage import Database, IntegrityError

SEARCH_MAX = 20  # matches listed for one search


@dataclass(frozen=True)
class Details:
    """What a teller records about a customer (forms.CustomerForm checks each field)."""
    full_name: str
    date_of_birth: str  # YYYY-MM-DD
    document_type: str
    document_number: str
    document_country: str  # ISO 3166 alpha-2
    address: str
    phone: str


DETAIL_FIELDS = tuple(field.name for field in fields(Details))
_COLUMNS = ", ".join(("id", *DETAIL_FIELDS, "created_at", "created_by"))
_C_COLUMNS = ", ".join(f"c.{name}" for name in ("id", *DETAIL_FIELDS, "created_at", "created_by"))


@dataclass(frozen=True)
class Customer(Details):
    id: int = 0
    created_at: str = ""
    created_by: str = ""

    @property
    def document(self) -> str:
        return f"{self.document_type} {self.document_number} ({self.document_country})"


def _customer(row) -> Customer:
    return Customer(*row[1:8], id=row[0], created_at=row[8], created_by=row[9])


async def customer_in(conn, customer_id: int) -> Customer | None:
    rows = await conn.fetchall(f"SELECT {_COLUMNS} FROM customers WHERE id = ?", (customer_id,))
    return _customer(rows[0]) if rows else None


def _document_taken(error: IntegrityError) -> bool:
    return "document" in (error.constraint or "")


async def add_customer(conn, details: Details, actor: str, now: float) -> Customer:
    """A new customer, in the caller's transaction, audited."""
    try:
        async with conn.refusable():
            (customer_id,), = await conn.fetchall(
                f"INSERT INTO customers ({', '.join(DETAIL_FIELDS)}, name_folded, created_at, created_by) "
                f"VALUES ({', '.join('?' * len(DETAIL_FIELDS))}, ?, ?, ?) RETURNING id",
                (*(getattr(details, name) for name in DETAIL_FIELDS), details.full_name.casefold(), iso(now),
                 actor))
    except IntegrityError as error:
        if _document_taken(error):
            raise CustomerRefused("A customer with this identity document is on file already: find them by its "
                                  "number.") from None
        raise
    await audit.record(conn, now, actor, "customer added", f"customer {customer_id}")
    return await customer_in(conn, customer_id)


async def create_customer(db: Database, details: Details, actor: str, now: float) -> Customer:
    async def op(conn):
        async with conn.savepoint():
            return await add_customer(conn, details, actor, now)
    return await db.write(op)


async def update_customer(db: Database, customer_id: int, details: Details, actor: str, now: float) -> Customer:
    """Change a customer's record, audited with the names of the fields changed."""
    async def op(conn):
        async with conn.savepoint():
            before = await customer_in(conn, customer_id)
            if before is None:
                raise CustomerRefused("No such customer.")
            changed = [name for name in DETAIL_FIELDS if getattr(before, name) != getattr(details, name)]
            if not changed:
                return before
            try:
                async with conn.refusable():
                    await conn.execute(
                        f"UPDATE customers SET {', '.join(f'{name} = ?' for name in DETAIL_FIELDS)}, name_folded = ? "
                        "WHERE id = ?", (*(getattr(details, name) for name in DETAIL_FIELDS),
                                         details.full_name.casefold(), customer_id))
            except IntegrityError as error:
                if _document_taken(error):
                    raise CustomerRefused("Another customer has this identity document.") from None
                raise
            await audit.record(conn, now, actor, "customer changed", f"customer {customer_id}",
                               "changed: " + ", ".join(changed))
            return await customer_in(conn, customer_id)
    return await db.write(op)


async def get_customer(db: Database, customer_id: int) -> Customer | None:
    return await db.read(lambda conn: customer_in(conn, customer_id))


async def note_reads(db: Database, reader: str, action: str, customer_ids, now: float) -> None:
    """Keep who read which customers' records (ids only, never the data), before the records are shown: a read
    that cannot be logged is not shown (the write's failure is the request's)."""
    ids = ",".join(str(customer_id) for customer_id in customer_ids)
    if ids:
        await db.write(lambda conn: conn.execute(
            "INSERT INTO customer_reads (at, actor, action, customer_ids) VALUES (?, ?, ?, ?)",
            (iso(now), reader, action, ids)))


async def view_customer(db: Database, customer_id: int, reader: str, now: float) -> Customer | None:
    """A customer's record for a page that shows it, the read logged (note_reads)."""
    customer = await get_customer(db, customer_id)
    if customer is not None:
        await note_reads(db, reader, "record viewed", [customer.id], now)
    return customer


@dataclass(frozen=True)
class Read:
    id: int
    at: str
    actor: str
    action: str
    customer_ids: str


async def reads(db: Database, limit: int = 200) -> list[Read]:
    """The latest reads of customers' records, newest first (Admin > Read access)."""
    rows = await db.read(lambda conn: conn.fetchall(
        "SELECT id, at, actor, action, customer_ids FROM customer_reads ORDER BY id DESC LIMIT ?", (limit,)))
    return [Read(*row) for row in rows]


async def add_holder(conn, number: str, customer_id: int, actor: str, now: float) -> None:
    """Make a customer a holder of an open account, in the caller's transaction, audited."""
    if not await account_open_in(conn, number):
        raise AccountNotFound(number)
    if await customer_in(conn, customer_id) is None:
        raise CustomerRefused("No such customer.")
    if await conn.fetchall("SELECT 1 FROM account_holders WHERE account_number = ? AND customer_id = ?",
                           (number, customer_id)):
        raise CustomerRefused("This customer already holds this account.")
    await conn.execute("INSERT INTO account_holders (account_number, customer_id, added_at, added_by) "
                       "VALUES (?, ?, ?, ?)", (number, customer_id, iso(now), actor))
    await audit.record(conn, now, actor, "holder added", number, f"customer {customer_id}")


async def holders_in(conn, number: str) -> list[Customer]:
    rows = await conn.fetchall(
        f"SELECT {_C_COLUMNS} FROM customers c "
        "JOIN account_holders h ON h.customer_id = c.id WHERE h.account_number = ? ORDER BY h.added_at, c.id",
        (number,))
    return [_customer(row) for row in rows]


async def holders_of(db: Database, number: str) -> list[Customer]:
    return await db.read(lambda conn: holders_in(conn, number))


async def accounts_of(db: Database, customer_ids) -> dict[int, list[tuple[str, int]]]:
    """The accounts each customer holds, with their balances: {customer id: [(number, balance cents)]}."""
    customer_ids = list(customer_ids)
    if not customer_ids:
        return {}

    async def op(conn):
        rows = await conn.fetchall(
            "SELECT customer_id, account_number FROM account_holders WHERE customer_id IN "
            f"({','.join('?' * len(customer_ids))}) ORDER BY account_number", customer_ids)
        return rows, await balances_in(conn, [number for _, number in rows])  # the ledger's to give

    rows, balances = await db.read(op, snapshot=True)
    held: dict[int, list[tuple[str, int]]] = {customer_id: [] for customer_id in customer_ids}
    for customer_id, number in rows:
        held[customer_id].append((number, balances[number]))
    return held


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# Finding customers by part of a name, through an index fit for it on each engine (migration 0016 / 0009): three
# characters or more, anywhere in the name, by trigrams (SQLite's FTS5 table customer_names, PostgreSQL's pg_trgm
# index on name_folded); one or two, the names that begin with them (an ordinary index). Or an identity document's
# number, exactly.
_BY_PART = {
    "sqlite": "id IN (SELECT rowid FROM customer_names WHERE customer_names MATCH :part)",
    "postgresql": "name_folded LIKE :part ESCAPE '\\'",
}
_BY_START = {
    "sqlite": "(name_folded >= :low AND name_folded < :high)",
    "postgresql": "(name_folded COLLATE \"C\" >= :low AND name_folded COLLATE \"C\" < :high)",
}
TRIGRAM = 3  # characters a part of a name needs to be found anywhere in it
_AFTER_EVERY_CHARACTER = "\U0010ffff"


def _name_condition(engine: str, folded: str) -> tuple[str, dict]:
    if len(folded) >= TRIGRAM:
        part = '"' + folded.replace('"', '""') + '"' if engine == "sqlite" else _like(folded)
        return _BY_PART[engine], {"part": part}
    return _BY_START[engine], {"low": folded, "high": folded + _AFTER_EVERY_CHARACTER}


async def search(db: Database, text: str, reader: str, now: float) -> list[Customer]:
    """Customers whose name holds the text (any case; one or two characters: whose name begins with them), or whose
    identity document number is the text; the records listed are logged as read by `reader` (note_reads)."""
    text = (text or "").strip()
    if not text:
        return []
    condition, params = _name_condition(db.engine, text.casefold())
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT {_COLUMNS} FROM customers WHERE {condition} OR document_number = :document "
        "ORDER BY full_name, id LIMIT :most", {**params, "document": text.upper(), "most": SEARCH_MAX}))
    found = [_customer(row) for row in rows]
    await note_reads(db, reader, "search listed", (c.id for c in found), now)
    return found
