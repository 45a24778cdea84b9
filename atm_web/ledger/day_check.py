"""Verification of one business day's rows, as they stream past once: each row's balance after and hash against
the row before it on its account (verification.py's checks, for the day only), and every transaction of the day
summing to zero. The day's end-of-day report feeds it each row it reads (cash/end_of_day.py).

Within the day, a row's chain is checked against the account's row before it in the day; the first row of each
account, and any row whose row before was of another date (a server whose clock ran behind, around midnight), are
checked against the account's row just before it, fetched a few hundred at a time by one statement (one seek of
the account's index each). Where the engine allows it (SQLite), each batch is sent as soon as it is full and runs
on the connection's thread while the day's next rows are checked here: a day spread over 40,000 accounts costs
little more than one over 2,000. Memory follows the day (an entry per account and per transaction of the day),
never the ledger.
"""
import asyncio

from atm_web.ledger.chains import row_problem
from atm_web.ledger.journal import JournalRow

_PAIRS_PER_READ = 400


class DayCheck:
    """Feed it the day's rows in order (add), then `await finish()` for the problems, first rows first; `await
    abandon()` if the reading stopped."""

    def __init__(self, conn):
        self.rows = 0
        self._conn = conn
        self._last: dict[str, tuple[str | None, int]] = {}  # account: (hash, balance after) of its last row so far
        self._deferred: list[JournalRow] = []  # rows to check against the row just before them
        self._lookups: list[asyncio.Future] = []  # batches of them sent already
        self._entries: dict[int, list[int]] = {}  # entry: [sum, rows]
        self._problems: list[tuple[int, str]] = []

    def add(self, tx: JournalRow) -> None:
        """The day's next row."""
        self.rows += 1
        before = self._last.get(tx.account_number)
        if before is None or row_problem(tx, *before) is not None:
            self._deferred.append(tx)
            if len(self._deferred) >= _PAIRS_PER_READ and self._conn.reads_beside_a_stream:
                self._lookups.append(asyncio.ensure_future(self._check_against_the_rows_before(self._deferred)))
                self._deferred = []
        self._last[tx.account_number] = (tx.hash, tx.balance_after_cents)
        entry = self._entries.setdefault(tx.entry_id or 0, [0, 0])
        entry[0] += tx.signed_cents
        entry[1] += 1

    async def _check_against_the_rows_before(self, batch: list[JournalRow]) -> None:
        values = ", ".join(["(CAST(? AS TEXT), CAST(? AS BIGINT))"] * len(batch))
        params = [value for tx in batch for value in (tx.account_number, tx.id)]
        # one seek of journal_by_account per row for the row before it, then that row by its id
        rows = await self._conn.fetchall(
            f"WITH f (n, row_id) AS (VALUES {values}) "
            "SELECT f.n, f.row_id, j.hash, j.balance_after_cents FROM f LEFT JOIN journal j ON j.id = "
            "(SELECT p.id FROM journal p WHERE p.account_number = f.n AND p.id < f.row_id ORDER BY p.id DESC "
            "LIMIT 1)", params)
        before = {(number, row_id): (hash_, balance or 0) for number, row_id, hash_, balance in rows}
        for tx in batch:
            problem = row_problem(tx, *before[(tx.account_number, tx.id)])
            if problem is not None:
                self._problems.append((tx.id, problem))

    async def finish(self) -> list[str]:
        """The day's problems: rows that do not follow the row before them, transactions that do not balance."""
        for start in range(0, len(self._deferred), _PAIRS_PER_READ):
            await self._check_against_the_rows_before(self._deferred[start:start + _PAIRS_PER_READ])
        self._deferred = []
        lookups, self._lookups = self._lookups, []
        await asyncio.gather(*lookups)
        problems = [text for _, text in sorted(self._problems)]
        for entry, (total, count) in sorted(self._entries.items()):
            if total != 0 or (count < 2 and entry != 0):
                problems.append(f"transaction {entry}: its {count} rows sum to {total}, not to zero")
        return problems

    async def abandon(self) -> None:
        """The batches sent, settled (never left running on a connection about to close), their outcome dropped."""
        lookups, self._lookups = self._lookups, []
        await asyncio.gather(*lookups, return_exceptions=True)

    def unbalanced(self) -> list[tuple[int, int]]:
        """(entry, sum) of the day's transactions whose rows do not sum to zero."""
        return [(entry, total) for entry, (total, _) in sorted(self._entries.items()) if total != 0]
