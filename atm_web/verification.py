"""Verification: every hash chain, journal sum, balance and limit recomputed from one snapshot, and the outcomes
kept for the admin page."""
from .clock import journal_time
from .journal import ACCOUNT_COLUMNS, TX_COLUMNS, Transaction, row_hash
from .storage import Database


async def verify(db: Database) -> tuple[list[str], int]:
    """(problems, rows checked): recomputes every account's hash chain and journal sums, checks every balance
    equals its journal and respects its limit. No problems: the ledger is sound. The first problem named is
    the first bad journal row."""

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
                                tx.balance_after_cents, tx.created_at, tx.actor, tx.related_id, tx.memo)
            if stored != expected:
                problems.append(f"journal row {tx.id}: hash does not match its fields or its chain (edited?)")
            last_hash[tx.account_number] = stored
        for number, balance, limit, _, _ in await conn.fetchall(
                f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY account_number"):
            if balance != running.pop(number, 0):
                problems.append(f"account {number}: balance {balance} differs from its journal sum")
            if balance < -limit:
                problems.append(f"account {number}: balance {balance} is below its limit -{limit}")
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
