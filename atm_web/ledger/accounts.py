"""Postings and balances: deposits, withdrawals, transfers and overdraft limits, and the balances they leave.

Every function takes `now`, the app's clock (clock.py), for the rows it writes. Refusals are refusals.py's;
idempotency is idempotency.py's; the journal's rows and its append are journal.py's.
"""
import logging
from dataclasses import dataclass, replace

from atm_web.core import audit
from atm_web.core.clock import Stamp, journal_time, or_system
from atm_web.core.money import format_cents
from atm_web.core.refusals import check_amount
from atm_web.core.rules import BANK_LIMIT_CENTS, CLEARING
from atm_web.ledger.holds import expire_due_in, held_now_in
from atm_web.ledger.idempotency import (
    INSUFFICIENT_FUNDS,
    Once,
    Replay,
    at_most_once,
    batch_key,
    purge_expired_keys,
    replayed,
)
from atm_web.ledger.journal import (
    ACCOUNT_COLUMNS,
    TX_COLUMNS,
    Account,
    Transaction,
    account_open_in,
    append,
    append_pair,
    delta,
    posting_stamp,
    refusal,
)
from atm_web.ledger.refusals import (
    AccountNotFound,
    AccountNotOpen,
    IdempotencyKeyReused,
    InsufficientFunds,
    LimitBelowDebt,
    SameAccount,
    UnknownAccount,
    check_account_number,
)
from atm_web.storage import Database, IntegrityError

log = logging.getLogger(__name__)


async def apply_max_debt(conn, db: Database, migrated: bool = True) -> None:
    """At start-up (in the migration's transaction): MAX_DEBT becomes the limit of every account without its own.
    One already deeper in debt keeps its debt as its limit (so the CHECK holds), and every later change shrinks
    that limit back towards MAX_DEBT (the journal trigger). Only when MAX_DEBT changed since the last start (or a
    migration ran): otherwise every account follows it already, and a start touches no account (constant time,
    however large the ledger)."""
    max_debt_cents = db.max_debt_cents
    (current,), = await conn.fetchall("SELECT max_debt_cents FROM settings")
    if current == max_debt_cents and not migrated:
        return
    await conn.execute("UPDATE settings SET max_debt_cents = ?", (max_debt_cents,))
    deeper = "CASE WHEN held_cents - balance_cents > :max THEN held_cents - balance_cents ELSE :max END"
    await conn.execute(f"UPDATE accounts SET overdraft_limit_cents = {deeper} "
                       f"WHERE own_overdraft_limit_cents IS NULL AND overdraft_limit_cents != {deeper}",
                       {"max": max_debt_cents})
    for number, balance in await conn.fetchall(
            "SELECT account_number, balance_cents FROM accounts "
            "WHERE own_overdraft_limit_cents IS NULL AND held_cents - balance_cents > ?", (max_debt_cents,)):
        log.warning("account %s owes more than MAX_DEBT (balance %d cents): it cannot withdraw until repaid",
                    number, balance)


async def same_balances(one: Database, other: Database, batch: int = 5000) -> bool:
    """Whether two ledgers hold the same accounts with the same balances and limits (copy-ledger's check), compared
    a batch of accounts at a time: memory does not grow with the ledger."""
    counted = "SELECT count(*) FROM accounts"
    if await one.read(lambda conn: conn.fetchall(counted)) != await other.read(lambda conn: conn.fetchall(counted)):
        return False
    def read(sql, params):
        return lambda conn: conn.fetchall(sql, params)

    after = ""
    while True:
        rows = await one.read(read(
            "SELECT account_number, balance_cents, overdraft_limit_cents FROM accounts WHERE account_number > ? "
            "ORDER BY account_number LIMIT ?", (after, batch)))
        if not rows:
            return True
        numbers = [row[0] for row in rows]
        theirs = await other.read(read(
            "SELECT account_number, balance_cents, overdraft_limit_cents FROM accounts WHERE account_number IN "
            f"({', '.join('?' * len(numbers))})", numbers))
        if sorted(tuple(row) for row in theirs) != sorted(tuple(row) for row in rows):
            return False
        after = numbers[-1]


LEDGER_STARTUP = (apply_max_debt,)  # what the ledger runs each time its database opens (storage.Database.startup)


async def balance_in(conn, number: str) -> int:
    """Any account's balance (the bank's own too: cash stands at minus the notes held), in the caller's
    transaction; 0 for an account not opened."""
    rows = await conn.fetchall("SELECT balance_cents FROM accounts WHERE account_number = ?", (number,))
    return rows[0][0] if rows else 0


async def open_bank_account_in(conn, number: str, kind: str, opened_at: str) -> None:
    """Open an account of the bank's own (a drawer session's cash, say), in the caller's transaction: no overdraft
    limit to speak of; cash accounts are kept at or below zero by their own CHECK."""
    await conn.execute("INSERT INTO accounts (account_number, balance_cents, overdraft_limit_cents, "
                       "own_overdraft_limit_cents, opened_at, kind) VALUES (?, 0, ?, ?, ?, ?)",
                       (number, BANK_LIMIT_CENTS, BANK_LIMIT_CENTS, opened_at, kind))


