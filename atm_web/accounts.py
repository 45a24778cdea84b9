"""THE ledger: balances, deposits, withdrawals and their journal; the only code that touches ledger tables.

Over 300 lines: it holds postings, idempotency, reversals, limits and verification, one SQL for both engines;
splitting it by job is the next issue's (11, "one job per module"), after the engines' move.
"""
import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from .storage import Database, IntegrityError
from .money import format_cents

log = logging.getLogger(__name__)
ACCOUNT_NUMBER = re.compile(r"[A-Za-z0-9]{1,34}")
HISTORY_MAX = 100
CREDIT_KINDS = frozenset({"deposit", "transfer_in", "reversal_credit"})
IDEMPOTENCY_TTL_S = 24 * 3600  # keys are kept at least this long, then purged
# Bounds that keep every sum far inside SQLite's 64-bit integers and every balance exactly writable as a JSON
# number (15 significant digits survive the float round trip): config.py refuses a MAX_AMOUNT or MAX_DEBT past
# them at start, and the database refuses a balance past BALANCE_MAX_CENTS before anything is committed.
BALANCE_MAX_CENTS = 10**15 - 1  # 9,999,999,999,999.99
AMOUNT_MAX_CENTS = 10**11       # the largest MAX_AMOUNT: 1,000,000,000.00
LIMIT_MAX_CENTS = 10**10        # the largest overdraft limit, MAX_DEBT included: 100,000,000.00
# A journal row's hash: SHA-256 of its fields joined by '|' (integers in decimal, no related row as ''), the
# first field being the previous row's hash on the same account: row_hash() below, and _APPEND in SQL.


def row_hash(previous: str, number: str, kind: str, amount_cents: int, balance_after_cents: int, created_at: str,
             actor: str, related_id: int | None, memo: str) -> str:
    """What the journal insert computes in SQL (_APPEND), recomputed here to verify the chain."""
    text = "|".join(str(v) for v in (previous, number, kind, amount_cents, balance_after_cents, created_at, actor,
                                      "" if related_id is None else related_id, memo))
    return hashlib.sha256(text.encode()).hexdigest()


class LedgerError(Exception):
    """Base of the ledger's refusals; each carries a message fit to show a teller or a script."""


class InsufficientFunds(LedgerError):
    def __init__(self, replayed: bool = False):
        super().__init__("Insufficient funds for withdrawal")
        self.replayed = replayed  # the stored outcome of an earlier request with the same idempotency key


class BalanceTooLarge(LedgerError):
    def __init__(self):
        super().__init__(f"this would take the account past the largest balance the ledger holds "
                         f"({format_cents(BALANCE_MAX_CENTS)})")


class SameAccount(LedgerError):
    def __init__(self):
        super().__init__("a transfer needs two different accounts")


class UnknownAccount(LedgerError):
    def __init__(self, number: str):
        super().__init__(f"account {number} does not exist")


class CannotReverse(LedgerError):
    """Unknown entry, a reversal itself, already reversed, or no reason given."""


class UnknownEntry(CannotReverse):
    def __init__(self, tx_id: int):
        super().__init__(f"there is no journal entry {tx_id}")


class LimitBelowDebt(LedgerError):
    def __init__(self, owed_cents: int):
        super().__init__(f"the account owes {owed_cents / 100:.2f}, more than that limit")


class IdempotencyKeyReused(LedgerError):
    def __init__(self, transaction_id: int | None = None):
        super().__init__("this idempotency key was already used for a different request")
        self.transaction_id = transaction_id


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
    related_id: int | None = None
    memo: str = ""
    replayed: bool = False  # answered from an earlier request with the same idempotency key

    @property
    def is_credit(self) -> bool:
        return self.kind in CREDIT_KINDS

    @property
    def signed_cents(self) -> int:
        return self.amount_cents if self.is_credit else -self.amount_cents


@dataclass(frozen=True)
class Once:
    """An idempotent request: its key within a scope (a token, a teller's forms) and a fingerprint of it."""
    scope: str
    key: str
    fingerprint: str
    now: float


