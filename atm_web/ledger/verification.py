"""Verification: every hash chain, balance and limit recomputed from one snapshot, streamed in constant memory,
from the last checkpoint or from the start; and the outcomes kept for the admin page.

A run reads the journal account by account (each account's rows in order), keeping only the account it is on:
memory does not grow with the ledger. A full run checks every row. The default run starts from the checkpoint of
the last run, when that one passed: only the rows written since, each account's from the chain head that run left
(its last row checked: id, hash and balance after, in chain_heads), so a row added since is checked against the
chain as it was verified. A row edited before the checkpoint is not read again: the next full run catches it (and
a run that failed makes the next default run a full one, so a problem stays reported until it is mended).
"""
import asyncio
import heapq
import itertools
from dataclasses import dataclass

from atm_web.core.clock import journal_time
from atm_web.ledger.chains import atm_row_hash, row_problem
from atm_web.ledger.journal import SIGNED_SQL, TX_COLUMNS, JournalRow
from atm_web.storage import Database

PROBLEMS_KEPT = 100    # problems listed (the first journal rows first); the others are counted
HEADS_PER_WRITE = 500  # chain heads kept per write, while the run goes on
BALANCES_PER_READ = 500  # accounts whose balance is compared with their journal in one statement
PROGRESS_EVERY = 20_000  # rows between two progress calls

# Transactions whose rows do not sum to zero, or that have one row only. Rows written before double entry belong
# to entry 0 with the opening entry, which gave clearing their other side.
_UNBALANCED = (f"SELECT coalesce(entry_id, 0), CAST(sum({SIGNED_SQL}) AS BIGINT), count(*) FROM journal "
               f"WHERE id > ? AND id <= ? GROUP BY coalesce(entry_id, 0) "
               f"HAVING sum({SIGNED_SQL}) != 0 OR (count(*) < 2 AND coalesce(entry_id, 0) != 0) ORDER BY 1")
_CASH_DIRECTION_SQL = ("CASE WHEN j.kind IN ('deposit', 'reversal_credit') THEN 'in' "
                       "WHEN j.kind IN ('withdrawal', 'reversal_debit') THEN 'out' END")
# customer_cash (the large-cash rule's totals) against the journal, both ways, over a range of entries/rows.
_CASH_WITHOUT_ROW = (
    "SELECT c.entry_id, c.account_number FROM customer_cash c WHERE c.entry_id > ? AND c.entry_id <= ? "
    "AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.entry_id = c.entry_id AND j.account_number = c.account_number "
    f"AND j.amount_cents = c.amount_cents AND {_CASH_DIRECTION_SQL} = c.direction) ORDER BY 1")
_ROW_WITHOUT_CASH = (
    "SELECT j.id FROM journal j WHERE j.id > ? AND j.id <= ? "
    "AND j.kind IN ('deposit', 'withdrawal', 'reversal_credit', 'reversal_debit') AND j.account_number NOT LIKE '@%' "
    "AND EXISTS (SELECT 1 FROM journal d WHERE d.entry_id = j.entry_id AND d.account_number LIKE '@drawer-%') "
    "AND NOT EXISTS (SELECT 1 FROM customer_cash c WHERE c.entry_id = j.entry_id "
    "AND c.account_number = j.account_number) ORDER BY 1")


@dataclass(frozen=True)
class Verification:
    """A run's outcome: its kind (full, or incremental from a checkpoint), the problems (the first journal rows
    first, at most PROBLEMS_KEPT; problem_count counts them all), the rows it read, and the last row it covered."""
    kind: str
    problems: list[str]
    rows_checked: int
    through_id: int
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        return not self.problem_count


class _Problems:
    """The problems a run found: the PROBLEMS_KEPT with the smallest keys (a journal row's id; others after)."""

    def __init__(self):
        self.count = 0
        self._kept: list = []  # a max-heap by key: (-key, -sequence, text)
        self._sequence = itertools.count()

    def add(self, text: str, row_id: int | None = None) -> None:
        self.count += 1
        item = (-(row_id if row_id is not None else 2**62), -next(self._sequence), text)
        if len(self._kept) < PROBLEMS_KEPT:
            heapq.heappush(self._kept, item)
        elif item > self._kept[0]:
            heapq.heapreplace(self._kept, item)

    def listed(self) -> list[str]:
        return [text for *_, text in sorted(self._kept, reverse=True)]


