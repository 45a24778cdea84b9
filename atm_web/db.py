"""Connections, schema and migrations; writes run in group-committed transactions on one writer connection."""
import asyncio
import fcntl
import hashlib
import logging
import os
import sqlite3

import aiosqlite

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
MAX_BATCH = 256

# Each entry moves the schema from version i to i + 1 (PRAGMA user_version); never edit a released one.
MIGRATIONS = [
    """
    CREATE TABLE settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        max_debt_cents INTEGER NOT NULL CHECK (max_debt_cents >= 0)
    ) STRICT;
    INSERT INTO settings (id, max_debt_cents) VALUES (1, 0);
    CREATE TABLE accounts (
        account_number TEXT PRIMARY KEY,
        balance_cents INTEGER NOT NULL DEFAULT 0,
        overdraft_limit_cents INTEGER NOT NULL CHECK (overdraft_limit_cents >= 0),
        own_overdraft_limit_cents INTEGER CHECK (own_overdraft_limit_cents >= 0),
        opened_at TEXT NOT NULL,
        CONSTRAINT balance_within_limit CHECK (balance_cents >= -overdraft_limit_cents)
    ) STRICT;
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_number TEXT NOT NULL REFERENCES accounts(account_number),
        kind TEXT NOT NULL CHECK (kind IN ('deposit', 'withdrawal')),
        amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
        balance_after_cents INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        actor TEXT NOT NULL
    ) STRICT;
    CREATE INDEX journal_by_account ON journal(account_number, id);
    CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
        BEGIN SELECT RAISE(ABORT, 'journal rows are immutable'); END;
    CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
        BEGIN SELECT RAISE(ABORT, 'journal rows are immutable'); END;
    -- A balance changes only as a journal row is written, in the same statement: a row that cannot be
    -- applied (CHECK balance_within_limit) is not written either. An account opens with its first row, at
    -- the default limit (settings.max_debt_cents, kept equal to MAX_DEBT at start-up); a limit raised to
    -- cover a debt above a lowered MAX_DEBT shrinks with each change, never below MAX_DEBT.
    CREATE TRIGGER journal_applies_to_balance AFTER INSERT ON journal
    BEGIN
        INSERT INTO accounts (account_number, balance_cents, overdraft_limit_cents, opened_at)
            SELECT NEW.account_number, 0, max_debt_cents, NEW.created_at FROM settings
            WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE account_number = NEW.account_number);
        UPDATE accounts SET
            balance_cents = balance_cents + iif(NEW.kind = 'deposit', NEW.amount_cents, -NEW.amount_cents),
            overdraft_limit_cents = iif(own_overdraft_limit_cents IS NOT NULL, overdraft_limit_cents,
                max((SELECT max_debt_cents FROM settings), min(overdraft_limit_cents,
                    -(balance_cents + iif(NEW.kind = 'deposit', NEW.amount_cents, -NEW.amount_cents)))))
            WHERE account_number = NEW.account_number;
        SELECT RAISE(ABORT, 'journal balance_after does not match the account balance')
            WHERE (SELECT balance_cents FROM accounts WHERE account_number = NEW.account_number)
                  != NEW.balance_after_cents;
    END;
    """,
    """
    CREATE TABLE tellers (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('teller', 'admin')),
        active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
        created_at TEXT NOT NULL
    ) STRICT;
    CREATE TABLE sessions (
        id_hash TEXT PRIMARY KEY,
        teller_id INTEGER NOT NULL REFERENCES tellers(id),
        started_at REAL NOT NULL,
        last_seen_at REAL NOT NULL,
        ended_at REAL
    ) STRICT;
    CREATE INDEX sessions_by_teller ON sessions(teller_id);
    CREATE TABLE login_failures (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL,
        address TEXT NOT NULL,
        at REAL NOT NULL
    ) STRICT;
    CREATE INDEX login_failures_by_username ON login_failures(username, at);
    CREATE INDEX login_failures_by_address ON login_failures(address, at);
    CREATE TABLE login_locks (
        kind TEXT NOT NULL CHECK (kind IN ('username', 'address')),
        subject TEXT NOT NULL,
        locked_until REAL NOT NULL,
        PRIMARY KEY (kind, subject)
    ) STRICT;
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        scope TEXT NOT NULL CHECK (scope IN ('read', 'write')),
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        last_used_at TEXT,
        revoked_at TEXT
    ) STRICT;
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    ) STRICT;
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit log rows are immutable'); END;
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit log rows are immutable'); END;
    """,
    """
    -- Transfers (and later reversals): new kinds, a link to the related row, a memo. SQLite cannot change a
    -- CHECK in place, so the journal is rebuilt (its triggers only fire on row changes, not on DROP).
    CREATE TABLE journal_v3 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account_number TEXT NOT NULL REFERENCES accounts(account_number),
        kind TEXT NOT NULL CHECK (kind IN ('deposit', 'withdrawal', 'transfer_in', 'transfer_out',
                                           'reversal_credit', 'reversal_debit')),
        amount_cents INTEGER NOT NULL CHECK (amount_cents > 0),
        balance_after_cents INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        actor TEXT NOT NULL,
        related_id INTEGER REFERENCES journal(id),
        memo TEXT NOT NULL DEFAULT ''
    ) STRICT;
    INSERT INTO journal_v3 (id, account_number, kind, amount_cents, balance_after_cents, created_at, actor)
        SELECT id, account_number, kind, amount_cents, balance_after_cents, created_at, actor FROM journal;
    DROP TABLE journal;
    ALTER TABLE journal_v3 RENAME TO journal;
    CREATE INDEX journal_by_account ON journal(account_number, id);
    CREATE INDEX journal_by_related ON journal(related_id) WHERE related_id IS NOT NULL;
    CREATE TRIGGER journal_no_update BEFORE UPDATE ON journal
        BEGIN SELECT RAISE(ABORT, 'journal rows are immutable'); END;
    CREATE TRIGGER journal_no_delete BEFORE DELETE ON journal
        BEGIN SELECT RAISE(ABORT, 'journal rows are immutable'); END;
    CREATE TRIGGER journal_applies_to_balance AFTER INSERT ON journal
    BEGIN
        INSERT INTO accounts (account_number, balance_cents, overdraft_limit_cents, opened_at)
            SELECT NEW.account_number, 0, max_debt_cents, NEW.created_at FROM settings
            WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE account_number = NEW.account_number);
        UPDATE accounts SET
            balance_cents = balance_cents + iif(NEW.kind IN ('deposit', 'transfer_in', 'reversal_credit'),
                                                NEW.amount_cents, -NEW.amount_cents),
            overdraft_limit_cents = iif(own_overdraft_limit_cents IS NOT NULL, overdraft_limit_cents,
                max((SELECT max_debt_cents FROM settings), min(overdraft_limit_cents,
                    -(balance_cents + iif(NEW.kind IN ('deposit', 'transfer_in', 'reversal_credit'),
                                          NEW.amount_cents, -NEW.amount_cents)))))
            WHERE account_number = NEW.account_number;
        SELECT RAISE(ABORT, 'journal balance_after does not match the account balance')
            WHERE (SELECT balance_cents FROM accounts WHERE account_number = NEW.account_number)
                  != NEW.balance_after_cents;
    END;
    -- Idempotency-Key (and one-time form keys): the outcome of a request, stored in the same transaction as
    -- its ledger change; a journal row id, or the refusal it met.
    CREATE TABLE idempotency_keys (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        transaction_id INTEGER REFERENCES journal(id),
        refusal TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (scope, key)
    ) STRICT;
    CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);
    """,
    """
    -- Each journal row carries a SHA-256 chained to the previous row of its account (see accounts.row_hash);
    -- rows written before this version have none and stay outside the chain.
    ALTER TABLE journal ADD COLUMN hash TEXT;
    CREATE TABLE verifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        ok INTEGER NOT NULL CHECK (ok IN (0, 1)),
        rows_checked INTEGER NOT NULL,
        first_problem TEXT NOT NULL DEFAULT ''
    ) STRICT;
    """,
    """
    -- API tokens gain the admin scope (may also set overdraft limits); SQLite rebuilds to change a CHECK.
    CREATE TABLE api_tokens_v6 (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        token_hash TEXT NOT NULL UNIQUE,
        scope TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        last_used_at TEXT,
        revoked_at TEXT
    ) STRICT;
    INSERT INTO api_tokens_v6 SELECT * FROM api_tokens;
    DROP TABLE api_tokens;
    ALTER TABLE api_tokens_v6 RENAME TO api_tokens;
    """,
    """
    -- A journal row is reversed at most once: one reversal row may point at it.
    CREATE UNIQUE INDEX journal_one_reversal ON journal(related_id)
        WHERE kind IN ('reversal_credit', 'reversal_debit');
    """,
    """
    -- No balance past 9,999,999,999,999.99 (accounts.BALANCE_MAX_CENTS): every sum stays far inside 64 bits and
    -- every balance is exactly writable as a JSON number. A trigger, since SQLite cannot add a CHECK in place;
    -- raised inside the journal insert, it aborts the whole statement as the CHECK on the limit does.
    CREATE TRIGGER balance_within_maximum BEFORE UPDATE OF balance_cents ON accounts
        WHEN NEW.balance_cents > 999999999999999
        BEGIN SELECT RAISE(ABORT, 'balance_within_maximum'); END;
    """,
    """
    -- Leavers keep no keys: a token knows the teller who made it (none for the CLI's), and why it was revoked.
    ALTER TABLE api_tokens ADD COLUMN creator_id INTEGER REFERENCES tellers(id);
    ALTER TABLE api_tokens ADD COLUMN revoked_reason TEXT NOT NULL DEFAULT '';
    UPDATE api_tokens SET creator_id = (SELECT id FROM tellers WHERE 'teller:' || username = created_by);
    UPDATE api_tokens SET revoked_reason = 'revoked' WHERE revoked_at IS NOT NULL;
    CREATE INDEX api_tokens_by_creator ON api_tokens(creator_id) WHERE creator_id IS NOT NULL;
    """,
    """
    -- Login attempts are reserved before the password check (pending = 1) and kept as failures (0), so no more
    -- than the policy's number can reach the check at once; earlier failures carry over.
    CREATE TABLE login_attempts (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL,
        address TEXT NOT NULL,
        at REAL NOT NULL,
        pending INTEGER NOT NULL CHECK (pending IN (0, 1))
    ) STRICT;
    INSERT INTO login_attempts (username, address, at, pending) SELECT username, address, at, 0 FROM login_failures;
    DROP TABLE login_failures;
    CREATE INDEX login_attempts_by_username ON login_attempts(username, at);
    CREATE INDEX login_attempts_by_address ON login_attempts(address, at);
    """,
]