@dataclass(frozen=True)
class _Replay:
    transaction_id: int | None
    refusal: str | None
    first_time: bool = False


def check_account_number(number: str) -> str:
    if not isinstance(number, str) or not ACCOUNT_NUMBER.fullmatch(number):
        raise InvalidAccountNumber()
    return number


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


_ACCOUNT_COLUMNS = "account_number, balance_cents, overdraft_limit_cents, own_overdraft_limit_cents, opened_at"
_TX_COLUMNS = "id, account_number, kind, amount_cents, balance_after_cents, created_at, actor, related_id, memo"


async def apply_max_debt(conn, max_debt_cents: int) -> None:
    """At start-up (in the migration's transaction): MAX_DEBT becomes the limit of every account without its own.
    One already deeper in debt keeps its debt as its limit (so the CHECK holds), and every later change shrinks
    that limit back towards MAX_DEBT (the journal trigger)."""
    await conn.execute("UPDATE settings SET max_debt_cents = ?", (max_debt_cents,))
    deeper = "CASE WHEN -balance_cents > :max THEN -balance_cents ELSE :max END"
    await conn.execute(f"UPDATE accounts SET overdraft_limit_cents = {deeper} "
                       f"WHERE own_overdraft_limit_cents IS NULL AND overdraft_limit_cents != {deeper}",
                       {"max": max_debt_cents})
    for number, balance in await conn.fetchall(
            "SELECT account_number, balance_cents FROM accounts "
            "WHERE own_overdraft_limit_cents IS NULL AND -balance_cents > ?", (max_debt_cents,)):
        log.warning("account %s owes more than MAX_DEBT (balance %d cents): it cannot withdraw until repaid",
                    number, balance)


async def get_account(db: Database, number: str) -> Account:
    """The account, or an unopened one (balance 0, the default limit) when it does not exist yet."""
    check_account_number(number)
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE account_number = ?", (number,)))
    if not rows:
        return Account(number, 0, db.max_debt_cents, None, None)
    return Account(*rows[0])


async def get_balances(db: Database, numbers: list[str]) -> dict[str, int]:
    """Balances of several accounts read in one statement, so they come from one snapshot (0 if unopened)."""
    for number in numbers:
        check_account_number(number)
    marks = ",".join("?" * len(numbers))
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT account_number, balance_cents FROM accounts WHERE account_number IN ({marks})", numbers))
    found = dict(rows)
    return {number: found.get(number, 0) for number in numbers}


async def get_balance(db: Database, number: str) -> int:
    return (await get_account(db, number)).balance_cents


async def deposit(db: Database, number: str, amount_cents: int, actor: str, once: Once | None = None) -> Transaction:
    return await _post(db, number, amount_cents, "deposit", actor, once)


async def withdraw(db: Database, number: str, amount_cents: int, actor: str, once: Once | None = None) -> Transaction:
    """Withdraw within the overdraft limit; an unknown account opens in debt, as the original API did."""
    return await _post(db, number, amount_cents, "withdrawal", actor, once)


def _check_amount(amount_cents) -> None:
    if not isinstance(amount_cents, int) or isinstance(amount_cents, bool) or amount_cents <= 0:
        raise ValueError("amount_cents must be a positive int")


