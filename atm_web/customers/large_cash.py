"""Large cash (the currency transaction report): each customer's cash in and cash out per cash day, summed
separately (never netted) across all their accounts and tellers; the identity check that cash above CTR_THRESHOLD
needs before it is posted; and the worklist administrators file from.

Cash is a customer's deposit or withdrawal through a teller's drawer, or a reversal that moved cash through one;
API postings go against clearing and are not cash. The ledger notes each in customer_cash in the posting's own
transaction (journal.note_cash), on its cash day: the branch's calendar date at the posting (BRANCH_TIMEZONE),
which Close the day cannot move, unlike the business date. A total "above the threshold" is strictly above it:
exactly the threshold is not. Every cash transaction that leaves a customer's total for the day above it needs the
check (the first that crosses, and each one after it that day), and so does adding that customer as a holder of an
account that had cash that day (holders.py); each is listed on that customer's report for the day. A report and
each check keep a copy of the name and document checked: a later edit of the record does not rewrite what was
reported.
"""
import csv
import io
import json
from dataclasses import dataclass

from atm_web.core import audit
from atm_web.core.cells import spreadsheet_text
from atm_web.core.clock import iso
from atm_web.core.money import format_cents
from atm_web.customers import records as customers
from atm_web.customers.refusals import NeedsHolder, NeedsIdentityCheck, ReportNotOpen
from atm_web.ledger import journal
from atm_web.storage import Database

CSV_KIND_LABELS = {"deposit": "cash in", "withdrawal": "cash out", "reversal_credit": "cash in (reversal)",
              "reversal_debit": "cash out (reversal)"}


@dataclass(frozen=True)
class IdCheck:
    """The teller's record that they checked the identity document of the person present (one of the holders)."""
    customer_id: int
    checked_by: str

    def to_json(self) -> str:
        return json.dumps({"customer_id": self.customer_id, "checked_by": self.checked_by})

    @classmethod
    def from_json(cls, text: str | None) -> "IdCheck | None":
        return cls(**json.loads(text)) if text else None


async def _accounts_of(conn, customer_id: int) -> list[str]:
    return [number for number, in await conn.fetchall(
        "SELECT account_number FROM account_holders WHERE customer_id = ?", (customer_id,))]


async def _customer_total(conn, customer_id: int, direction: str, day: str) -> int:
    """A customer's cash of the day one way, across every account they hold (the ledger's customer_cash)."""
    return await journal.cash_total(conn, await _accounts_of(conn, customer_id), day, direction)


async def crossing(conn, number: str, kind: str, amount_cents: int, day: str, threshold_cents: int,
                   id_check: IdCheck | None) -> list[customers.Customer]:
    """Before cash of amount_cents (a posting of `kind`) is posted on account `number` on cash day `day` (in the
    caller's transaction): the holders whose total for the day it would take above the threshold. Refused
    (nothing written) when it would and the account has no holder (NeedsHolder: cash on an account with no holder
    is summed as one customer's), or the person present's identity check is not recorded (NeedsIdentityCheck)."""
    direction = journal.CASH_DIRECTION[kind]
    holders = await customers.holders_in(conn, number)
    if not holders:
        if await journal.cash_total(conn, [number], day, direction) + amount_cents > threshold_cents:
            raise NeedsHolder(number)
        return []
    above = [c for c in holders if await _customer_total(conn, c.id, direction, day) + amount_cents
             > threshold_cents]
    if above and (id_check is None or id_check.customer_id not in {c.id for c in holders}):
        raise NeedsIdentityCheck(above)
    return above


async def above_threshold(conn, number: str, kind: str, amount_cents: int, day: str, threshold_cents: int,
                          pending=None) -> bool:
    """Whether cash of amount_cents (a posting of `kind`) on account `number` would take the day's total of any of
    its holders above the threshold (of the account itself, with no holder), where no identity check can be made
    (an ATM). pending: an async function of a list of accounts, the cash of the day on them not noted yet (an ATM's
    withdrawals under way), counted too."""
    direction = journal.CASH_DIRECTION[kind]

    async def total(numbers: list[str]) -> int:
        extra = await pending(numbers) if pending is not None and direction == "out" else 0
        return await journal.cash_total(conn, numbers, day, direction) + extra

    holders = await customers.holders_in(conn, number)
    if not holders:
        return await total([number]) + amount_cents > threshold_cents
    for customer in holders:
        if await total(await _accounts_of(conn, customer.id)) + amount_cents > threshold_cents:
            return True
    return False


async def holder_crossing(conn, number: str, customer: customers.Customer, day: str, threshold_cents: int,
                          id_check: IdCheck | None) -> bool:
    """After `customer` was made a holder of `number` (in the caller's transaction): whether the account's cash of
    the day takes the customer's total above the threshold, either way; if it does, their identity check must be
    recorded (NeedsIdentityCheck otherwise, and the caller's transaction is undone)."""
    above = False
    for direction in ("in", "out"):
        if await journal.cash_total(conn, [number], day, direction) and \
                await _customer_total(conn, customer.id, direction, day) > threshold_cents:
            above = True
    if above and (id_check is None or id_check.customer_id != customer.id):
        raise NeedsIdentityCheck([customer])
    return above


_COPY = ("full_name", "document_type", "document_number", "document_country")


