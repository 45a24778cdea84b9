"""Verification of one business day's rows, as they stream past once: each row's balance after and hash against
the row before it on its account (verification.py's checks, for the day only), and every transaction of the day
summing to zero. The day's end-of-day report feeds it each row it reads (cash/end_of_day.py).

Each row is checked against the account's row before it: for the first row of the day, the one days.rows_before_in
read for it before the day's rows (one statement for all the day's accounts); for the others, the row before it in
the day. A row whose row before was of another date (a server whose clock ran behind, around midnight) is checked
once the day is read against the account's row just before it, fetched by a few statements. Memory follows the
day (an entry per account and per transaction of the day), never the ledger.
"""
from atm_web.core.rules import CREDIT_KINDS
from atm_web.ledger.chains import row_problem
from atm_web.ledger.journal import JournalRow

_PAIRS_PER_READ = 400


class DayCheck:
    """Give it the rows before the day's (days.rows_before_in), feed it the day's rows in order (add), then `await
    finish(conn)` for the problems, first rows first."""

    def __init__(self, rows_before: dict[str, tuple[str | None, int]]):
        self.rows = 0
        self._before = rows_before  # account: (hash, balance after) of its row just before the day's
        self._last: dict[str, tuple[str | None, int]] = {}  # account: (hash, balance after) of its last row of the day
        self._deferred: list[JournalRow] = []  # rows to check against the row just before them
        self._entries: dict[int, list[int]] = {}  # entry: [sum, rows]
        self._problems: list[tuple[int, str]] = []

    def add(self, tx: JournalRow) -> int:
        """The day's next row; its signed amount (what it adds to its account's balance)."""
        self.rows += 1
        number = tx.account_number
        signed = tx.amount_cents if tx.kind in CREDIT_KINDS else -tx.amount_cents
        last = self._last.get(number)
        if last is None:  # its first row of the day: against the row just before it, read before the day's
            problem = row_problem(tx, *self._before.get(number, (None, 0)), signed)
            if problem is not None:
                self._problems.append((tx.id, problem))
        elif row_problem(tx, *last, signed) is not None:  # against the row before it in the day: maybe not the
            self._deferred.append(tx)                      # one just before it
        self._last[number] = (tx.hash, tx.balance_after_cents)
        entry = self._entries.get(tx.entry_id or 0)
        if entry is None:
            self._entries[tx.entry_id or 0] = [signed, 1]
        else:
            entry[0] += signed
            entry[1] += 1
        return signed

    async def finish(self, conn) -> list[str]:
        """The day's problems: rows that do not follow the row before them, transactions that do not balance."""
        for start in range(0, len(self._deferred), _PAIRS_PER_READ):
            await self._check_against_the_rows_before(conn, self._deferred[start:start + _PAIRS_PER_READ])
        self._deferred = []
        problems = [text for _, text in sorted(self._problems)]
        for entry, (total, count) in sorted(self._entries.items()):
            if total != 0 or (count < 2 and entry != 0):
                problems.append(f"transaction {entry}: its {count} rows sum to {total}, not to zero")
        return problems

    async def _check_against_the_rows_before(self, conn, batch: list[JournalRow]) -> None:
        values = ", ".join(["(CAST(? AS TEXT), CAST(? AS BIGINT))"] * len(batch))
        params = [value for tx in batch for value in (tx.account_number, tx.id)]
        # one seek of journal_by_account per row for the row before it, then that row by its id
        rows = await conn.fetchall(
            f"WITH f (n, row_id) AS (VALUES {values}) "
            "SELECT f.n, f.row_id, j.hash, j.balance_after_cents FROM f LEFT JOIN journal j ON j.id = "
            "(SELECT p.id FROM journal p WHERE p.account_number = f.n AND p.id < f.row_id ORDER BY p.id DESC "
            "LIMIT 1)", params)
        before = {(number, row_id): (hash_, balance or 0) for number, row_id, hash_, balance in rows}
        for tx in batch:
            problem = row_problem(tx, *before[(tx.account_number, tx.id)])
            if problem is not None:
                self._problems.append((tx.id, problem))

    def unbalanced(self) -> list[tuple[int, int]]:
        """(entry, sum) of the day's transactions whose rows do not sum to zero."""
        return [(entry, total) for entry, (total, _) in sorted(self._entries.items()) if total != 0]