# One journal row, written by one statement on either engine: it computes the balance after and the row's hash
# (row_hash's text, by concatenation; sha256_hex is an SQL function on both engines) from the account's balance and
# the account's latest row, and the engine's triggers apply the row to the balance in the same statement: a row
# that cannot be applied (CHECK balance_within_limit) is not written either. Parameters whose type the SQL
# cannot show are cast, so PostgreSQL knows them too. Correct because writes take turns a group at a time
# (storage.common): nothing else appends to the account between the read and the insert.
_APPEND = (
    "INSERT INTO journal (account_number, kind, amount_cents, balance_after_cents, created_at, actor, related_id, "
    "  memo, hash) "
    "SELECT :n, :kind, :amount, b.after, :now, :actor, CAST(:related AS BIGINT), :memo, "
    "  sha256_hex(coalesce(p.hash, '') || '|' || :n || '|' || :kind || '|' || CAST(CAST(:amount AS BIGINT) AS TEXT) "
    "    || '|' || CAST(b.after AS TEXT) || '|' || :now || '|' || :actor || '|' "
    "    || coalesce(CAST(CAST(:related AS BIGINT) AS TEXT), '') || '|' || :memo) "
    "FROM (SELECT coalesce((SELECT balance_cents FROM accounts WHERE account_number = :n), 0) + :delta AS after) AS b, "
    "     (SELECT (SELECT hash FROM journal WHERE account_number = :n ORDER BY id DESC LIMIT 1) AS hash) AS p "
    "RETURNING id, balance_after_cents")


async def _append(conn, number: str, kind: str, amount_cents: int, actor: str, now: str,
                  related_id: int | None = None, memo: str = "") -> Transaction:
    """Append one journal row (see _APPEND); refusals by the database become the ledger's own."""
    credit = kind in CREDIT_KINDS
    try:
        async with (contextlib.nullcontext() if credit else conn.refusable()):  # a debit may meet the CHECK
            (tx_id, balance), = await conn.fetchall(_APPEND, {
                "n": number, "kind": kind, "amount": amount_cents, "delta": amount_cents if credit else -amount_cents,
                "now": now, "actor": actor, "related": related_id, "memo": memo})
    except IntegrityError as error:
        if error.constraint == "balance_within_limit":
            raise InsufficientFunds() from None
        if error.constraint == "balance_within_maximum":
            raise BalanceTooLarge() from None
        raise
    return Transaction(tx_id, number, kind, amount_cents, balance, now, actor, related_id, memo)


@dataclass(frozen=True)
class Posting:
    """A deposit or withdrawal as a write op. `await posting(conn)` posts it on any engine (the generic path:
    _at_most_once around _append). An engine that posts many at once in one statement (PostgreSQL's
    post_entries, migration 0002, the same steps in SQL) takes batch_row() instead and hands back its answer
    to from_batch(), which reads it exactly as the generic path would have ended."""
    number: str
    kind: str
    amount_cents: int
    actor: str
    created_at: str
    once: Once | None

    async def __call__(self, conn):
        return await _at_most_once(conn, self.once, lambda: _append(
            conn, self.number, self.kind, self.amount_cents, self.actor, self.created_at))

    def batch_row(self) -> tuple:
        """(number, kind, amount, delta, created_at, actor, memo, key scope, key, fingerprint, key time, oldest
        key time still valid)."""
        once = self.once
        delta = self.amount_cents if self.kind in CREDIT_KINDS else -self.amount_cents
        return (self.number, self.kind, self.amount_cents, delta, self.created_at, self.actor, "",
                once and once.scope, once and once.key, once and once.fingerprint, once and once.now,
                once and once.now - IDEMPOTENCY_TTL_S)

    def from_batch(self, outcome: str, tx_id: int | None, balance: int | None, constraint: str | None):
        if outcome == "posted":
            return Transaction(tx_id, self.number, self.kind, self.amount_cents, balance, self.created_at, self.actor)
        if outcome == "replay":
            return _Replay(tx_id, constraint)
        if outcome == "key_reused":
            raise IdempotencyKeyReused(tx_id)
        if constraint == "balance_within_limit":
            if self.once is not None:  # an outcome like any other: a retry gets the same refusal
                return _Replay(None, "insufficient_funds", first_time=True)
            raise InsufficientFunds()
        if constraint == "balance_within_maximum":
            raise BalanceTooLarge()
        raise IntegrityError(constraint or "", constraint or "refused")


async def _post(db: Database, number: str, amount_cents: int, kind: str, actor: str, once: Once | None):
    check_account_number(number)
    _check_amount(amount_cents)
    await _purge_expired_keys(db, once)
    result = await db.write(Posting(number, kind, amount_cents, actor, _now(), once))
    return (await _replayed(db, result))[0] if isinstance(result, _Replay) else result


