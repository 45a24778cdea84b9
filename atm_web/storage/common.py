"""What both engines share: the errors the ledger sees, and the group commit every write goes through.

A write is an op: an async function of one connection that runs statements and returns a result. Writes that
arrive together run one after another on the process's one writer connection, inside ONE transaction, and each
is answered only once that transaction is durable (one commit, one fsync, for the whole group). Processes and
servers sharing the database take turns a whole group at a time (each engine says how), so a group never
interleaves with another: each account's hash chain is built in order, and no two groups can deadlock.

The contract for an op: if it raises, it leaves nothing behind. A single statement does so by itself on SQLite;
on PostgreSQL a refused statement spoils the whole transaction, so an op that may be refused runs that statement
inside `conn.refusable()`, and several statements that must stand or fall together inside `conn.savepoint()`.
An op that breaks that contract costs a retry, never a wrong answer: the engine rolls the group back, runs the
op alone, and runs the others again.
"""
import asyncio
import contextvars
import logging
import os
from contextlib import asynccontextmanager
from dataclasses import dataclass

MAX_BATCH = 256
STREAM_CHUNK = 1000  # rows a stream (Connection.stream) reads at a time
LONG_READS = 2  # long reads (Database.read(long=True)) at once per process, each on a connection of its own
log = logging.getLogger(__name__)


class LedgerUnavailable(Exception):
    """The database could not take the write in time (locked, unreachable, disk error); nothing was written,
    unless outcome_unknown: the connection was lost while committing, so the write may stand (a retry with the
    same Idempotency-Key tells)."""

    def __init__(self, message: str, outcome_unknown: bool = False):
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


class StaleAuthorisation(Exception):
    """A write made on condition (see `authorisation`) found that a token was revoked since: nothing written."""


@dataclass
class Authorisation:
    """The revocation generation a request's API token was verified at, when the app trusted it from its cache
    without reading the current one; `checked` once one of the request's writes found it still current."""
    generation: str
    checked: bool = False


# Set for a request whose token is trusted on condition (tokens.token_for, on_condition): an engine that
# `checks_authorisation` makes each of the request's writes only if the generation has not moved, in the write's
# own transaction, in turn with every revocation; else the write raises StaleAuthorisation.
authorisation: "contextvars.ContextVar[Authorisation | None]" = contextvars.ContextVar("authorisation",
                                                                                       default=None)


class DatabaseUnreachable(Exception):
    """Start-up could not open or reach the configured database; the message names the variable, no password."""


class IntegrityError(Exception):
    """The database refused a statement by a constraint or trigger; `constraint` names it (the same name on both
    engines: a CHECK's or index's name, or a trigger's refusal text)."""

    def __init__(self, constraint: str, message: str):
        super().__init__(message)
        self.constraint = constraint


class Connection:
    """One engine connection, as ops see it: the same calls and placeholders (`?` or `:name`) on both engines."""

    def __init__(self):
        self._depth = 0

    async def fetchall(self, sql: str, params=()) -> list[tuple]:
        raise NotImplementedError

    async def execute(self, sql: str, params=()) -> None:
        raise NotImplementedError

    def chunks(self, sql: str, params=(), alone: bool = False):
        """The rows of a query as an async iterator of lists of at most STREAM_CHUNK rows (inside a read snapshot),
        without loading them all. The caller may run other statements on the connection between chunks, unless it
        says it will not (alone=True: then the next chunk may be read while it works through this one)."""
        raise NotImplementedError

    async def stream(self, sql: str, params=()):
        """The rows of a query as an async iterator, one by one (chunks, for a caller that goes through many)."""
        async for rows in self.chunks(sql, params):
            for row in rows:
                yield row

    async def lock_accounts(self, numbers) -> None:
        """Lock these accounts' rows in account-number order (a transfer's two accounts, say), so that two
        transactions can never wait on each other's accounts in opposite orders."""

    @asynccontextmanager
    async def savepoint(self):
        """`async with conn.savepoint():` the statements inside succeed or fail together (nestable)."""
        self._depth += 1
        name = f"sp{self._depth}"
        await self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            await self.execute(f"ROLLBACK TO SAVEPOINT {name}")
            await self.execute(f"RELEASE SAVEPOINT {name}")
            self._recovered()
            raise
        else:
            await self.execute(f"RELEASE SAVEPOINT {name}")
        finally:
            self._depth -= 1

    def refusable(self):
        """`async with conn.refusable():` around one statement the database may refuse (a CHECK): its refusal
        leaves the transaction usable. Free on SQLite, where a refused statement undoes only itself."""
        return self.savepoint()

    def _recovered(self) -> None:
        """A rollback to a savepoint has undone whatever failed inside it."""


