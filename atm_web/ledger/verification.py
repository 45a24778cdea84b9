"""Verification: every hash chain, journal sum, balance and limit recomputed from one snapshot, and the outcomes
kept for the admin page."""
from atm_web.core.clock import journal_time
from atm_web.core.rules import CASH_KINDS
from atm_web.ledger.journal import ACCOUNT_COLUMNS, SIGNED_SQL, TX_COLUMNS, Transaction, row_hash
from atm_web.storage import Database

# Transactions whose rows do not sum to zero, or that have one row only. Rows written before double entry belong
# to entry 0 with the opening entry, which gave clearing their other side.
_UNBALANCED = (f"SELECT coalesce(entry_id, 0), CAST(sum({SIGNED_SQL}) AS BIGINT), count(*) FROM journal "
               f"GROUP BY coalesce(entry_id, 0) "
               f"HAVING sum({SIGNED_SQL}) != 0 OR (count(*) < 2 AND coalesce(entry_id, 0) != 0) ORDER BY 1")


async def verify(db: Database) -> tuple[list[str], int]:
    """(problems, rows checked): recomputes every account's hash chain and journal sums, checks every balance
    equals its journal and respects its limit, every transaction's rows and all balances sum to zero, and no
    cash account holds less than nothing. No problems: the ledger is sound. The first problem named is the
    first bad journal row."""

    async def op(conn):
        problems, rows_checked = [], 0
        running: dict[str, int] = {}
        last_hash: dict[str, str | None] = {}
        async for row in conn.stream(f"SELECT {TX_COLUMNS}, hash FROM journal ORDER BY id"):
            rows_checked += 1
            tx, stored = Transaction(*row[:-1]), row[-1]
            balance = running.get(tx.account_number, 0) + tx.signed_cents
            running[tx.account_number] = balance
            if balance != tx.balance_after_cents:
                problems.append(f"journal row {tx.id}: balance after is {tx.balance_after_cents}, "
                                f"the journal sums to {balance}")
            previous = last_hash.get(tx.account_number)
            if stored is None:
                if previous is not None:
                    problems.append(f"journal row {tx.id}: no hash after hashed rows (removed?)")
                continue
            expected = row_hash(previous or "", tx.account_number, tx.kind, tx.amount_cents,
                                tx.balance_after_cents, tx.created_at, tx.actor, tx.related_id, tx.memo,
                                tx.entry_id, tx.business_date)
            if stored != expected:
                problems.append(f"journal row {tx.id}: hash does not match its fields or its chain (edited?)")
            last_hash[tx.account_number] = stored
        for entry, total, count in await conn.fetchall(_UNBALANCED):
            problems.append(f"transaction {entry}: its {count} rows sum to {total}, not to zero")
        total = 0
        for number, balance, limit, _, _, kind in await conn.fetchall(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY account_number"):
            total += balance
            if balance != running.pop(number, 0):
                problems.append(f"account {number}: balance {balance} differs from its journal sum")
            if balance < -limit:
                problems.append(f"account {number}: balance {balance} is below its limit -{limit}")
            if kind in CASH_KINDS and balance > 0:
                problems.append(f"account {number}: cash account holds less than nothing ({balance})")
        if total:
            problems.append(f"all balances sum to {total}, not to zero")
        for number in running:
            problems.append(f"account {number}: journal rows for an account that does not exist")
        return problems, rows_checked

    return await db.read(op, snapshot=True)


async def record_verification(db: Database, problems: list[str], rows_checked: int, actor: str, *,
                              now: float | None = None) -> None:
    """Keep the outcome of a verification, for the admin page."""
    await db.write(lambda conn: conn.execute(
        "INSERT INTO verifications (at, actor, ok, rows_checked, first_problem) VALUES (?, ?, ?, ?, ?)",
        (journal_time(now), actor, int(not problems), rows_checked, problems[0] if problems else "")))


async def verify_and_record(db: Database, actor: str, *, now: float | None = None) -> tuple[list[str], int]:
    """verify(), with its outcome kept for the admin page: (problems, rows checked)."""
    problems, rows_checked = await verify(db)
    await record_verification(db, problems, rows_checked, actor, now=now)
    return problems, rows_checked


async def last_verification(db: Database):
    rows = await db.read(lambda conn: conn.fetchall(
        "SELECT at, actor, ok, rows_checked, first_problem FROM verifications ORDER BY id DESC LIMIT 1"))
    return rows[0] if rows else None