async def _purge_expired_keys(db: Database, once: Once | None) -> None:
    """Now and then (hourly, per process), forget idempotency keys past IDEMPOTENCY_TTL_S."""
    if once is None or once.now - db.idempotency_purged_at <= 3600:
        return
    db.idempotency_purged_at = once.now
    await db.write(lambda conn: conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?",
                                             (once.now - IDEMPOTENCY_TTL_S,)))


async def transfer(db: Database, from_number: str, to_number: str, amount_cents: int, actor: str,
                   once: Once | None = None) -> tuple[Transaction, Transaction]:
    """Move money from an existing account to another (opened if new): two linked journal rows, one transaction."""
    check_account_number(from_number)
    check_account_number(to_number)
    _check_amount(amount_cents)
    if from_number == to_number:
        raise SameAccount()
    now = _now()

    async def apply(conn):
        async with conn.savepoint():
            if not await conn.fetchall("SELECT 1 FROM accounts WHERE account_number = ?", (from_number,)):
                raise UnknownAccount(from_number)
            await conn.lock_accounts((from_number, to_number))
            debit = await _append(conn, from_number, "transfer_out", amount_cents, actor, now, memo=f"to {to_number}")
            credit = await _append(conn, to_number, "transfer_in", amount_cents, actor, now, related_id=debit.id,
                                   memo=f"from {from_number}")
            return debit, credit

    await _purge_expired_keys(db, once)
    result = await db.write(lambda conn: _at_most_once(conn, once, lambda: apply(conn)))
    return await _replayed(db, result) if isinstance(result, _Replay) else result


async def _at_most_once(conn, once: Once | None, apply):
    """Run apply() unless this key already has an outcome; store the outcome in the same transaction.

    The key is claimed first (an insert that a twin request with the same key, on any server, waits behind on
    the unique index), then the money moves, then the claim records the outcome: concurrent identical requests
    make one journal row. An expired key (older than IDEMPOTENCY_TTL_S) is claimed afresh."""
    if once is None:
        return await apply()
    async with conn.savepoint():
        claimed = await conn.fetchall(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, transaction_id, refusal, created_at) "
            "VALUES (?, ?, ?, NULL, NULL, ?) ON CONFLICT (scope, key) DO UPDATE SET "
            "fingerprint = excluded.fingerprint, transaction_id = NULL, refusal = NULL, "
            "created_at = excluded.created_at "
            "WHERE idempotency_keys.created_at < ? RETURNING scope",
            (once.scope, once.key, once.fingerprint, once.now, once.now - IDEMPOTENCY_TTL_S))
        if not claimed:
            (fingerprint, tx_id, refusal), = await conn.fetchall(
                "SELECT fingerprint, transaction_id, refusal FROM idempotency_keys WHERE scope = ? AND key = ?",
                (once.scope, once.key))
            if fingerprint != once.fingerprint:
                raise IdempotencyKeyReused(tx_id)
            return _Replay(tx_id, refusal)
        try:
            async with conn.savepoint():  # a refusal must leave the claim standing, to record it
                result = await apply()
        except InsufficientFunds:  # an outcome like any other: a retry gets the same refusal
            refusal = "insufficient_funds"
            outcome, first_id = _Replay(None, refusal, first_time=True), None
        else:
            outcome, first_id, refusal = result, (result[0] if isinstance(result, tuple) else result).id, None
        await conn.execute("UPDATE idempotency_keys SET transaction_id = ?, refusal = ? WHERE scope = ? AND key = ?",
                           (first_id, refusal, once.scope, once.key))
        return outcome


async def _replayed(db: Database, replay: _Replay):
    """The transactions (or the refusal) an earlier request with the same key got."""
    if replay.refusal == "insufficient_funds":
        raise InsufficientFunds(replayed=not replay.first_time)
    rows = await db.read(lambda conn: conn.fetchall(  # its own rows: not a reversal made since
        f"SELECT {_TX_COLUMNS} FROM journal WHERE (id = ? OR related_id = ?) "
        "AND kind NOT IN ('reversal_credit', 'reversal_debit') ORDER BY id",
        (replay.transaction_id, replay.transaction_id)))
    return tuple(replace(Transaction(*row), replayed=True) for row in rows)