class Database:
    """The engine-neutral half of a database: group-committed writes; the engines open, read and commit."""

    engine = ""
    checks_authorisation = False  # whether writes honour `authorisation` (else every token check reads the signal)

    def __init__(self, max_debt_cents: int, branch_timezone: str = "UTC", startup=()):
        self.max_debt_cents = max_debt_cents
        self.branch_timezone = branch_timezone  # an IANA name: the zone of a posting's business date
        # Start-up steps a higher layer gives (the ledger's MAX_DEBT): each `await step(conn, db, migrated)` runs in
        # the migration's transaction (migrated: whether a migration was applied just now), so storage itself knows
        # no domain module.
        self.startup = tuple(startup)
        self.settings = None  # the branch's settings, given by the app (core.settings.settings_of reads them)
        self.idempotency_purged_at = 0.0  # when accounts last purged expired idempotency keys (app clock)
        self._pending: list = []
        self._long_read_turns: asyncio.Semaphore | None = None
        self._drain_task: asyncio.Task | None = None
        self._pid = os.getpid()

    # What each engine provides

    async def open(self) -> None:
        """Connect, migrate the schema and run the start-up steps (idempotent; safe from several processes at
        once)."""
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def read(self, op, snapshot: bool = False, long: bool = False):
        """Run op(connection) outside any write; snapshot=True gives all its statements one consistent view.
        long=True: a read that may take seconds (a report, a verification) runs on a connection of its own, opened
        for it, so the reads of every other request never wait behind it; LONG_READS of them at once per process,
        the others waiting their turn."""
        raise NotImplementedError

    def _long_reads(self) -> asyncio.Semaphore:
        if self._long_read_turns is None:
            self._long_read_turns = asyncio.Semaphore(LONG_READS)
        return self._long_read_turns

    def _turn(self):
        """An async context manager: this process's turn to commit a group, among all that share the data."""
        raise NotImplementedError

    async def _commit(self, batch) -> None:
        """Run the batch's ops in one transaction and settle each one's future after the commit."""
        raise NotImplementedError

    async def schema_version(self) -> int:
        """The number of the last migration the database has had."""
        raise NotImplementedError

    async def readiness(self, timeout_s: float = 1.0) -> dict[str, str]:
        """Whether this database answers within timeout_s and has the code's schema: {"database": "ok" or what is
        wrong, "migrations": "current" or what is wrong}; the words are for an operator, never an error's text."""
        from atm_web.storage.migrate import migrations
        try:
            async with asyncio.timeout(timeout_s):
                version = await self.schema_version()
        except TimeoutError:
            return {"database": f"no answer within {timeout_s:g} s", "migrations": "unknown"}
        except Exception:  # the server down, the file gone: which is in the log, not in the answer
            log.warning("readiness: the database does not answer", exc_info=True)
            return {"database": "unreachable", "migrations": "unknown"}
        expected = len(migrations(self.engine))
        return {"database": "ok", "migrations": "current" if version == expected else
                f"schema version {version}, the code's is {expected}"}

    @property
    def revocation_signal(self):
        """How a token revocation reaches every process at once: `await signal.generation()` (changed by every
        revocation committed before the call began) and `signal.announce()` (after a revocation's commit)."""
        raise NotImplementedError

    # Shared

    async def write(self, op):
        """Run op(connection) in a write transaction; return its result once that transaction is durable."""
        await self.open()
        future = asyncio.get_running_loop().create_future()
        self._pending.append((op, future))
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            async with self._turn():
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._commit(batch)

    async def _wait_for_drain(self) -> None:
        if self._drain_task is not None:
            await asyncio.shield(self._drain_task)


def settle(outcomes) -> None:
    """Answer each op's caller: (future, error or None, result)."""
    for future, error, result in outcomes:
        if future.done():  # the caller went away; its transaction stands or fell with the batch
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
