"""PostgreSQL, for several app servers on one ledger: asyncpg, one writer connection per process, group commits
taken in turns through an advisory lock, a few reader connections.

Why these choices (README, "PostgreSQL"): asyncpg measured 10-25% faster than psycopg 3 on the deposit path here;
committing a group of writes in one transaction measured 2-3x a transaction per write; and taking turns a whole
group at a time (pg_advisory_xact_lock, released by the commit) keeps SQLite's guarantees without a rule of its
own: each account's hash chain is appended in order and groups never deadlock. Everything is transaction-scoped
(no LISTEN, no session settings, no session advisory locks), so it also works behind PgBouncer in transaction
mode; there set DB_PREPARED_STATEMENTS=0, since PgBouncer before 1.21 cannot carry prepared statements.

Over 300 lines: the connection wrapper, the group commit with its batched postings, and the shared revocation
generation all work on this engine's connections; apart they would each need the others' internals.
"""
import asyncio
import contextlib
import functools
import logging
import os
import re
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from atm_web.storage.common import (
    STREAM_CHUNK,
    Connection,
    Database,
    DatabaseUnreachable,
    IntegrityError,
    LedgerUnavailable,
    StaleAuthorisation,
    authorisation,
    settle,
)
from atm_web.storage.migrate import migrations

log = logging.getLogger(__name__)
WRITE_LOCK = 0x41544D01     # pg_advisory_xact_lock key: the turn to commit a group of writes
MIGRATION_LOCK = 0x41544D02  # and to migrate the schema
LOCK_TIMEOUT = "5s"          # how long a group waits for its turn before answering "busy" (as SQLite's busy wait)
#                              (post_entries and post_authorised_entries, migrations 0002 and 0004, set the
#                              same for a group of postings alone)
RETRIES = 3                  # a group that meets a deadlock or a serialisation failure runs again, this often
# A connection that cannot go on (the server went away, or dropped it: asyncpg may then report its own state as
# broken): the op fails with LedgerUnavailable and the connection is replaced.
_CONNECTION_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.exceptions.ConnectionDoesNotExistError,
                      asyncpg.exceptions.InterfaceError, asyncpg.exceptions.CannotConnectNowError,
                      asyncpg.exceptions.InternalClientError, asyncpg.exceptions.AdminShutdownError)
_RETRYABLE = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)