class LedgerUnavailable(Exception):
    """The database could not take the write in time (locked by another process, disk error)."""


class Database:
    """One SQLite file: a writer connection that batches concurrent writes into one commit, and a reader."""

    def __init__(self, path: str, max_debt_cents: int):
        self.path = path
        self.max_debt_cents = max_debt_cents
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._open_lock: asyncio.Lock | None = None
        self._read_lock: asyncio.Lock | None = None
        self._pending: list = []
        self._drain_task: asyncio.Task | None = None
        self._lock_fd: int | None = None
        self._pid = os.getpid()
        self.idempotency_purged_at = 0.0  # when accounts last purged expired idempotency keys (app clock)

    async def _connect(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = FULL")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.create_function("sha256_hex", 1, _sha256_hex, deterministic=True)
        return conn

    async def open(self) -> None:
        """Connect, migrate the schema and apply MAX_DEBT (idempotent; safe from several processes)."""
        if self._writer is not None and self._pid == os.getpid():
            return
        if self._pid != os.getpid():  # a forked child: the parent's connections belong to a loop it lacks
            self.__init__(self.path, self.max_debt_cents)
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
            self._read_lock = asyncio.Lock()
        async with self._open_lock:
            if self._writer is not None:
                return
            lock_fd = os.open(f"{self.path}.writelock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                # Workers starting together on a new file would race to switch it to WAL, and SQLite answers
                # that race with "database is locked" at once (no busy wait): they open it one at a time.
                await asyncio.get_running_loop().run_in_executor(None, fcntl.flock, lock_fd, fcntl.LOCK_EX)
                try:
                    writer = await self._connect()
                    try:
                        await self._migrate(writer)
                        reader = await self._connect()
                    except BaseException:
                        await writer.close()
                        raise
                finally:
                    fcntl.flock(lock_fd, fcntl.LOCK_UN)
            except BaseException:
                os.close(lock_fd)
                raise
            self._writer, self._reader, self._lock_fd = writer, reader, lock_fd

    async def _migrate(self, writer) -> None:
        """Bring the schema up to date and apply MAX_DEBT, in one transaction (a failure closes the connection,
        which rolls it back)."""
        await writer.execute("BEGIN IMMEDIATE")
        (version,), = await writer.execute_fetchall("PRAGMA user_version")
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in filter(str.strip, _split(script)):
                await writer.execute(statement)
            await writer.execute(f"PRAGMA user_version = {number}")
            log.info("schema migrated to version %d", number)
        await self._apply_max_debt(writer)
        await writer.execute("COMMIT")

    async def _apply_max_debt(self, conn) -> None:
        # Accounts without their own limit follow MAX_DEBT; one already deeper in debt keeps its debt as its
        # limit (so the CHECK holds), and every later change shrinks that limit back towards MAX_DEBT.
        await conn.execute("UPDATE settings SET max_debt_cents = ?", (self.max_debt_cents,))
        await conn.execute(
            "UPDATE accounts SET overdraft_limit_cents = MAX(:max, -balance_cents) "
            "WHERE own_overdraft_limit_cents IS NULL AND overdraft_limit_cents != MAX(:max, -balance_cents)",
            {"max": self.max_debt_cents})
        for number, balance in await conn.execute_fetchall(
                "SELECT account_number, balance_cents FROM accounts "
                "WHERE own_overdraft_limit_cents IS NULL AND -balance_cents > ?", (self.max_debt_cents,)):
            log.warning("account %s owes more than MAX_DEBT (balance %d cents): it cannot withdraw until repaid",
                        number, balance)

    async def close(self) -> None:
        if self._drain_task is not None:
            await asyncio.shield(self._drain_task)
        for conn in (self._writer, self._reader):
            if conn is not None:
                await conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
        self._writer = self._reader = self._lock_fd = None

    async def read(self, op, snapshot: bool = False):
        """Run op(connection) on the reader; snapshot=True wraps it in one read transaction."""
        await self.open()
        async with self._read_lock:
            if not snapshot:
                return await op(self._reader)
            await self._reader.execute("BEGIN")
            try:
                return await op(self._reader)
            finally:
                await self._reader.execute("COMMIT")

    async def write(self, op):
        """Run op(connection) in a write transaction; return its result once that transaction is durable.

        Writes that arrive together share one BEGIN IMMEDIATE ... COMMIT (one fsync). An op that raises must
        leave nothing behind: a single statement does so by itself; an op of several statements runs them
        inside `async with savepoint(conn)`. Its exception goes to its caller alone.
        """
        await self.open()
        future = asyncio.get_running_loop().create_future()
        self._pending.append((op, future))
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            # Processes sharing the file take turns through a blocking flock, handed over the moment the
            # holder commits (SQLite's own busy handler would sleep up to 100 ms); writes that arrive while
            # this process waits join its next batch. Always through the blocking call, even when the lock looks
            # free: a non-blocking grab lets the process that just committed take it straight back, which
            # measured 20% slower (turns alternate less, so batches are smaller).
            await asyncio.get_running_loop().run_in_executor(None, fcntl.flock, self._lock_fd, fcntl.LOCK_EX)
            try:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._commit(batch)
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    async def _commit(self, batch) -> None:
        conn = self._writer
        outcomes = []
        try:
            await conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            log.error("could not start a write transaction: %s", error)
            return _settle([(future, LedgerUnavailable(str(error)), None) for _, future in batch])
        try:
            for op, future in batch:
                try:
                    outcomes.append((future, None, await op(conn)))
                except Exception as error:  # the op's own failure; by the contract above it wrote nothing
                    outcomes.append((future, error, None))
                    if not conn.in_transaction:  # SQLite rolled the whole transaction back (e.g. disk full)
                        raise
            await conn.execute("COMMIT")
        except Exception as error:
            log.exception("write transaction failed; rolled back")
            try:
                await conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            failure = LedgerUnavailable(str(error))
            return _settle([(future, failure, None) for _, future in batch])
        _settle(outcomes)


class savepoint:
    """`async with savepoint(conn):` makes several statements of one op succeed or fail together (nestable)."""

    _depth = 0

    def __init__(self, conn):
        self.conn = conn

    async def __aenter__(self):
        savepoint._depth += 1
        self.name = f"sp{savepoint._depth}"
        await self.conn.execute(f"SAVEPOINT {self.name}")

    async def __aexit__(self, kind, error, tb):
        savepoint._depth -= 1
        if kind is not None:
            await self.conn.execute(f"ROLLBACK TO {self.name}")
        await self.conn.execute(f"RELEASE {self.name}")
        return False


def _sha256_hex(text: str) -> str:
    """SQL function sha256_hex(text), used by the journal insert to chain each row to the previous one."""
    return hashlib.sha256(text.encode()).hexdigest()


def _settle(outcomes) -> None:
    for future, error, result in outcomes:
        if future.done():  # the caller went away; its transaction stands or fell with the batch
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def _split(script: str) -> list[str]:
    """Split a migration into statements, keeping each CREATE TRIGGER ... END whole."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current)
            current = ""
    return statements + ([current] if current.strip() else [])