async def get_account(db: Database, number: str, *, now: float | None = None) -> Account:
    """The account as it stands at `now` (its holds past their time left out), or an unopened one (balance 0, the
    default limit) when it does not exist yet."""
    check_account_number(number)
    rows = await db.read(lambda conn: account_in(conn, number, or_system(now)), snapshot=True)
    return rows or Account(number, 0, db.max_debt_cents, None, None)


async def account_in(conn, number: str, now: float) -> Account | None:
    """The account at `now` (what is held then: holds.held_now_in), in the caller's transaction; None if unopened."""
    rows = await conn.fetchall(f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE account_number = ?", (number,))
    if not rows:
        return None
    account = Account(*rows[0])
    return replace(account, held_cents=await held_now_in(conn, number, account.held_cents, now))


async def get_balances(db: Database, numbers: list[str]) -> dict[str, int]:
    """Balances of several accounts read in one statement, so they come from one snapshot (0 if unopened)."""
    for number in numbers:
        check_account_number(number)
    return await db.read(lambda conn: balances_in(conn, numbers))


async def balances_in(conn, numbers) -> dict[str, int]:
    """{number: balance} of these accounts, in one statement (0 if unopened), in the caller's transaction."""
    numbers = list(dict.fromkeys(numbers))
    if not numbers:
        return {}
    found = dict(await conn.fetchall(
        f"SELECT account_number, balance_cents FROM accounts WHERE account_number IN ({','.join('?' * len(numbers))})",
        numbers))
    return {number: found.get(number, 0) for number in numbers}


async def account_with_history(db: Database, number: str, limit: int = 20, *, now: float | None = None):
    """The account (at `now`: get_account) and its latest journal rows, read from one snapshot so they agree."""
    check_account_number(number)

    async def op(conn):
        account = await account_in(conn, number, or_system(now))
        tx_rows = await conn.fetchall(
            f"SELECT {TX_COLUMNS} FROM journal WHERE account_number = ? ORDER BY id DESC LIMIT ?",
            (number, limit))
        return account, tx_rows

    account, tx_rows = await db.read(op, snapshot=True)
    account = account or Account(number, 0, db.max_debt_cents, None, None)
    return account, [Transaction(*row) for row in tx_rows]


async def deposit(db: Database, number: str, amount_cents: int, actor: str, once: Once | None = None, *,
                  now: float | None = None, open_new: bool = True, counter: str = CLEARING) -> Transaction:
    """Deposit, opening the account if new (unless open_new is False: then AccountNotOpen), against `counter`
    (clearing, for the API; a drawer, for a teller's cash). The answer's `replayed` says it is an earlier
    request's."""
    return await _post(db, number, amount_cents, "deposit", actor, once, now, open_new, counter)


async def withdraw(db: Database, number: str, amount_cents: int, actor: str, once: Once | None = None, *,
                   now: float | None = None, open_new: bool = True, counter: str = CLEARING) -> Transaction:
    """Withdraw within the overdraft limit, against `counter` (a drawer: NotEnoughCash if it holds less); an
    unknown account opens in debt, as the original API did (unless open_new is False: then AccountNotOpen)."""
    return await _post(db, number, amount_cents, "withdrawal", actor, once, now, open_new, counter)


@dataclass(frozen=True)
class Posting:
    """A deposit or withdrawal as a write op: a transaction of two rows, the customer's and the bank's side on
    `counter` (of the opposite sign, its memo naming the customer's row). `await posting(conn)` posts it on any
    engine (the generic path: at_most_once around journal.append_pair). An engine that posts many at once in one
    statement (PostgreSQL's post_entries, migration 0005, the same steps in SQL) takes batch_row() instead and
    hands back its answer to from_batch(), which reads it exactly as the generic path would have ended."""
    number: str
    kind: str
    amount_cents: int
    actor: str
    at: Stamp
    once: Once | None
    counter: str = CLEARING

    @property
    def counter_memo(self) -> str:
        return f"{self.kind} {self.number}"

    @property
    def batchable(self) -> bool:
        """Whether an engine may post it in one statement with others (batch_row): against clearing only; cash
        through a drawer is also noted for the day (journal.append_pair), which the batched path does not do."""
        return self.counter == CLEARING

    async def __call__(self, conn):
        return await at_most_once(conn, self.once, lambda: append_pair(
            conn, self.number, self.kind, self.amount_cents, self.counter, self.counter_memo, self.actor, self.at))

    def batch_row(self) -> tuple:
        """(number, kind, amount, delta, created_at, actor, memo, counter, counter memo, today, key scope, key,
        fingerprint, key time, oldest key time still valid)."""
        return (self.number, self.kind, self.amount_cents, delta(self.kind, self.amount_cents), self.at.created_at,
                self.actor, "", self.counter, self.counter_memo, self.at.today, *batch_key(self.once))

    def from_batch(self, outcome: str, tx_id: int | None, balance: int | None, constraint: str | None):
        if outcome == "posted":
            return Transaction(tx_id, self.number, self.kind, self.amount_cents, balance, self.at.created_at,
                               self.actor)
        if outcome == "replay":
            return Replay(tx_id, constraint)
        if outcome == "key_reused":
            raise IdempotencyKeyReused(tx_id)
        refused = refusal(constraint)
        if isinstance(refused, InsufficientFunds) and self.once is not None:  # an outcome: a retry gets it again
            return Replay(None, INSUFFICIENT_FUNDS, first_time=True)
        raise refused or IntegrityError(constraint or "", constraint or "refused")


async def _post(db: Database, number: str, amount_cents: int, kind: str, actor: str, once: Once | None,
                now: float | None, open_new: bool, counter: str):
    check_account_number(number)
    check_amount(amount_cents)
    if not open_new and not (await get_account(db, number)).exists:  # opened meanwhile by another: no harm
        raise AccountNotOpen(number)
    await purge_expired_keys(db, once)
    result = await db.write(Posting(number, kind, amount_cents, actor, posting_stamp(db, now), once, counter))
    return (await replayed(db, result))[0] if isinstance(result, Replay) else result


async def transfer(db: Database, from_number: str, to_number: str, amount_cents: int, actor: str,
                   once: Once | None = None, *, now: float | None = None) -> tuple[Transaction, Transaction]:
    """Move money from an existing account to another (opened if new): two linked journal rows, one transaction
    (no cash, no bank account: the two rows sum to zero by themselves)."""
    check_account_number(from_number, "from_account")
    check_account_number(to_number, "to_account")
    check_amount(amount_cents)
    if from_number == to_number:
        raise SameAccount()
    at = posting_stamp(db, now)
    await purge_expired_keys(db, once)
    result = await db.write(lambda conn: at_most_once(conn, once, lambda: transfer_in(
        conn, from_number, to_number, amount_cents, actor, at)))
    return await replayed(db, result) if isinstance(result, Replay) else result


async def transfer_in(conn, from_number: str, to_number: str, amount_cents: int, actor: str,
                      at: Stamp) -> tuple[Transaction, Transaction]:
    """transfer in the caller's transaction, all or nothing (UnknownAccount for a source not open)."""
    async with conn.savepoint():
        if not await account_open_in(conn, from_number):
            raise UnknownAccount(from_number)
        await conn.lock_accounts((from_number, to_number))
        debit = await append(conn, from_number, "transfer_out", amount_cents, actor, at, memo=f"to {to_number}")
        credit = await append(conn, to_number, "transfer_in", amount_cents, actor, at, related_id=debit.id,
                              memo=f"from {from_number}", entry=debit.entry_id)
        return debit, credit


async def open_account_in(conn, number: str, opened_at: str) -> bool:
    """Open a customer's account with no rows yet, at the default limit (in the caller's transaction), as its first
    journal row would; False when it exists already."""
    return bool(await conn.fetchall(
        "INSERT INTO accounts (account_number, balance_cents, overdraft_limit_cents, opened_at) "
        "SELECT ?, 0, max_debt_cents, ? FROM settings WHERE true ON CONFLICT (account_number) DO NOTHING "
        "RETURNING account_number", (number, opened_at)))


async def set_overdraft_limit(db: Database, number: str, limit_cents: int | None, actor: str, *,
                              now: float | None = None) -> Account:
    """Give an existing account its own overdraft limit, or None to follow MAX_DEBT again, audited in the same
    transaction. A limit below what the account already owes is refused."""
    check_account_number(number)
    if limit_cents is not None and (not isinstance(limit_cents, int) or limit_cents < 0):
        raise ValueError("limit_cents must be a non-negative int or None")
    now = or_system(now)
    return await db.write(lambda conn: set_limit_in(conn, number, limit_cents, db.max_debt_cents, actor, now))


async def check_limit_in(conn, number: str, limit_cents: int | None, now: float) -> int:
    """What the account owes counting its holds (held - balance), refused unless the account exists and the limit
    is not below that. Its holds past their time are recorded expired first."""
    if not await account_open_in(conn, number):
        raise AccountNotFound(number)
    async with conn.savepoint():  # refused: the expiries recorded first are undone too
        await expire_due_in(conn, number, journal_time(now))
        (owed,), = await conn.fetchall("SELECT held_cents - balance_cents FROM accounts WHERE account_number = ?",
                                       (number,))
        if limit_cents is not None and owed > limit_cents:
            raise LimitBelowDebt(owed)
    return owed


async def set_limit_in(conn, number: str, limit_cents: int | None, max_debt_cents: int, actor: str,
                       now: float) -> Account:
    """set_overdraft_limit in the caller's transaction."""
    async with conn.savepoint():
        owed = await check_limit_in(conn, number, limit_cents, now)
        effective = limit_cents if limit_cents is not None else max(max_debt_cents, owed)
        account_rows = await conn.fetchall(
            f"UPDATE accounts SET own_overdraft_limit_cents = ?, overdraft_limit_cents = ? "
            f"WHERE account_number = ? RETURNING {ACCOUNT_COLUMNS}", (limit_cents, effective, number))
        await audit.record(conn, now, actor, "overdraft limit set", number,
                           "MAX_DEBT" if limit_cents is None else format_cents(limit_cents))
        return Account(*account_rows[0])
