"""The ledger's side of a business day: its rows, the transactions that do not balance, a cash account's balance
before it, what the cash accounts hold, and moving postings on to the next business date (Close the day,
cash/end_of_day.py, reads and does these through here)."""
from atm_web.core.rules import CASH_KINDS
from atm_web.ledger.journal import SIGNED_SQL

DAY_COLUMNS = "id, account_number, kind, amount_cents, created_at, actor, entry_id, memo"


async def rows_in(conn, day: str) -> list[tuple]:
    """The day's journal rows (DAY_COLUMNS), in order."""
    return await conn.fetchall(f"SELECT {DAY_COLUMNS} FROM journal WHERE business_date = ? ORDER BY id", (day,))


async def row_count_in(conn, day: str) -> int:
    (count,), = await conn.fetchall("SELECT COUNT(*) FROM journal WHERE business_date = ?", (day,))
    return count


async def balance_before_in(conn, number: str, day: str) -> int:
    """An account's balance at the start of the day: after its last row of an earlier day (0 without one)."""
    rows = await conn.fetchall(
        "SELECT balance_after_cents FROM journal WHERE account_number = ? AND (business_date < ? OR "
        "business_date IS NULL) ORDER BY id DESC LIMIT 1", (number, day))
    return rows[0][0] if rows else 0


async def unbalanced_in(conn, day: str) -> list[tuple[int, int]]:
    """(entry, sum) of the day's transactions whose rows do not sum to zero."""
    return [tuple(row) for row in await conn.fetchall(
        f"SELECT entry_id, CAST(sum({SIGNED_SQL}) AS BIGINT) FROM journal WHERE business_date = ? "
        f"GROUP BY entry_id HAVING sum({SIGNED_SQL}) != 0 ORDER BY 1", (day,))]


async def cash_totals_in(conn) -> tuple[int, int]:
    """(what the cash accounts' journal rows sum to, the cash their balances hold): equal when cash agrees (cash
    stands at minus the notes held)."""
    kinds = ", ".join(f"'{kind}'" for kind in CASH_KINDS)
    (journal_cash,), = await conn.fetchall(
        f"SELECT CAST(coalesce(sum({SIGNED_SQL}), 0) AS BIGINT) FROM journal WHERE account_number IN "
        f"(SELECT account_number FROM accounts WHERE kind IN ({kinds}))")
    (held,), = await conn.fetchall(
        f"SELECT CAST(coalesce(-sum(balance_cents), 0) AS BIGINT) FROM accounts WHERE kind IN ({kinds})")
    return journal_cash, held


async def posted_after_in(conn, day: str) -> bool:
    """Whether any row carries a later business date."""
    return bool(await conn.fetchall("SELECT 1 FROM journal WHERE business_date > ? LIMIT 1", (day,)))


async def move_on_in(conn, next_day: str) -> None:
    """From now on, postings carry next_day as their business date at the earliest (the day before is closed)."""
    await conn.execute("UPDATE settings SET earliest_business_date = ?", (next_day,))