def redacted(url: str) -> str:
    """The URL with its password replaced by ***, fit for a log line or an error message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


@functools.lru_cache(maxsize=1024)
def numbered(sql: str) -> tuple[str, tuple[str, ...] | None]:
    """The statement with `?` or `:name` placeholders as PostgreSQL's $1, $2...; and the names in their order
    (None for `?`). String literals, quoted names, comments and `::` casts are left alone."""
    out, names, positional = [], [], 0
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            end = sql.index(c, i + 1)
            while end + 1 < n and sql[end + 1] == c:  # a doubled quote inside the literal
                end = sql.index(c, end + 2)
            out.append(sql[i:end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif sql.startswith("::", i):
            out.append("::")
            i += 2
        elif c == "?":
            positional += 1
            out.append(f"${positional}")
            i += 1
        elif c == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
            match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", sql[i + 1:])
            name = match.group(0)
            if name not in names:
                names.append(name)
            out.append(f"${names.index(name) + 1}")
            i += 1 + len(name)
        else:
            out.append(c)
            i += 1
    if names and positional:
        raise ValueError("a statement uses either ? or :name placeholders, not both")
    return "".join(out), (tuple(names) if names else None)


def _arguments(names, params) -> list:
    if names is None:
        return list(params)
    return [params[name] for name in names]


class PostgresConnection(Connection):
    """An asyncpg connection behind the engine-neutral calls."""

    def __init__(self, raw: asyncpg.Connection):
        super().__init__()
        self.raw = raw
        self.broken = False  # a statement failed outside any savepoint: the transaction can only roll back

    async def _run(self, method, sql, params):
        text, names = numbered(sql)
        try:
            return await method(text, *_arguments(names, params))
        except asyncpg.exceptions.IntegrityConstraintViolationError as error:
            self.broken = True
            raise IntegrityError(error.constraint_name or error.message, error.message) from None
        except asyncpg.exceptions.PostgresError:
            self.broken = True
            raise

    async def fetchall(self, sql, params=()):
        return [tuple(row) for row in await self._run(self.raw.fetch, sql, params)]

    async def execute(self, sql, params=()):
        await self._run(self.raw.execute, sql, params)

    async def chunks(self, sql, params=(), alone=False):
        # a chunk at a time (fetch), not a row at a time (a cursor's async iteration checks the connection and
        # awaits for every row: a third of the end-of-day report's time). The next chunk is asked for before this
        # one is handed out (the server reads it meanwhile) only for a caller that runs no other statement on the
        # connection until the stream ends (`alone`): an asyncpg connection runs one operation at a time
        text, names = numbered(sql)
        cursor = await self.raw.cursor(text, *_arguments(names, params))
        if not alone:
            while rows := await cursor.fetch(STREAM_CHUNK):
                yield [tuple(row) for row in rows]
            return
        following = asyncio.ensure_future(cursor.fetch(STREAM_CHUNK))
        try:
            while rows := await following:
                following = asyncio.ensure_future(cursor.fetch(STREAM_CHUNK))
                await asyncio.sleep(0)  # the request sent now
                yield [tuple(row) for row in rows]
        finally:
            if not following.done():  # the caller stopped early: the connection is free once the answer is in
                with contextlib.suppress(Exception):
                    await following

    async def lock_accounts(self, numbers) -> None:
        await self.raw.execute("SELECT 1 FROM accounts WHERE account_number = ANY($1::text[]) "
                               "ORDER BY account_number FOR UPDATE", sorted(set(numbers)))

    def _recovered(self) -> None:
        self.broken = False


class PostgresDatabase(Database):
    """A PostgreSQL database shared by any number of processes and servers."""

    engine = "postgresql"
    checks_authorisation = True

    def __init__(self, url: str, max_debt_cents: int, pool_size: int = 3, prepared_statements: bool = True,
                 branch_timezone: str = "UTC", startup=()):
        super().__init__(max_debt_cents, branch_timezone, startup)
        self.url, self.pool_size, self.prepared_statements = url, pool_size, prepared_statements
        self._writer: PostgresConnection | None = None
        self._readers: asyncio.Queue | None = None
        self._reader_list: list[PostgresConnection] = []
        self._open_lock: asyncio.Lock | None = None
        self._revocations: SharedGeneration | None = None

    def describe(self) -> str:
        return f"PostgreSQL: {redacted(self.url)}"

    @property
    def revocation_signal(self):
        if self._revocations is None:
            self._revocations = SharedGeneration(self)
        return self._revocations

    async def _connect(self) -> PostgresConnection:
        raw = await asyncpg.connect(self.url, timeout=10, statement_cache_size=100 if self.prepared_statements else 0)
        return PostgresConnection(raw)

    async def open(self) -> None:
        if self._writer is not None and self._pid == os.getpid():
            return
        if self._pid != os.getpid():  # a forked child: the parent's connections belong to a loop it lacks
            self._reset()
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._writer is not None:
                return
            try:
                writer = await self._connect()
            except (*_CONNECTION_ERRORS, asyncpg.exceptions.PostgresError) as error:
                raise DatabaseUnreachable(f"DATABASE_URL={redacted(self.url)}: cannot connect "
                                          f"({type(error).__name__}: {error})") from None
            try:
                await self._migrate(writer)
                readers = [await self._connect() for _ in range(max(1, self.pool_size - 1))]
            except BaseException:
                await writer.raw.close()
                raise
            self._readers = asyncio.Queue()
            for reader in readers:
                self._readers.put_nowait(reader)
            self._reader_list, self._writer = readers, writer

    async def _migrate(self, conn: PostgresConnection) -> None:
        """Apply the migrations schema_migrations does not list, and the start-up steps, in one transaction under the
        migration lock: servers starting together migrate once, the others wait and find it done."""
        async with conn.raw.transaction():
            await conn.raw.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            await conn.raw.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                                   "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            applied = {row[0] for row in await conn.raw.fetch("SELECT version FROM schema_migrations")}
            migrated = False
            for migration in migrations("postgresql"):
                if migration.version in applied:
                    continue
                migrated = True
                await conn.raw.execute(migration.sql)
                await conn.raw.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                       migration.version, migration.name)
                log.info("schema migrated to version %d (%s)", migration.version, migration.name)
            for step in self.startup:
                await step(conn, self, migrated)

    async def schema_version(self) -> int:
        rows = await self.read(lambda conn: conn.fetchall("SELECT coalesce(max(version), 0) FROM schema_migrations"))
        return rows[0][0]

    async def close(self) -> None:
        await self._wait_for_drain()
        for conn in [self._writer, *self._reader_list]:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.raw.close(timeout=5)
        self._reset()

    def _reset(self) -> None:
        """Closed, with nothing bound to an event loop: open() may run on any loop (aio.adopt moves it)."""
        settings = self.settings
        self.__init__(self.url, self.max_debt_cents, self.pool_size, self.prepared_statements, self.branch_timezone,
                      self.startup)
        self.settings = settings

    async def read(self, op, snapshot: bool = False, long: bool = False):
        await self.open()
        if long:
            async with self._long_reads():
                try:
                    conn = await self._connect()
                except _CONNECTION_ERRORS as error:
                    raise LedgerUnavailable(f"could not connect to the database: {error}") from None
                try:
                    return await self._read_on(conn, op, snapshot)
                except _CONNECTION_ERRORS as error:
                    raise LedgerUnavailable(f"lost the connection to the database: {error}") from None
                finally:
                    with contextlib.suppress(Exception):
                        await conn.raw.close(timeout=5)
        conn = await self._readers.get()
        try:
            if conn.raw.is_closed():
                conn = await self._connect()
            return await self._read_on(conn, op, snapshot)
        except _CONNECTION_ERRORS as error:
            with contextlib.suppress(Exception):
                conn.raw.terminate()
            raise LedgerUnavailable(f"lost the connection to the database: {error}") from None
        finally:
            self._readers.put_nowait(conn)

    @staticmethod
    async def _read_on(conn: PostgresConnection, op, snapshot: bool):
        if not snapshot:
            return await op(conn)
        async with conn.raw.transaction(isolation="repeatable_read", readonly=True):
            return await op(conn)

    async def write(self, op):
        """As Database.write; an op of a request whose token is trusted on condition (`authorisation`) runs only
        while no token has been revoked since, checked in its own transaction (StaleAuthorisation if not)."""
        granted = authorisation.get()
        return await super().write(op if granted is None else _Authorised(op, granted))

    def _turn(self):
        return contextlib.nullcontext()  # the turn is the advisory lock each group's transaction takes first

    async def _begin(self, conn: PostgresConnection) -> None:
        conn.broken = False
        await conn.raw.execute(f"BEGIN; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; "
                               f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")

    async def _commit(self, batch) -> None:
        """Postings (batchable ops, with batch_row) go to the database as one post_entries call; any other op runs on
        its own, after them, in the same transaction. A group of postings alone is that one statement: one round
        trip, and the statement is its transaction."""
        postings = [(op, future) for op, future in batch if getattr(op, "batchable", False)]
        others = [(op, future) for op, future in batch if not getattr(op, "batchable", False)]
        if others:
            return await self._commit_group(postings, others)
        try:
            writer = await self._ready_writer()
        except (*_CONNECTION_ERRORS, asyncpg.exceptions.PostgresError) as error:  # nothing was sent
            log.error("could not reconnect to write: %s", error)
            return settle([(future, LedgerUnavailable(str(error)), None) for _, future in postings])
        try:
            self._settle(await self._post_entries(writer, postings))
        except (*_RETRYABLE, asyncpg.exceptions.LockNotAvailableError, *_CONNECTION_ERRORS) as error:
            log.error("could not post a group of entries: %s", error)
            if isinstance(error, _CONNECTION_ERRORS):
                await self._discard_writer()
            settle([(future, LedgerUnavailable(str(error), outcome_unknown=isinstance(error, _CONNECTION_ERRORS)),
                     None) for _, future in postings])
        except asyncpg.exceptions.PostgresError:
            log.exception("post_entries failed; posting each entry on its own instead")
            self._pending[:0] = [(_generic(op), future) for op, future in postings]

    async def _ready_writer(self) -> PostgresConnection:
        """The writer connection, made again if the server dropped it."""
        if self._writer is None or self._writer.raw.is_closed():
            self._writer = await self._connect()
        return self._writer

    async def _post_entries(self, conn: PostgresConnection, postings) -> list:
        """One post_authorised_entries call for these postings: (future, error, result) for each; the error is
        _Again for a posting to make in the next group (see _settle)."""
        if not postings:
            return []
        columns = list(zip(*(op.batch_row() for op, _ in postings), strict=True))
        generations = [int(op.granted.generation) if isinstance(op, _Authorised) else None for op, _ in postings]
        rows = await conn.raw.fetch(
            "SELECT entry, outcome, tx_id, balance, constraint_name FROM post_authorised_entries($1::bigint[], $2, "
            "$3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], "
            "$11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::float8[], $17::float8[])",
            generations, WRITE_LOCK, *[list(column) for column in columns])
        outcomes = []
        for (op, future), row in zip(postings, sorted(rows, key=lambda r: r[0]), strict=True):
            if row[1] == "stale":
                outcomes.append((future, StaleAuthorisation(), None))
                continue
            if row[1] == "retry":
                outcomes.append((future, _Again(op), None))
                continue
            if isinstance(op, _Authorised):
                op.granted.checked = True
            try:
                outcomes.append((future, None, op.from_batch(*row[1:])))
            except Exception as error:  # the posting's refusal, as the generic path would raise it
                outcomes.append((future, error, None))
        return outcomes

    def _settle(self, outcomes) -> None:
        """settle(), but a posting held back by another's stale token goes first into the next group."""
        self._pending[:0] = [(error.op, future) for future, error, _ in outcomes if isinstance(error, _Again)]
        settle([outcome for outcome in outcomes if not isinstance(outcome[1], _Again)])

    async def _commit_group(self, postings, batch) -> None:
        for attempt in range(1, RETRIES + 1):
            try:
                conn = await self._ready_writer()
                await self._begin(conn)
            except (asyncpg.exceptions.LockNotAvailableError, *_CONNECTION_ERRORS) as error:
                log.error("could not start a write transaction: %s", error)
                await self._discard_writer()
                return settle([(future, LedgerUnavailable(str(error)), None) for _, future in batch])
            outcomes = []
            try:
                outcomes += await self._post_entries(conn, postings)
                for index, (op, future) in enumerate(batch):
                    try:
                        outcomes.append((future, None, await op(conn)))
                    except Exception as error:
                        if isinstance(error, (*_RETRYABLE, *_CONNECTION_ERRORS)):
                            raise
                        if conn.broken:  # the op spoiled the transaction: it runs alone, the others again
                            await conn.raw.execute("ROLLBACK")
                            self._pending[:0] = postings + batch[:index] + batch[index + 1:]
                            return await self._commit_alone(op, future)
                        outcomes.append((future, error, None))
                await conn.raw.execute("COMMIT")
            except _RETRYABLE as error:
                await self._rollback(conn)
                if attempt < RETRIES:
                    log.warning("write group met %s; running it again", type(error).__name__)
                    continue
                return settle([(future, LedgerUnavailable(str(error)), None) for _, future in postings + batch])
            except Exception as error:
                log.exception("write transaction failed; rolled back")
                committing = len(outcomes) == len(postings) + len(batch)
                await self._rollback(conn)
                failure = LedgerUnavailable(str(error), outcome_unknown=committing)
                return settle([(future, failure, None) for _, future in postings + batch])
            return self._settle(outcomes)

    async def _commit_alone(self, op, future) -> None:
        """An op that spoiled its group's transaction, in a transaction of its own: its error is its answer."""
        conn = self._writer
        try:
            await self._begin(conn)
            try:
                result = await op(conn)
            except Exception as error:
                await conn.raw.execute("ROLLBACK")
                return settle([(future, error, None)])
            await conn.raw.execute("COMMIT")
        except Exception as error:
            log.exception("write transaction failed; rolled back")
            await self._rollback(conn)
            return settle([(future, LedgerUnavailable(str(error)), None)])
        settle([(future, None, result)])

    async def _rollback(self, conn: PostgresConnection) -> None:
        try:
            await conn.raw.execute("ROLLBACK")
        except Exception:  # the connection is gone; the server rolled back for us
            await self._discard_writer()

    async def _discard_writer(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.raw.terminate()
            self._writer = None


class SharedGeneration:
    """The token_revocations generation, as a revocation signal (tokens.TokenCache) across servers that share only
    the database. Each caller gets a value read by a query that began after its call did, so a revocation
    committed before then is always seen; callers that arrive while a read is in flight share the next one, so a
    busy process reads it once per group of requests, not once per request."""

    def __init__(self, db: "PostgresDatabase"):
        self.db = db
        self._next: asyncio.Future | None = None  # the callers waiting for a read that has not begun yet
        self._reading = False

    async def generation(self) -> str:
        future = self._next
        if future is None:
            future = self._next = asyncio.get_running_loop().create_future()
            if not self._reading:
                self._begin()
        return await asyncio.shield(future)

    def announce(self) -> None:
        """Nothing to do after the commit: the revocation bumped the row in its own transaction."""

    def _begin(self) -> None:
        future, self._next = self._next, None
        self._reading = True
        asyncio.get_running_loop().create_task(self._read(future))

    async def _read(self, future: asyncio.Future) -> None:
        try:
            rows = await self.db.read(lambda conn: conn.fetchall("SELECT generation FROM token_revocations"))
            future.set_result(str(rows[0][0]))
        except Exception as error:
            future.set_exception(error)
        finally:
            self._reading = False
            if self._next is not None:
                self._begin()


class _Authorised:
    """An op of a request whose token is trusted on condition: it runs only while the revocation generation is
    still the one the token was verified at. The generic path reads it in the op's transaction, after the
    group's advisory lock (_begin) so in turn with every revocation; a batched posting carries it to
    post_authorised_entries, which does the same."""

    def __init__(self, op, granted):
        self.op, self.granted = op, granted

    def __getattr__(self, name):  # batch_row and from_batch, when the op is a posting
        if "op" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["op"], name)

    async def __call__(self, conn):
        rows = await conn.fetchall("SELECT generation FROM token_revocations")
        if str(rows[0][0]) != self.granted.generation:
            raise StaleAuthorisation()
        self.granted.checked = True
        return await self.op(conn)


class _Again:
    """Not an error: the posting was held back because another in its group carried a stale token."""

    def __init__(self, op):
        self.op = op


def _generic(op):
    """The op without its batch form: run through the generic path (op(conn))."""
    async def generic(conn):
        return await op(conn)
    return generic
