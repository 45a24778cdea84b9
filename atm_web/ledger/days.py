"""The ledger's side of a business day: its rows (read once, in order), the cash each cash account held at its
start and at its end, recording that end when the day is closed, and moving postings on to the next business date
(Close the day, cash/end_of_day.py, reads and does these through here).

Every cost here follows the day, never the history: a day opens from what Close the day recorded for the last
closed day before it (closing_cash), plus any rows of days between that were never closed; the cash held now is
read through the index of the accounts holding cash (the vault and the open drawers).
"""
from atm_web.core.rules import ATM_PREFIX, DRAWER_PREFIX, VAULT
from atm_web.ledger.journal import ROW_COLUMNS, SIGNED_SQL, JournalRow

_DATE = JournalRow._fields.index("business_date")
_CASH_ACCOUNT = (f"(account_number = '{VAULT}' OR account_number LIKE '{DRAWER_PREFIX}%' "
                 f"OR account_number LIKE '{ATM_PREFIX}%')")
# The accounts holding cash now, through accounts_holding_cash (the same condition as the index's, word for word,
# which SQLite needs to use a partial index).
_HOLDING_CASH = ("SELECT account_number, balance_cents FROM accounts "
                 "WHERE kind IN ('vault', 'drawer') AND balance_cents != 0")


async def rows_in(conn, day: str):
    """The day's journal rows (JournalRow), in order, as an async iterator of lists of them (a list per chunk the
    connection reads: a day's 100,000 rows go through one loop, not through async iterators one by one): read once,
    never held. Read as the range of ids from the day's first row to its last, in the table's own order (a seek of
    the date's index per row costs half as much again), the few rows of other dates in it skipped (a posting after
    Close the day, a server whose clock ran behind)."""
    (first, last), = await conn.fetchall(
        "SELECT min(id), max(id) FROM journal WHERE business_date = ?", (day,))
    if first is None:
        return
    async for rows in conn.chunks(f"SELECT {ROW_COLUMNS} FROM journal WHERE id BETWEEN ? AND ? ORDER BY id",
                                  (first, last), alone=True):
        yield [JournalRow(*row) for row in rows if row[_DATE] == day]


async def rows_before_in(conn, day: str) -> dict[str, tuple[str | None, int]]:
    """For each account with rows of the day: the hash and balance after of its row just before its first of the
    day (None and 0 for an account opened that day). One statement: the day's accounts through its date's index,
    then one seek of journal_by_account each."""
    return {number: (hash_, balance or 0) for number, hash_, balance in await conn.fetchall(
        "SELECT f.account_number, j.hash, j.balance_after_cents FROM "
        "(SELECT account_number, min(id) AS first_id FROM journal WHERE business_date = ? GROUP BY account_number) f "
        "LEFT JOIN journal j ON j.id = (SELECT p.id FROM journal p WHERE p.account_number = f.account_number "
        "AND p.id < f.first_id ORDER BY p.id DESC LIMIT 1)", (day,))}


async def row_count_in(conn, day: str) -> int:
    (count,), = await conn.fetchall("SELECT COUNT(*) FROM journal WHERE business_date = ?", (day,))
    return count


async def _moved_in(conn, where: str, params) -> dict[str, int]:
    """What the cash accounts' rows `where` selects add to each (through journal_by_business_date)."""
    # MATERIALIZED: the rows found through the dates first, then summed (else SQLite walks every account's rows in
    # account order to group them)
    return {number: moved for number, moved in await conn.fetchall(
        f"WITH r AS MATERIALIZED (SELECT account_number, kind, amount_cents FROM journal WHERE {where} "
        f"AND {_CASH_ACCOUNT}) SELECT account_number, CAST(sum({SIGNED_SQL}) AS BIGINT) FROM r "
        "GROUP BY account_number", params) if moved}


def _plus(one: dict[str, int], other: dict[str, int], sign: int = 1) -> dict[str, int]:
    total = dict(one)
    for number, cents in other.items():
        total[number] = total.get(number, 0) + sign * cents
    return {number: cents for number, cents in total.items() if cents}


async def opening_cash_in(conn, day: str) -> dict[str, int]:
    """Each cash account's balance at the start of the day (cash stands at minus the notes), those not empty: the
    close recorded for the last closed day before it, plus the rows of any day between that was never closed."""
    (last_closed,), = await conn.fetchall("SELECT max(business_date) FROM closed_days WHERE business_date < ?",
                                          (day,))
    closed = dict(await conn.fetchall(
        "SELECT account_number, balance_cents FROM closing_cash WHERE business_date = ?", (last_closed,))) \
        if last_closed else {}
    between = await _moved_in(conn, "business_date > ? AND business_date < ?", (last_closed or "", day))
    return _plus(closed, between)


async def holding_cash_in(conn) -> dict[str, int]:
    """Each cash account holding cash now, with its balance."""
    return dict(await conn.fetchall(_HOLDING_CASH))


async def closing_cash_in(conn, day: str, closed: bool) -> dict[str, int]:
    """Each cash account's balance at the end of the day, by its balances (not by the day's rows): as recorded
    when the day was closed; for a day not closed, the balances now less the rows of later days (none, for the
    current day)."""
    if closed:
        return dict(await conn.fetchall(
            "SELECT account_number, balance_cents FROM closing_cash WHERE business_date = ?", (day,)))
    return _plus(await holding_cash_in(conn), await _moved_in(conn, "business_date > ?", (day,)), -1)


async def record_closing_in(conn, day: str) -> dict[str, int]:
    """At Close the day (every drawer closed, no later row): what each cash account holds, kept as the day's
    close (the next day opens from it)."""
    held = await holding_cash_in(conn)
    for number, cents in held.items():
        await conn.execute("INSERT INTO closing_cash (business_date, account_number, balance_cents) VALUES (?, ?, ?)",
                           (day, number, cents))
    return held


async def posted_after_in(conn, day: str) -> bool:
    """Whether any row carries a later business date."""
    return bool(await conn.fetchall("SELECT 1 FROM journal WHERE business_date > ? LIMIT 1", (day,)))


async def move_on_in(conn, next_day: str) -> None:
    """From now on, postings carry next_day as their business date at the earliest (the day before is closed)."""
    await conn.execute("UPDATE settings SET earliest_business_date = ?", (next_day,))