class _Heads:
    """Chain heads of the accounts a run found sound, written as it goes (one write at a time, beside the app's
    writes); never moved back (a head only moves to a later row)."""

    def __init__(self, db: Database):
        self.db = db
        self.batch: list[tuple] = []
        self.writing: asyncio.Future | None = None

    async def add(self, number: str, last_id: int, hash_: str | None, balance: int) -> None:
        self.batch.append((number, last_id, hash_, balance))
        if len(self.batch) >= HEADS_PER_WRITE:
            await self.flush()

    async def flush(self) -> None:
        if self.writing is not None:
            await self.writing
            self.writing = None
        if self.batch:
            rows, self.batch = self.batch, []
            sql = ("INSERT INTO chain_heads (account_number, last_id, hash, balance_cents) VALUES "
                   + ", ".join(["(?, ?, ?, ?)"] * len(rows))
                   + " ON CONFLICT (account_number) DO UPDATE SET last_id = excluded.last_id, hash = excluded.hash, "
                     "balance_cents = excluded.balance_cents WHERE excluded.last_id >= chain_heads.last_id")
            params = [value for row in rows for value in row]
            self.writing = asyncio.ensure_future(self.db.write(lambda conn: conn.execute(sql, params)))

    async def close(self) -> None:
        await self.flush()
        await self.flush()


@dataclass
class _Chain:
    """The account a run is on: its last row so far (from its chain head, on an incremental run)."""
    number: str
    last_id: int
    hash: str | None
    balance: int
    sound: bool = True

    def follow(self, tx: JournalRow) -> str | None:
        """The account's next row: what is wrong with it (None: nothing); the chain moves on to it either way."""
        problem = row_problem(tx, self.hash, self.balance)
        self.balance += tx.signed_cents
        self.last_id = tx.id
        if tx.hash is not None:
            self.hash = tx.hash
        self.sound = self.sound and problem is None
        return problem


