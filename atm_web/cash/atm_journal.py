"""An ATM's electronic journal: every event of the ATM, one append-only row each, numbered per ATM (the sequence
number is the trace number a receipt prints) and hash-chained per ATM, so a row edited or removed is found by verify
(ledger/verification.py). Disputes ("the ATM did not pay me") are settled from it.

A row is appended in the transaction of what it records; writes take turns (storage), so the next number and the
previous hash are read and the row written with nothing in between.
"""
import csv
import io
from dataclasses import dataclass

from atm_web.core.cells import spreadsheet_text
from atm_web.ledger.chains import atm_row_hash
from atm_web.storage import Database

LISTED = 200  # rows an ATM's page lists, newest first (the CSV has them all)


@dataclass(frozen=True)
class JournalEvent:
    atm_id: int
    seq: int
    at: str
    event: str
    detail: str
    actor: str
    hash: str


async def record_in(conn, atm_id: int, at: str, event: str, detail: str, actor: str) -> JournalEvent:
    """Append one event to the ATM's journal (in the caller's transaction): its row."""
    rows = await conn.fetchall("SELECT seq, hash FROM atm_journal WHERE atm_id = ? ORDER BY seq DESC LIMIT 1",
                               (atm_id,))
    seq, previous = (rows[0][0] + 1, rows[0][1]) if rows else (1, "")
    digest = atm_row_hash(previous, atm_id, seq, at, event, detail, actor)
    await conn.execute("INSERT INTO atm_journal (atm_id, seq, at, event, detail, actor, hash) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (atm_id, seq, at, event, detail, actor, digest))
    return JournalEvent(atm_id, seq, at, event, detail, actor, digest)


async def events(db: Database, atm_id: int, limit: int | None = LISTED) -> list[JournalEvent]:
    """The ATM's journal, newest first (limit rows; None: all, oldest first, for the CSV)."""
    columns = "SELECT atm_id, seq, at, event, detail, actor, hash FROM atm_journal WHERE atm_id = ?"
    if limit is None:
        sql, params = f"{columns} ORDER BY seq", (atm_id,)
    else:
        sql, params = f"{columns} ORDER BY seq DESC LIMIT ?", (atm_id, limit)
    rows = await db.read(lambda conn: conn.fetchall(sql, params))
    return [JournalEvent(*row) for row in rows]


CSV_COLUMNS = ["atm", "trace", "at", "event", "detail", "by", "hash"]


def to_csv(journal: list[JournalEvent]) -> str:
    """An ATM's journal, oldest first, every cell quoted, the free text safe from spreadsheets' formulas."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    for e in journal:
        writer.writerow([e.atm_id, e.seq, e.at, e.event, spreadsheet_text(e.detail), e.actor, e.hash])
    return out.getvalue()