REVERSING_KIND = {"deposit": "reversal_debit", "transfer_in": "reversal_debit",
                  "withdrawal": "reversal_credit", "transfer_out": "reversal_credit"}


async def reverse(db: Database, tx_id: int, reason: str, actor: str, audit) -> list[Transaction]:
    """Compensate a journal entry (both legs of a transfer) with linked entries, in one transaction, at most
    once; audit(conn) runs in the same transaction. Refused (InsufficientFunds) if it would break a limit."""
    reason = (reason or "").strip()
    if not 1 <= len(reason) <= 200:
        raise CannotReverse("a reversal needs a reason of 1 to 200 characters")
    now = _now()

    async def op(conn):
        async with conn.savepoint():
            rows = await conn.fetchall(f"SELECT {_TX_COLUMNS} FROM journal WHERE id = ?", (tx_id,))
            if not rows:
                raise UnknownEntry(tx_id)
            original = Transaction(*rows[0])
            if original.kind not in REVERSING_KIND:
                raise CannotReverse("a reversal cannot itself be reversed")
            legs = [original]
            if original.kind.startswith("transfer"):
                other = await conn.fetchall(
                    f"SELECT {_TX_COLUMNS} FROM journal WHERE (id = ? OR related_id = ?) AND id != ? "
                    "AND kind IN ('transfer_in', 'transfer_out')",
                    (original.related_id, original.id, original.id))
                legs += [Transaction(*row) for row in other]
            await conn.lock_accounts(leg.account_number for leg in legs)
            done = []
            for leg in sorted(legs, key=lambda t: t.is_credit, reverse=True):  # the debit that may fail first
                try:
                    done.append(await _append(conn, leg.account_number, REVERSING_KIND[leg.kind], leg.amount_cents,
                                              actor, now, related_id=leg.id, memo=f"reverses {leg.id}: {reason}"))
                except IntegrityError as error:
                    if error.constraint == "journal_one_reversal":
                        raise CannotReverse(f"journal entry {leg.id} is already reversed") from None
                    raise
            await audit(conn)
            return sorted(done, key=lambda t: t.id)

    return await db.write(op)


async def reversals_of(db: Database, tx_id: int) -> list[Transaction]:
    """The reversal entries of a journal entry and, for a transfer, of its other leg."""
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT {_TX_COLUMNS} FROM journal WHERE kind IN ('reversal_credit', 'reversal_debit') AND related_id IN "
        "(SELECT id FROM journal WHERE id = :t OR related_id = :t OR id = (SELECT related_id FROM journal "
        " WHERE id = :t AND kind LIKE 'transfer%')) ORDER BY id", {"t": tx_id}))
    return [Transaction(*row) for row in rows]


async def set_overdraft_limit(db: Database, number: str, limit_cents: int | None, audit) -> Account:
    """Give an existing account its own overdraft limit, or None to follow MAX_DEBT again; audit(conn) is
    run in the same transaction. A limit below what the account already owes is refused."""
    check_account_number(number)
    if limit_cents is not None and (not isinstance(limit_cents, int) or limit_cents < 0):
        raise ValueError("limit_cents must be a non-negative int or None")

    async def op(conn):
        async with conn.savepoint():
            rows = await conn.fetchall("SELECT balance_cents FROM accounts WHERE account_number = ?",
                                               (number,))
            if not rows:
                raise UnknownAccount(number)
            (balance,), = rows
            if limit_cents is not None and balance < -limit_cents:
                raise LimitBelowDebt(-balance)
            effective = limit_cents if limit_cents is not None else max(db.max_debt_cents, -balance)
            account_rows = await conn.fetchall(
                f"UPDATE accounts SET own_overdraft_limit_cents = ?, overdraft_limit_cents = ? "
                f"WHERE account_number = ? RETURNING {_ACCOUNT_COLUMNS}", (limit_cents, effective, number))
            await audit(conn)
            return Account(*account_rows[0])

    return await db.write(op)