class _Run:
    """One verification run over a snapshot (see the module's docstring)."""

    def __init__(self, conn, since: int, through: int, heads: _Heads | None, progress):
        self.conn, self.since, self.through, self.heads = conn, since, through, heads
        self.progress = progress
        self.problems = _Problems()
        self.rows = 0
        self.balances: list[tuple[str, int]] = []  # accounts read, their balance by the journal: to compare

    async def chains(self) -> None:
        """Every account's rows in the range, in order: each row's balance after and hash against the row before
        it (the account's chain head, for an incremental run)."""
        incremental = self.since > 0
        head_columns = ", h.last_id, h.hash, h.balance_cents" if incremental else ", NULL, NULL, NULL"
        head_join = "LEFT JOIN chain_heads h ON h.account_number = j.account_number" if incremental else ""
        # an expression (`|| ''`) where an incremental run orders: it sorts the few rows after the checkpoint,
        # rather than walking the whole account index in order for them
        order = "j.account_number || '', j.id" if incremental else "j.account_number, j.id"
        columns = ", ".join(f"j.{name}" for name in TX_COLUMNS.split(", "))
        chain = None
        async for row in self.conn.stream(
                f"SELECT {columns}, j.hash{head_columns} FROM journal j {head_join} "
                f"WHERE j.id > ? AND j.id <= ? ORDER BY {order}", (self.since, self.through)):
            tx, (head_id, head_hash, head_balance) = JournalRow(*row[:-3]), row[-3:]
            if chain is None or tx.account_number != chain.number:
                if chain is not None:
                    await self._account_done(chain)
                chain = _Chain(tx.account_number, head_id or 0, head_hash, head_balance or 0)
            if tx.id <= chain.last_id:  # checked already, by a run that stopped before it was recorded
                continue
            self.rows += 1
            if self.progress is not None and self.rows % PROGRESS_EVERY == 0:
                self.progress(self.rows)
            problem = chain.follow(tx)
            if problem is not None:
                self.problems.add(problem, tx.id)
        if chain is not None:
            await self._account_done(chain)
        await self._compare_balances()
        if self.progress is not None:
            self.progress(self.rows)

    async def _account_done(self, chain: "_Chain") -> None:
        if chain.sound and self.heads is not None:
            await self.heads.add(chain.number, chain.last_id, chain.hash, chain.balance)
        self.balances.append((chain.number, chain.balance))
        if len(self.balances) >= BALANCES_PER_READ:
            await self._compare_balances()

    async def _compare_balances(self) -> None:
        """Each account read: its balance equals its journal (and the account exists)."""
        if not self.balances:
            return
        batch, self.balances = dict(self.balances), []
        numbers = list(batch)
        stored = dict(await self.conn.fetchall(
            f"SELECT account_number, balance_cents FROM accounts WHERE account_number IN "
            f"({', '.join('?' * len(numbers))})", numbers))
        for number in numbers:
            if number not in stored:
                self.problems.add(f"account {number}: journal rows for an account that does not exist")
            elif stored[number] != batch[number]:
                self.problems.add(f"account {number}: balance {stored[number]} differs from its journal sum")

    async def accounts(self) -> None:
        """The accounts this run did not read: a full run, any holding money without a journal row; an
        incremental run, any whose balance moved from its chain head without a row since. Then every account:
        within its limit, no cash account holding less than nothing, all balances summing to zero. On a full
        run, every chain head kept must still be a row of its account, unchanged (a removed or edited head)."""
        if self.since == 0:
            untouched = await self.conn.fetchall(
                "SELECT a.account_number, a.balance_cents FROM accounts a WHERE a.balance_cents != 0 AND NOT EXISTS "
                "(SELECT 1 FROM journal j WHERE j.account_number = a.account_number) ORDER BY 1")
            for number, head_id in await self.conn.fetchall(
                    "SELECT h.account_number, h.last_id FROM chain_heads h LEFT JOIN journal j ON j.id = h.last_id "
                    "WHERE j.id IS NULL OR j.account_number != h.account_number "
                    "OR coalesce(j.hash, '') != coalesce(h.hash, '') ORDER BY 1"):
                self.problems.add(f"account {number}: its row {head_id}, verified before, is gone or changed")
        else:
            untouched = await self.conn.fetchall(
                "SELECT a.account_number, a.balance_cents FROM accounts a "
                "LEFT JOIN chain_heads h ON h.account_number = a.account_number "
                "WHERE a.balance_cents != coalesce(h.balance_cents, 0) AND coalesce(h.last_id, 0) <= ? "
                "AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.account_number = a.account_number AND j.id > ? "
                "AND j.id <= ?) ORDER BY 1", (self.through, self.since, self.through))
        for number, balance in untouched:
            self.problems.add(f"account {number}: balance {balance} differs from its journal sum")
        for number, balance, held, limit in await self.conn.fetchall(
                "SELECT account_number, balance_cents, held_cents, overdraft_limit_cents FROM accounts "
                "WHERE balance_cents - held_cents < -overdraft_limit_cents ORDER BY 1"):
            self.problems.add(f"account {number}: balance {balance} less {held} held is below its limit -{limit}")
        for number, held, pending in await self.conn.fetchall(
                "SELECT a.account_number, a.held_cents, coalesce(h.total, 0) FROM accounts a LEFT JOIN "
                "(SELECT account_number, CAST(sum(amount_cents) AS BIGINT) AS total FROM holds "
                " WHERE status = 'pending' GROUP BY account_number) h ON h.account_number = a.account_number "
                "WHERE a.held_cents != coalesce(h.total, 0) ORDER BY 1"):
            self.problems.add(f"account {number}: {held} held, but its pending holds come to {pending}")
        for number, balance in await self.conn.fetchall(
                "SELECT account_number, balance_cents FROM accounts "
                "WHERE kind IN ('vault', 'drawer') AND balance_cents != 0 AND balance_cents > 0 ORDER BY 1"):
            self.problems.add(f"account {number}: cash account holds less than nothing ({balance})")
        (total,), = await self.conn.fetchall("SELECT CAST(coalesce(sum(balance_cents), 0) AS BIGINT) FROM accounts")
        if total:
            self.problems.add(f"all balances sum to {total}, not to zero")

    async def atm_journals(self) -> None:
        """Each ATM's electronic journal: numbered 1, 2, 3... without a gap, each row's hash from the row before it
        and its own fields. (Every run reads them all: an ATM's journal is small beside the ledger.)"""
        atm_id, seq, previous = None, 0, ""
        async for row in self.conn.stream("SELECT atm_id, seq, at, event, detail, actor, hash FROM atm_journal "
                                          "ORDER BY atm_id, seq"):
            if row[0] != atm_id:
                atm_id, seq, previous = row[0], 0, ""
            seq += 1
            if row[1] != seq:
                self.problems.add(f"ATM {atm_id} journal: row {row[1]} where {seq} should be (removed?)")
                seq = row[1]
            if row[6] != atm_row_hash(previous, *row[:6]):
                self.problems.add(f"ATM {atm_id} journal: row {row[1]}'s hash does not match its fields or its chain "
                                  "(edited?)")
            previous = row[6]

    async def entries(self) -> None:
        """The transactions in the range balance; the customers' cash noted for the large-cash rule agrees with
        the journal both ways."""
        for entry, total, count in await self.conn.fetchall(_UNBALANCED, (self.since, self.through)):
            self.problems.add(f"transaction {entry}: its {count} rows sum to {total}, not to zero")
        first_entry = await _entry_at(self.conn, self.since)
        last_entry = await _entry_at(self.conn, self.through)
        for entry, number in await self.conn.fetchall(_CASH_WITHOUT_ROW, (first_entry, last_entry)):
            self.problems.add(f"transaction {entry}: cash noted on account {number} that its journal row does "
                              "not show")
        for hold_id, in await self.conn.fetchall(_CAPTURE_NOT_AS_HELD, (self.since, self.through)):
            self.problems.add(f"hold {hold_id}: captured, but its row is missing or is not a withdrawal of what was "
                              "captured, within the hold, on its account")
        for row_id, in await self.conn.fetchall(_ROW_WITHOUT_CASH, (self.since, self.through)):
            self.problems.add(f"journal row {row_id}: cash through a drawer not noted for the large-cash rule",
                              row_id)


