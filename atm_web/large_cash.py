"""Large cash (the currency transaction report): each customer's cash in and cash out per business day, summed
separately (never netted) from the ledger across all their accounts and tellers; the identity check that cash
above CTR_THRESHOLD needs before it is posted; and the worklist administrators file from.

Cash is a customer's deposit or withdrawal whose transaction went through a drawer ('@drawer-...'); API postings
go against clearing and are not cash. A total "above the threshold" is strictly above it: exactly the threshold is
not. Every cash transaction that leaves a customer's total for the day above it needs the check (the first that
crosses, and each one after it that day), and each is listed on that customer's report for the day.
"""
import csv
import io
import json
from dataclasses import dataclass

from . import audit, customers
from .clock import iso
from .money import format_cents
from .refusals import ApprovalRefused, NeedsHolder, NeedsIdentityCheck
from .rules import DRAWER_PREFIX
from .storage import Database

CASH_KINDS = {"deposit": "cash in", "withdrawal": "cash out"}
_IS_CASH = (f"j.kind IN ('deposit', 'withdrawal') AND EXISTS (SELECT 1 FROM journal d WHERE d.entry_id = j.entry_id "
            f"AND d.account_number LIKE '{DRAWER_PREFIX}%')")


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


_HELD_BY = "IN (SELECT account_number FROM account_holders WHERE customer_id = ?)"  # a customer's accounts


async def _total(conn, kind: str, day: str, accounts: str, param) -> int:
    """The day's cash of one kind on the accounts `accounts` names (_HELD_BY a customer, or '= ?' one)."""
    (total,), = await conn.fetchall(
        f"SELECT coalesce(sum(j.amount_cents), 0) FROM journal j WHERE j.business_date = ? AND j.kind = ? "
        f"AND j.account_number {accounts} AND {_IS_CASH}", (day, kind, param))
    return total


async def crossing(conn, number: str, kind: str, amount_cents: int, day: str, threshold_cents: int,
                   id_check: IdCheck | None) -> list[customers.Customer]:
    """Before cash of amount_cents is posted on account `number` (in the caller's transaction): the holders whose
    total for the day it would take above the threshold. Refused (nothing written) when it would and the account
    has no holder (NeedsHolder), or the person present's identity check is not recorded (NeedsIdentityCheck)."""
    holders = await customers.holders_in(conn, number)
    if not holders:
        if await _total(conn, kind, day, "= ?", number) + amount_cents > threshold_cents:
            raise NeedsHolder(number)
        return []
    above = [c for c in holders if await _total(conn, kind, day, _HELD_BY, c.id) + amount_cents > threshold_cents]
    if above and (id_check is None or id_check.customer_id not in {c.id for c in holders}):
        raise NeedsIdentityCheck(above)
    return above


async def record(conn, above: list[customers.Customer], entry_id: int, day: str, id_check: IdCheck | None,
                 now: float) -> None:
    """After the cash is posted (entry_id), in its transaction: the report entry of each customer taken above, with
    the identity check (a report already filed for the day is reopened: it needs amending)."""
    if not above:
        return
    present = await customers.get_in(conn, id_check.customer_id)
    for customer in above:
        (report_id,), = await conn.fetchall(
            "INSERT INTO large_cash (customer_id, business_date, status, created_at) VALUES (?, ?, 'open', ?) "
            "ON CONFLICT (customer_id, business_date) DO UPDATE SET status = 'open' RETURNING id",
            (customer.id, day, iso(now)))
        await conn.execute(
            "INSERT INTO large_cash_checks (report_id, entry_id, present_customer_id, document, checked_by, "
            "checked_at) VALUES (?, ?, ?, ?, ?, ?)",
            (report_id, entry_id, present.id, present.document, id_check.checked_by, iso(now)))
    await audit.record(conn, now, id_check.checked_by, "large cash identity checked", f"entry {entry_id}",
                       f"customer {present.id} present; report for customer "
                       + ", ".join(str(c.id) for c in above))


@dataclass(frozen=True)
class CashRow:
    id: int
    account_number: str
    kind: str
    amount_cents: int
    created_at: str
    actor: str


@dataclass(frozen=True)
class Report:
    id: int
    customer_id: int
    full_name: str
    document: str
    business_date: str
    status: str
    filed_by: str | None
    filed_at: str | None
    cash_in_cents: int
    cash_out_cents: int
    transactions: list[CashRow]
    checked: list[tuple[int, str, str]]  # (entry id, document checked, by whom)


async def worklist(db: Database, status: str | None = None) -> list[Report]:
    """Every report entry (of one status, if given), newest day first, with the day's cash from the ledger."""
    async def op(conn):
        where, params = ("WHERE r.status = ?", (status,)) if status else ("", ())
        reports = await conn.fetchall(
            "SELECT r.id, r.customer_id, c.full_name, c.document_type, c.document_number, c.document_country, "
            "r.business_date, r.status, r.filed_by, r.filed_at FROM large_cash r JOIN customers c ON c.id = "
            f"r.customer_id {where} ORDER BY r.business_date DESC, r.id", params)
        made = []
        for report_id, customer_id, name, doc_type, doc_number, country, day, state, by, at in reports:
            rows = [CashRow(*row) for row in await conn.fetchall(
                "SELECT j.id, j.account_number, j.kind, j.amount_cents, j.created_at, j.actor FROM journal j "
                f"WHERE j.business_date = ? AND j.account_number {_HELD_BY} AND {_IS_CASH} ORDER BY j.id",
                (day, customer_id))]
            checked = await conn.fetchall("SELECT entry_id, document, checked_by FROM large_cash_checks "
                                          "WHERE report_id = ? ORDER BY id", (report_id,))
            made.append(Report(report_id, customer_id, name, f"{doc_type} {doc_number} ({country})", day, state, by,
                               at, sum(r.amount_cents for r in rows if r.kind == "deposit"),
                               sum(r.amount_cents for r in rows if r.kind == "withdrawal"), rows,
                               [tuple(row) for row in checked]))
        return made
    return await db.read(op, snapshot=True)


async def mark_filed(db: Database, report_id: int, admin, now: float) -> None:
    async def op(conn):
        async with conn.savepoint():
            rows = await conn.fetchall("UPDATE large_cash SET status = 'filed', filed_by = ?, filed_at = ? "
                                       "WHERE id = ? AND status = 'open' RETURNING id", (admin.username, iso(now),
                                                                                         report_id))
            if not rows:
                raise ApprovalRefused("That report is not open (filed already, or unknown).")
            await audit.record(conn, now, admin.actor, "large cash filed", f"report {report_id}")
    await db.write(op)


CSV_COLUMNS = ["report", "business_date", "customer", "full_name", "document", "cash_in", "cash_out", "status",
               "filed_by", "transaction", "account", "kind", "amount", "time", "teller"]


def _text(value: str) -> str:
    """Free text (a name) as a cell no spreadsheet runs as a formula (OWASP: CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def to_csv(reports: list[Report]) -> str:
    """One line per cash transaction of each report (the report's figures repeated on each)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in reports:
        head = [r.id, r.business_date, r.customer_id, _text(r.full_name), _text(r.document),
                format_cents(r.cash_in_cents), format_cents(r.cash_out_cents), r.status, r.filed_by or ""]
        for tx in r.transactions:
            writer.writerow([*head, tx.id, tx.account_number, CASH_KINDS[tx.kind],
                             format_cents(tx.amount_cents), tx.created_at, tx.actor])
    return out.getvalue()