async def get_transaction(db: Database, tx_id: int) -> Transaction | None:
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT {_TX_COLUMNS} FROM journal WHERE id = ?", (tx_id,)))
    return Transaction(*rows[0]) if rows else None


async def related_transactions(db: Database, tx: Transaction) -> list[Transaction]:
    """The other rows linked to this one (the other side of a transfer, a reversal)."""
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT {_TX_COLUMNS} FROM journal WHERE (id = ? OR related_id = ?) AND id != ? ORDER BY id",
        (tx.related_id, tx.id, tx.id)))
    return [Transaction(*row) for row in rows]


async def history(db: Database, number: str, limit: int = 20, cursor: str | None = None):
    """Journal rows of an account, newest first: (rows, next_cursor or None). The cursor is a row id."""
    check_account_number(number)
    limit = max(1, min(int(limit), HISTORY_MAX))
    before = 2**63 - 1
    if cursor is not None:
        if not (isinstance(cursor, str) and cursor.isascii() and cursor.isdigit() and len(cursor) < 19):
            raise InvalidCursor()
        before = int(cursor)
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT {_TX_COLUMNS} FROM journal WHERE account_number = ? AND id < ? ORDER BY id DESC LIMIT ?",
        (number, before, limit + 1)))
    page = [Transaction(*row) for row in rows[:limit]]
    return page, (str(page[-1].id) if len(rows) > limit else None)


async def account_with_history(db: Database, number: str, limit: int = 20):
    """The account and its latest journal rows, read from one snapshot so they agree."""
    check_account_number(number)

    async def op(conn):
        account_rows = await conn.fetchall(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE account_number = ?", (number,))
        tx_rows = await conn.fetchall(
            f"SELECT {_TX_COLUMNS} FROM journal WHERE account_number = ? ORDER BY id DESC LIMIT ?",
            (number, limit))
        return account_rows, tx_rows

    account_rows, tx_rows = await db.read(op, snapshot=True)
    account = Account(*account_rows[0]) if account_rows else Account(number, 0, db.max_debt_cents, None, None)
    return account, [Transaction(*row) for row in tx_rows]


async def verify(db: Database) -> tuple[list[str], int]:
    """(problems, rows checked): recomputes every account's hash chain and journal sums, checks every balance
    equals its journal and respects its limit. No problems: the ledger is sound. The first problem named is
    the first bad journal row."""

    async def op(conn):
        problems, rows_checked = [], 0
        running: dict[str, int] = {}
        last_hash: dict[str, str | None] = {}
        async for row in conn.stream(f"SELECT {_TX_COLUMNS}, hash FROM journal ORDER BY id"):
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
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts ORDER BY account_number"):
            if balance != running.pop(number, 0):
                problems.append(f"account {number}: balance {balance} differs from its journal sum")
            if balance < -limit:
                problems.append(f"account {number}: balance {balance} is below its limit -{limit}")
        for number in running:
            problems.append(f"account {number}: journal rows for an account that does not exist")
        return problems, rows_checked

    return await db.read(op, snapshot=True)


async def record_verification(db: Database, problems: list[str], rows_checked: int, actor: str) -> None:
    """Keep the outcome of a verification, for the admin page."""
    await db.write(lambda conn: conn.execute(
        "INSERT INTO verifications (at, actor, ok, rows_checked, first_problem) VALUES (?, ?, ?, ?, ?)",
        (_now(), actor, int(not problems), rows_checked, problems[0] if problems else "")))


async def last_verification(db: Database):
    rows = await db.read(lambda conn: conn.fetchall(
        "SELECT at, actor, ok, rows_checked, first_problem FROM verifications ORDER BY id DESC LIMIT 1"))
    return rows[0] if rows else None