async def _report_for(conn, customer: customers.Customer, day: str, now: float) -> int:
    """The customer's report entry for the day, made now (with a copy of their name and document) or reopened (a
    report filed already needs amending)."""
    (report_id,), = await conn.fetchall(
        f"INSERT INTO large_cash (customer_id, cash_day, status, created_at, {', '.join(_COPY)}) "
        "VALUES (?, ?, 'open', ?, ?, ?, ?, ?) ON CONFLICT (customer_id, cash_day) DO UPDATE SET status = 'open' "
        "RETURNING id", (customer.id, day, iso(now), *(getattr(customer, name) for name in _COPY)))
    return report_id


async def record(conn, above: list[customers.Customer], day: str, id_check: IdCheck | None, now: float, *,
                 entry_id: int | None = None, holder_added_to: str | None = None) -> None:
    """After the cash is posted (entry_id), or a holder added (holder_added_to), in its transaction: the report
    entry of each customer taken above, with the identity check and a copy of what was checked."""
    if not above:
        return
    present = await customers.customer_in(conn, id_check.customer_id)
    for customer in above:
        report_id = await _report_for(conn, customer, day, now)
        await conn.execute(
            f"INSERT INTO large_cash_checks (report_id, entry_id, holder_added_to, present_customer_id, document, "
            f"{', '.join(_COPY)}, checked_by, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (report_id, entry_id, holder_added_to, present.id, present.document,
             *(getattr(present, name) for name in _COPY), id_check.checked_by, iso(now)))
    what = f"entry {entry_id}" if entry_id is not None else f"holder added to {holder_added_to}"
    await audit.record(conn, now, id_check.checked_by, "large cash identity checked", what,
                       f"customer {present.id} present; report for customer "
                       + ", ".join(str(c.id) for c in above))


@dataclass(frozen=True)
class CashReport:
    id: int
    customer_id: int
    full_name: str  # as the report entry copied it
    document: str
    cash_day: str
    status: str
    filed_by: str | None
    filed_at: str | None
    cash_in_cents: int
    cash_out_cents: int
    transactions: list[journal.Transaction]
    checked: list[tuple[int | None, str, str]]  # (entry id, or None for a holder added; document checked; by whom)


def _document(doc_type: str, number: str, country: str) -> str:
    return f"{doc_type} {number} ({country})"


FILED_SHOWN = 100  # entries filed already that the worklist shows, the latest


async def worklist(db: Database, reader: str, now: float) -> list[CashReport]:
    """Every entry still to file, then the FILED_SHOWN latest filed; newest day first, with the day's cash from
    the ledger (its cost follows the work to do, never the years of reports); the customers listed are logged as
    read by `reader` (customers.note_reads)."""
    async def op(conn):
        columns = ("r.id, r.customer_id, r.full_name, r.document_type, r.document_number, r.document_country, "
                   "r.cash_day, r.status, r.filed_by, r.filed_at")
        reports = await conn.fetchall(
            f"SELECT {columns} FROM large_cash r WHERE r.status = 'open' ORDER BY r.cash_day DESC, r.id DESC")
        reports += await conn.fetchall(
            f"SELECT {columns} FROM large_cash r WHERE r.status = 'filed' ORDER BY r.cash_day DESC, r.id DESC "
            "LIMIT ?", (FILED_SHOWN,))
        made = []
        for report_id, customer_id, name, doc_type, doc_number, country, day, state, by, at in reports:
            rows = await journal.cash_rows(conn, await _accounts_of(conn, customer_id), day)
            checked = await conn.fetchall(
                "SELECT entry_id, document_type, document_number, document_country, checked_by "
                "FROM large_cash_checks WHERE report_id = ? ORDER BY id", (report_id,))
            made.append(CashReport(
                report_id, customer_id, name, _document(doc_type, doc_number, country), day, state, by, at,
                sum(r.amount_cents for r in rows if journal.CASH_DIRECTION[r.kind] == "in"),
                sum(r.amount_cents for r in rows if journal.CASH_DIRECTION[r.kind] == "out"), rows,
                [(entry, _document(t, n, c), checked_by) for entry, t, n, c, checked_by in checked]))
        return made
    made = await db.read(op, snapshot=True)
    await customers.note_reads(db, reader, "large cash listed", dict.fromkeys(r.customer_id for r in made), now)
    return made


async def mark_filed(db: Database, report_id: int, admin, now: float) -> None:
    async def op(conn):
        async with conn.savepoint():
            rows = await conn.fetchall("UPDATE large_cash SET status = 'filed', filed_by = ?, filed_at = ? "
                                       "WHERE id = ? AND status = 'open' RETURNING id", (admin.username, iso(now),
                                                                                         report_id))
            if not rows:
                raise ReportNotOpen()
            await audit.record(conn, now, admin.actor, "large cash filed", f"report {report_id}")
    await db.write(op)


CSV_COLUMNS = ["report", "cash_day", "customer", "full_name", "document", "cash_in", "cash_out", "status",
               "filed_by", "transaction", "account", "kind", "amount", "time", "teller"]
def to_csv(reports: list[CashReport]) -> str:
    """One line per cash transaction of each report (the report's figures repeated on each); every cell quoted."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(CSV_COLUMNS)
    for r in reports:
        head = [r.id, r.cash_day, r.customer_id, spreadsheet_text(r.full_name), spreadsheet_text(r.document),
                format_cents(r.cash_in_cents), format_cents(r.cash_out_cents), r.status, r.filed_by or ""]
        for tx in r.transactions:
            writer.writerow([*head, tx.id, tx.account_number, CSV_KIND_LABELS[tx.kind],
                             format_cents(tx.amount_cents), tx.created_at, tx.actor])
    return out.getvalue()