# A captured hold whose row (written in the range, or never written) is not a withdrawal of what it captured, at
# most its amount, on its account.
_CAPTURE_NOT_AS_HELD = (
    "SELECT h.id FROM holds h LEFT JOIN journal j ON j.id = h.transaction_id "
    "WHERE h.status = 'captured' AND (h.transaction_id IS NULL OR (h.transaction_id > ? AND h.transaction_id <= ? "
    "AND (j.id IS NULL OR j.account_number != h.account_number OR j.kind != 'withdrawal' "
    "OR j.amount_cents != h.captured_cents OR h.captured_cents > h.amount_cents))) ORDER BY h.id")


async def _entry_at(conn, row_id: int) -> int:
    """The transaction of the last row up to row_id that has one (0: none); numbers grow with row ids."""
    rows = await conn.fetchall("SELECT entry_id FROM journal WHERE id <= ? AND entry_id IS NOT NULL "
                               "ORDER BY id DESC LIMIT 1", (row_id,))
    return rows[0][0] if rows else 0


async def run(db: Database, *, since: int = 0, keep_heads: bool = False, progress=None,
              total=None) -> Verification:
    """Verify the rows after `since` (0: every row), from one snapshot, on a connection of its own (a long read
    never holds the others). keep_heads: keep each sound account's chain head (the next default run starts from
    them). progress(rows checked) is called as it goes; total(rows to check) once, first."""

    async def op(conn):
        (through,), = await conn.fetchall("SELECT coalesce(max(id), 0) FROM journal")
        if total is not None:
            total(max(through - since, 0))  # row ids are dense: an estimate that costs nothing
        checking = _Run(conn, since, through, _Heads(db) if keep_heads else None, progress)
        try:
            await checking.chains()
        finally:
            if checking.heads is not None:
                await checking.heads.close()
        await checking.accounts()
        await checking.entries()
        await checking.atm_journals()
        return Verification("incremental" if since else "full", checking.problems.listed(), checking.rows, through,
                            checking.problems.count)

    return await db.read(op, snapshot=True, long=True)


async def verify(db: Database) -> tuple[list[str], int]:
    """A full run that keeps nothing: (problems, rows checked). No problems: the ledger is sound. The first problem
    named is the first bad journal row."""
    outcome = await run(db)
    return outcome.problems, outcome.rows_checked


async def checkpoint(db: Database) -> int:
    """Where the default run starts: the last row the last run covered, if that run passed and left its chain
    heads; else 0 (everything)."""
    rows = await db.read(lambda conn: conn.fetchall(
        "SELECT ok, through_id FROM verifications ORDER BY id DESC LIMIT 1"))
    return rows[0][1] if rows and rows[0][0] else 0


_runs_here: asyncio.Lock | None = None


async def verify_and_record(db: Database, actor: str, *, full: bool = False, now: float | None = None,
                            progress=None, total=None) -> Verification:
    """The default run (from the checkpoint) or a full one, its chain heads kept and its outcome recorded for the
    admin page. Runs of this process take turns."""
    global _runs_here
    if _runs_here is None:
        _runs_here = asyncio.Lock()
    async with _runs_here:
        since = 0 if full else await checkpoint(db)
        outcome = await run(db, since=since, keep_heads=True, progress=progress, total=total)
        first = outcome.problems[0] if outcome.problems else ""
        await db.write(lambda conn: conn.execute(
            "INSERT INTO verifications (at, actor, ok, rows_checked, first_problem, kind, through_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (journal_time(now), actor, int(outcome.ok), outcome.rows_checked, first, outcome.kind,
             outcome.through_id)))
        return outcome


@dataclass(frozen=True)
class LastRun:
    at: str
    actor: str
    ok: bool
    rows_checked: int
    first_problem: str
    kind: str
    through_id: int


async def last_verification(db: Database) -> LastRun | None:
    rows = await db.read(lambda conn: conn.fetchall(
        "SELECT at, actor, ok, rows_checked, first_problem, kind, through_id FROM verifications "
        "ORDER BY id DESC LIMIT 1"))
    return LastRun(*rows[0]) if rows else None
