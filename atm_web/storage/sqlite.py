"""SQLite, the zero-set-up engine: one file, one writer connection per process, group commits taken in turns."""
import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import secrets
import sqlite3

import aiosqlite

from atm_web.storage.common import (
    STREAM_CHUNK,
    Connection,
    Database,
    DatabaseUnreachable,
    IntegrityError,
    LedgerUnavailable,
    settle,
)
from atm_web.storage.migrate import migrations

log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 5000
# SQLite names the columns of a violated unique index, not the index: the names PostgreSQL reports instead.
UNIQUE_INDEXES = {"journal.related_id": "journal_one_reversal", "tellers.username": "tellers_username_key",
                  "api_tokens.token_hash": "api_tokens_token_hash_key"}
_FAILED = re.compile(r"(?:CHECK|UNIQUE|NOT NULL|FOREIGN KEY) constraint failed: ?(.*)")


def _integrity_error(error: sqlite3.IntegrityError) -> IntegrityError:
    """The engine-neutral refusal: a CHECK's name, a unique index's name, or a trigger's RAISE text."""
    message = str(error)
    match = _FAILED.fullmatch(message)
    constraint = match.group(1) if match else message
    return IntegrityError(UNIQUE_INDEXES.get(constraint, constraint), message)


class SQLiteConnection(Connection):
    """An aiosqlite connection behind the engine-neutral calls (sqlite3 takes `?` and `:name` itself)."""

    def __init__(self, raw: aiosqlite.Connection):
        super().__init__()
        self.raw = raw

    async def fetchall(self, sql, params=()):
        try:
            return await self.raw.execute_fetchall(sql, params)
        except sqlite3.IntegrityError as error:
            raise _integrity_error(error) from None

    async def execute(self, sql, params=()):
        try:
            await self.raw.execute(sql, params)
        except sqlite3.IntegrityError as error:
            raise _integrity_error(error) from None

    async def chunks(self, sql, params=(), alone=False):
        # the next chunk read while this one is used (SQLite steps without the GIL): a day's 100,000 rows in 100
        # trips to the connection's thread rather than aiosqlite's 1,600
        async with self.raw.execute(sql, params) as cursor:
            ahead = asyncio.ensure_future(cursor.fetchmany(STREAM_CHUNK))
            try:
                while rows := await ahead:
                    ahead = asyncio.ensure_future(cursor.fetchmany(STREAM_CHUNK))
                    yield rows
            finally:
                with contextlib.suppress(Exception):
                    await ahead  # never close the cursor under a read in flight

    def refusable(self):
        return contextlib.nullcontext()  # a refused statement undoes only itself; the transaction goes on

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction


