"""THE ledger: balances, deposits, withdrawals and their journal; the only code that touches ledger tables."""
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone

from .db import Database

ACCOUNT_NUMBER = re.compile(r"[A-Za-z0-9]{1,34}")
HISTORY_MAX = 100


class LedgerError(Exception):
    """Base of the ledger's refusals; each carries a message fit to show a teller or a script."""


class InsufficientFunds(LedgerError):
    def __init__(self):
        super().__init__("Insufficient funds for withdrawal")


class InvalidAccountNumber(LedgerError):
    def __init__(self):
        super().__init__("account number must be 1 to 34 letters and digits")


class InvalidCursor(LedgerError):
    def __init__(self):
        super().__init__("cursor must be a value returned as next_cursor")


@dataclass(frozen=True)
class Account:
    number: str
    balance_cents: int
    overdraft_limit_cents: int
    own_overdraft_limit_cents: int | None
    opened_at: str | None

    @property
    def available_cents(self) -> int:
        """What can still be withdrawn before the overdraft limit is reached."""
        return self.balance_cents + self.overdraft_limit_cents

    @property
    def exists(self) -> bool:
        return self.opened_at is not None


@dataclass(frozen=True)
class Transaction:
    id: int
    account_number: str
    kind: str
    amount_cents: int
    balance_after_cents: int
    created_at: str
    actor: str


def check_account_number(number: str) -> str:
    if not isinstance(number, str) or not ACCOUNT_NUMBER.fullmatch(number):
        raise InvalidAccountNumber()
    return number


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


_ACCOUNT_COLUMNS = "account_number, balance_cents, overdraft_limit_cents, own_overdraft_limit_cents, opened_at"
_TX_COLUMNS = "id, account_number, kind, amount_cents, balance_after_cents, created_at, actor"


async def get_account(db: Database, number: str) -> Account:
    """The account, or an unopened one (balance 0, the default limit) when it does not exist yet."""
    check_account_number(number)
    rows = await db.read(lambda conn: conn.execute_fetchall(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE account_number = ?", (number,)))
    if not rows:
        return Account(number, 0, db.max_debt_cents, None, None)
    return Account(*rows[0])


async def get_balance(db: Database, number: str) -> int:
    return (await get_account(db, number)).balance_cents


async def deposit(db: Database, number: str, amount_cents: int, actor: str) -> Transaction:
    return await _post(db, number, amount_cents, "deposit", actor)


async def withdraw(db: Database, number: str, amount_cents: int, actor: str) -> Transaction:
    """Withdraw within the overdraft limit; an unknown account opens in debt, as the original API did."""
    return await _post(db, number, amount_cents, "withdrawal", actor)


async def _post(db: Database, number: str, amount_cents: int, kind: str, actor: str) -> Transaction:
    check_account_number(number)
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise ValueError("amount_cents must be a positive int")
    delta = amount_cents if kind == "deposit" else -amount_cents
    now = _now()

    async def op(conn):
        # One statement: the journal row, whose trigger applies it to the balance (see db.MIGRATIONS).
        try:
            (tx_id, balance), = await conn.execute_fetchall(
                "INSERT INTO journal (account_number, kind, amount_cents, balance_after_cents, created_at, actor) "
                "VALUES (:n, :kind, :amount, "
                "  coalesce((SELECT balance_cents FROM accounts WHERE account_number = :n), 0) + :delta, "
                "  :now, :actor) RETURNING id, balance_after_cents",
                {"n": number, "kind": kind, "amount": amount_cents, "delta": delta, "now": now, "actor": actor})
        except sqlite3.IntegrityError as error:
            if "balance_within_limit" in str(error):
                raise InsufficientFunds() from None
            raise
        return Transaction(tx_id, number, kind, amount_cents, balance, now, actor)

    return await db.write(op)


async def get_transaction(db: Database, tx_id: int) -> Transaction | None:
    rows = await db.read(lambda conn: conn.execute_fetchall(
        f"SELECT {_TX_COLUMNS} FROM journal WHERE id = ?", (tx_id,)))
    return Transaction(*rows[0]) if rows else None


async def history(db: Database, number: str, limit: int = 20, cursor: str | None = None):
    """Journal rows of an account, newest first: (rows, next_cursor or None). The cursor is a row id."""
    check_account_number(number)
    limit = max(1, min(int(limit), HISTORY_MAX))
    before = 2**63 - 1
    if cursor is not None:
        if not (isinstance(cursor, str) and cursor.isascii() and cursor.isdigit() and len(cursor) < 19):
            raise InvalidCursor()
        before = int(cursor)
    rows = await db.read(lambda conn: conn.execute_fetchall(
        f"SELECT {_TX_COLUMNS} FROM journal WHERE account_number = ? AND id < ? ORDER BY id DESC LIMIT ?",
        (number, before, limit + 1)))
    page = [Transaction(*row) for row in rows[:limit]]
    return page, (str(page[-1].id) if len(rows) > limit else None)


async def account_with_history(db: Database, number: str, limit: int = 20):
    """The account and its latest journal rows, read from one snapshot so they agree."""
    check_account_number(number)

    async def op(conn):
        account_rows = await conn.execute_fetchall(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE account_number = ?", (number,))
        tx_rows = await conn.execute_fetchall(
            f"SELECT {_TX_COLUMNS} FROM journal WHERE account_number = ? ORDER BY id DESC LIMIT ?",
            (number, limit))
        return account_rows, tx_rows

    account_rows, tx_rows = await db.read(op, snapshot=True)
    account = Account(*account_rows[0]) if account_rows else Account(number, 0, db.max_debt_cents, None, None)
    return account, [Transaction(*row) for row in tx_rows]


async def verify(db: Database) -> list[str]:
    """Problems found reconciling the journal with balances and limits; empty when the ledger is sound."""

    async def op(conn):
        problems = []
        running: dict[str, int] = {}
        async with conn.execute(f"SELECT {_TX_COLUMNS} FROM journal ORDER BY id") as rows:
            async for row in rows:
                tx = Transaction(*row)
                balance = running.get(tx.account_number, 0)
                balance += tx.amount_cents if tx.kind == "deposit" else -tx.amount_cents
                running[tx.account_number] = balance
                if balance != tx.balance_after_cents:
                    problems.append(f"journal row {tx.id}: balance after is {tx.balance_after_cents}, "
                                    f"the journal sums to {balance}")
        for number, balance, limit, _, _ in await conn.execute_fetchall(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY account_number"):
            if balance != running.pop(number, 0):
                problems.append(f"account {number}: balance {balance} differs from its journal sum")
            if balance < -limit:
                problems.append(f"account {number}: balance {balance} is below its limit -{limit}")
        for number in running:
            problems.append(f"account {number}: journal rows for an account that does not exist")
        return problems

    return await db.read(op, snapshot=True)