class FileGeneration:
    """A file beside the database that a token revocation replaces: every process on the file sees it at once."""

    def __init__(self, path: str):
        self.path = path

    async def generation(self) -> str:
        try:
            with open(self.path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def announce(self) -> None:
        temporary = f"{self.path}.{secrets.token_hex(8)}"
        with open(temporary, "w") as f:
            f.write(secrets.token_hex(16))
        os.replace(temporary, self.path)


class SQLiteDatabase(Database):
    """One SQLite file: a writer connection that batches concurrent writes into one commit, and a reader.

    Processes sharing the file take turns through a blocking flock on DB_PATH.writelock, handed over the moment
    the holder commits (SQLite's own busy handler would sleep up to 100 ms); writes that arrive while this
    process waits join its next batch. Always through the blocking call, even when the lock looks free: a
    non-blocking grab lets the process that just committed take it straight back, which measured 20% slower.
    """

    engine = "sqlite"

    def __init__(self, path: str, max_debt_cents: int, branch_timezone: str = "UTC", startup=()):
        super().__init__(max_debt_cents, branch_timezone, startup)
        self.path = path
        self._writer: SQLiteConnection | None = None
        self._reader: SQLiteConnection | None = None
        self._open_lock: asyncio.Lock | None = None
        self._read_lock: asyncio.Lock | None = None
        self._lock_fd: int | None = None
        self._inuse_fd: int | None = None  # a shared lock on DB_PATH.inuse while open: a restore waits for none
        self._inode: int | None = None  # the file opened (readiness: is DB_PATH still it?)
        self._revocations = FileGeneration(f"{path}.token-generation")

    @property
    def revocation_signal(self):
        return self._revocations

    def describe(self) -> str:
        return f"SQLite: {self.path}"

    async def _connect(self, iter_chunk_size: int = 64) -> SQLiteConnection:
        conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                       iter_chunk_size=iter_chunk_size)
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = FULL")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.create_function("sha256_hex", 1, _sha256_hex, deterministic=True)
        return SQLiteConnection(conn)

    async def open(self) -> None:
        if self._writer is not None and self._pid == os.getpid():
            return
        if self._pid != os.getpid():  # a forked child: the parent's connections belong to a loop it lacks
            self._reset()
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
            self._read_lock = asyncio.Lock()
        async with self._open_lock:
            if self._writer is not None:
                return
            try:
                lock_fd = os.open(f"{self.path}.writelock", os.O_RDWR | os.O_CREAT, 0o600)
                inuse_fd = os.open(f"{self.path}.inuse", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as error:
                raise DatabaseUnreachable(f"DB_PATH={self.path!r}: cannot open it ({error.strerror})") from None
            # held while open, by every process on the file (snapshots.held_alone: a restore refuses meanwhile)
            await asyncio.get_running_loop().run_in_executor(None, fcntl.flock, inuse_fd, fcntl.LOCK_SH)
            try:
                # Workers starting together on a new file would race to switch it to WAL, and SQLite answers
                # that race with "database is locked" at once (no busy wait): they open it one at a time.
                await asyncio.get_running_loop().run_in_executor(None, fcntl.flock, lock_fd, fcntl.LOCK_EX)
                try:
                    try:
                        writer = await self._connect()
                    except sqlite3.OperationalError as error:
                        raise DatabaseUnreachable(f"DB_PATH={self.path!r}: cannot open it ({error})") from None
                    try:
                        await self._migrate(writer)
                        reader = await self._connect()
                    except BaseException:
                        await writer.raw.close()
                        raise
                finally:
                    fcntl.flock(lock_fd, fcntl.LOCK_UN)
            except BaseException:
                os.close(lock_fd)
                os.close(inuse_fd)
                raise
            self._writer, self._reader, self._lock_fd, self._inuse_fd = writer, reader, lock_fd, inuse_fd
            self._inode = os.stat(self.path).st_ino

    async def _migrate(self, writer: SQLiteConnection) -> None:
        """Apply the migrations not applied yet (PRAGMA user_version counts them) and the start-up steps, in one
        transaction (a failure closes the connection, which rolls it back)."""
        # Foreign keys are off while migrating (SQLite's way to rebuild a table others refer to: a PRAGMA that
        # only takes effect outside a transaction) and checked before the commit instead.
        await writer.execute("PRAGMA foreign_keys = OFF")
        await writer.execute("BEGIN IMMEDIATE")
        (version,), = await writer.fetchall("PRAGMA user_version")
        migrated = False
        for migration in migrations("sqlite")[version:]:
            migrated = True
            for statement in filter(str.strip, _split(migration.sql)):
                await writer.execute(statement)
            await writer.execute(f"PRAGMA user_version = {migration.version}")
            log.info("schema migrated to version %d (%s)", migration.version, migration.name)
        for step in self.startup:
            await step(writer, self, migrated)
        # only after a migration: the check reads every row of every table with a reference (minutes on a large
        # ledger), and nothing else writes with the keys off
        if migrated and await writer.fetchall("PRAGMA foreign_key_check"):
            raise DatabaseUnreachable(f"DB_PATH={self.path!r}: the migration left a broken reference; rolled back")
        await writer.execute("COMMIT")
        await writer.execute("PRAGMA foreign_keys = ON")

    async def schema_version(self) -> int:
        """PRAGMA user_version, read on the reader connection; but first, the file at DB_PATH must still be the one
        this process opened (moved, deleted or replaced, it is not the ledger any more: FileNotFoundError)."""
        await self.open()
        if os.stat(self.path).st_ino != self._inode:
            raise FileNotFoundError(f"{self.path} is not the file this process opened")
        (version,), = await self.read(lambda conn: conn.fetchall("PRAGMA user_version"))
        return version

    async def close(self) -> None:
        await self._wait_for_drain()
        for conn in (self._writer, self._reader):
            if conn is not None:
                await conn.raw.close()
        for fd in (self._lock_fd, self._inuse_fd):
            if fd is not None:
                os.close(fd)
        self._reset()

    def _reset(self) -> None:
        """Closed, with nothing bound to an event loop: open() may run on any loop (aio.adopt moves it)."""
        settings = self.settings
        self.__init__(self.path, self.max_debt_cents, self.branch_timezone, self.startup)
        self.settings = settings

    async def read(self, op, snapshot: bool = False, long: bool = False):
        await self.open()
        if long:
            async with self._long_reads():
                conn = await self._connect(iter_chunk_size=512)
                try:
                    return await self._read_on(conn, op, snapshot)
                finally:
                    await conn.raw.close()
        async with self._read_lock:
            return await self._read_on(self._reader, op, snapshot)

    @staticmethod
    async def _read_on(conn: SQLiteConnection, op, snapshot: bool):
        if not snapshot:
            return await op(conn)
        await conn.execute("BEGIN")
        try:
            return await op(conn)
        finally:
            await conn.execute("COMMIT")

    @contextlib.asynccontextmanager
    async def _turn(self):
        await asyncio.get_running_loop().run_in_executor(None, fcntl.flock, self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    async def _commit(self, batch) -> None:
        conn = self._writer
        outcomes = []
        try:
            await conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            log.error("could not start a write transaction: %s", error)
            return settle([(future, LedgerUnavailable(str(error)), None) for _, future in batch])
        try:
            for op, future in batch:
                try:
                    outcomes.append((future, None, await op(conn)))
                except Exception as error:  # the op's own failure; by the contract it wrote nothing
                    outcomes.append((future, error, None))
                    if not conn.in_transaction:  # SQLite rolled the whole transaction back (e.g. disk full)
                        raise
            await conn.execute("COMMIT")
        except Exception as error:
            log.exception("write transaction failed; rolled back")
            with contextlib.suppress(sqlite3.Error):
                await conn.execute("ROLLBACK")
            failure = LedgerUnavailable(str(error))
            return settle([(future, failure, None) for _, future in batch])
        settle(outcomes)


def _sha256_hex(text: str) -> str:
    """SQL function sha256_hex(text), used by the journal insert to chain each row to the previous one."""
    return hashlib.sha256(text.encode()).hexdigest()


def _split(script: str) -> list[str]:
    """Split a migration into statements, keeping each CREATE TRIGGER ... END whole."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current)
            current = ""
    return statements + ([current] if current.strip() else [])
