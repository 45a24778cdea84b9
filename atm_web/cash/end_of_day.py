"""The end of the business day: the day's report (every drawer session, the vault, totals, the proof), its CSV
(the same bytes every time for a closed day) and its chart, and Close the day.

A day is its business date: every journal row carries one (the branch's local date at posting, or the day after
the last day closed). Close the day is refused while any drawer is open or waits for a sign-off; it records the
CSV's SHA-256 in the audit log, and postings carry the next business date from then on.
"""
import csv
import hashlib
import io
from dataclasses import dataclass, field
from datetime import date, timedelta

from atm_web.cash import replenishment
from atm_web.cash.drawers import CLOSING_MEMO, OPENING_MEMO, DrawerSession, sessions, sessions_in
from atm_web.cash.refusals import DrawerRefused
from atm_web.core import audit
from atm_web.core.clock import local, or_system, stamp
from atm_web.core.money import format_cents, json_number
from atm_web.core.refusals import InvalidDate
from atm_web.core.rules import ATM_PREFIX, BANK_KINDS, BANK_PREFIX, CASH_OVER, CASH_SHORT, DRAWER_PREFIX, VAULT
from atm_web.ledger import days, journal
from atm_web.ledger.day_check import DayCheck
from atm_web.ledger.journal import JournalRow
from atm_web.storage import Database


@dataclass
class SessionLine:
    session: DrawerSession
    cash_in_cents: int | None = 0  # None while the drawer is open (see blind)
    cash_out_cents: int | None = 0
    from_vault_cents: int | None = 0  # mid-day movements, the opening float apart
    to_vault_cents: int | None = 0
    transactions: int = 0

    @property
    def opening_cents(self) -> int | None:
        return None if self.session.status == "open" else self.session.opening_cents


@dataclass
class AtmLine:
    """An ATM's day: its cash at the open and the close (by its cash account), what it paid out and took in for
    customers, what replenishments loaded into it and took out of it, and their variances."""
    atm_id: int
    name: str
    account_number: str
    open_cents: int = 0
    close_cents: int = 0
    paid_out_cents: int = 0
    deposited_cents: int = 0
    loaded_cents: int = 0
    taken_out_cents: int = 0
    variance_cents: int = 0
    moved: bool = False  # a row of the day on its account


@dataclass
class Report:
    business_date: str
    status: str  # open or closed
    closed_at: str | None
    closed_by: str | None
    lines: list[SessionLine]
    vault_open_cents: int
    vault_close_cents: int | None  # None, like every amount below, while a drawer is open (see blind)
    by_kind: dict[str, tuple[int, int | None]]  # kind: (count, cents)
    by_teller: dict[str, tuple[int, int | None]]  # actor: (transactions, cents moved for customers)
    per_hour: dict[str, list[int]]  # actor: 24 counts, by local hour
    unbalanced: list[tuple[int, int]]  # (entry, sum) of the day's transactions that do not sum to zero
    cash_accounts_cents: int | None  # the cash accounts at the day's end by the journal: their opening (the last
    #                                  close recorded) and the day's rows (cash stands at minus the notes)
    cash_held_cents: int | None  # the vault plus every drawer at the day's end, by their balances
    cash_agrees: bool
    verify_problems: list[str] = field(default_factory=list)
    rows_checked: int = 0
    day_rows: int = 0
    blind: bool = False  # a drawer of the day is still open: no amount that adds up to its cash is shown
    atms: list[AtmLine] = field(default_factory=list)  # the ATMs that held cash or moved it that day

    @property
    def balanced(self) -> bool:
        return not self.unbalanced

    @property
    def sound(self) -> bool:
        return self.balanced and self.cash_agrees and not self.verify_problems


def check_date(text) -> str:
    """An ISO calendar date, YYYY-MM-DD, else InvalidDate."""
    try:
        if isinstance(text, str) and len(text) == 10:
            return date.fromisoformat(text).isoformat()
    except ValueError:
        pass
    raise InvalidDate()


async def current_business_date(db: Database, *, now: float | None = None) -> str:
    """The business date postings get now."""
    today = stamp(or_system(now), db.branch_timezone).today
    return await db.read(lambda conn: journal.business_date(conn, today))


class _Tally:
    """The report's figures, from the day's rows as they stream past, a transaction at a time (its rows come one
    after another: a transaction is written by one write, whole)."""

    def __init__(self, lines: dict[str, SessionLine], zone: str, atm_lines: dict[str, AtmLine] | None = None):
        self.lines, self.zone, self.atm_lines = lines, zone, atm_lines or {}
        self.by_kind: dict[str, list[int]] = {}
        self.by_teller: dict[str, list[int]] = {}
        self.per_hour: dict[str, list[int]] = {}
        self._hours: dict[str, int] = {}  # a UTC minute: its local hour (every zone's offset is whole minutes)

    def _hour(self, created_at: str) -> int:
        minute = created_at[:16]
        if minute not in self._hours:
            self._hours[minute] = int(local(created_at, self.zone)[11:13])
        return self._hours[minute]

    def add_entry(self, rows: list[JournalRow]) -> None:
        """A transaction's rows."""
        actor = rows[0].actor
        teller = self.by_teller.get(actor)
        if teller is None:
            teller = self.by_teller[actor] = [0, 0]
            self.per_hour[actor] = [0] * 24
        teller[0] += 1
        self.per_hour[actor][self._hour(rows[0].created_at)] += 1
        banks = []  # the bank's rows of it
        for r in rows:
            if r.account_number.startswith(BANK_PREFIX):
                banks.append(r)
                continue
            kind = self.by_kind.get(r.kind)
            if kind is None:
                kind = self.by_kind[r.kind] = [0, 0]
            kind[0] += 1
            kind[1] += r.amount_cents
            if r.kind != "transfer_in":
                teller[1] += r.amount_cents
        customer = len(banks) < len(rows)  # a customer's transaction, not the bank's own cash moving
        for r in banks:
            if r.account_number in self.atm_lines:
                self._atm_row(self.atm_lines[r.account_number], r, rows, customer)
                continue
            line = self.lines.get(r.account_number)
            if line is None or r.kind not in BANK_KINDS or r.memo in (OPENING_MEMO, CLOSING_MEMO):
                continue
            cash_in = r.kind == "debit"  # a debit on a drawer: notes come in
            if customer:
                line.transactions += 1
                if cash_in:
                    line.cash_in_cents += r.amount_cents
                else:
                    line.cash_out_cents += r.amount_cents
            elif cash_in:
                line.from_vault_cents += r.amount_cents
            else:
                line.to_vault_cents += r.amount_cents

    @staticmethod
    def _atm_row(atm: AtmLine, r: JournalRow, rows: list[JournalRow], customer: bool) -> None:
        atm.moved = True
        cash_in = r.kind == "debit"  # a debit on an ATM's account: notes come in
        if customer:
            if cash_in:
                atm.deposited_cents += r.amount_cents
            else:
                atm.paid_out_cents += r.amount_cents
        elif cash_in:
            atm.loaded_cents += r.amount_cents
        else:  # a replenishment's count, taken out: its variance is in the same transaction
            atm.taken_out_cents += r.amount_cents
            atm.variance_cents += sum(x.amount_cents if x.account_number == CASH_OVER else -x.amount_cents
                                      for x in rows if x.account_number in (CASH_OVER, CASH_SHORT))


async def report(db: Database, business_date: str) -> Report:
    """The day's report, from one snapshot, on a connection of its own (a long read holds no one else's): the
    day's rows read once, each counted and verified as it passes; the cash opened from the last close recorded.
    Its cost follows the day, never the ledger's history."""
    business_date = check_date(business_date)

    async def op(conn):
        closed = await conn.fetchall("SELECT closed_at, closed_by FROM closed_days WHERE business_date = ?",
                                     (business_date,))
        day_sessions = await sessions_in(conn, "s.business_date = ? ORDER BY s.id", (business_date,))
        opening = await days.opening_cash_in(conn, business_date)
        atm_lines = {number: AtmLine(atm_id, name, number)
                     for atm_id, name, number in await conn.fetchall("SELECT id, name, account_number FROM atms "
                                                                     "ORDER BY id")}
        tally = _Tally({s.account_number: SessionLine(s) for s in day_sessions}, db.branch_timezone, atm_lines)
        check = DayCheck(await days.rows_before_in(conn, business_date))
        moved: dict[str, int] = {}  # a cash account: the day's rows' sum
        cash: dict[str, bool] = {}  # an account of the day: whether it is a cash account
        entry: list[JournalRow] = []  # the transaction whose rows are streaming past
        async for chunk in days.rows_in(conn, business_date):
            for tx in chunk:  # ~100,000 rows for a busy day: kept lean
                signed = check.add(tx)
                if entry and tx.entry_id != entry[0].entry_id:
                    tally.add_entry(entry)
                    entry = []
                entry.append(tx)
                number = tx.account_number
                is_cash = cash.get(number)
                if is_cash is None:
                    is_cash = cash[number] = number == VAULT or number.startswith((DRAWER_PREFIX, ATM_PREFIX))
                if is_cash:
                    moved[number] = moved.get(number, 0) + signed
        if entry:
            tally.add_entry(entry)
        problems = await check.finish(conn)
        held = await days.closing_cash_in(conn, business_date, bool(closed))
        return closed, tally, check, problems, opening, moved, held

    closed, tally, check, problems, opening, moved, held = await db.read(op, snapshot=True, long=True)
    by_journal = {number: opening.get(number, 0) + moved.get(number, 0) for number in {*opening, *moved, *held}}
    day = Report(business_date, "closed" if closed else "open", closed[0][0] if closed else None,
                 closed[0][1] if closed else None, list(tally.lines.values()), -opening.get(VAULT, 0),
                 -by_journal.get(VAULT, 0),
                 {k: tuple(v) for k, v in sorted(tally.by_kind.items())},
                 {k: tuple(v) for k, v in sorted(tally.by_teller.items())}, dict(sorted(tally.per_hour.items())),
                 check.unbalanced(), sum(by_journal.values()), -sum(held.values()),
                 all(by_journal[number] == held.get(number, 0) for number in by_journal), problems, check.rows,
                 check.rows)
    for line in tally.atm_lines.values():
        number = line.account_number
        line.open_cents, line.close_cents = -opening.get(number, 0), -by_journal.get(number, 0)
        if line.moved or line.open_cents:  # an ATM registered later is not in an older day's report
            day.atms.append(line)
    return blind(day) if any(line.session.status == "open" for line in day.lines) else day


def blind(day: Report) -> Report:
    """The report while a drawer is open: a drawer's close is a blind count, so nothing here may add up to its
    expected cash before it is counted. Its line shows it open with no amounts; the totals by kind and by teller
    keep their counts, and the vault's close and the cash held their verdict, without amounts; closed drawers'
    lines are shown whole. Every amount appears once the last drawer of the day is closed."""
    for line in day.lines:
        if line.session.status == "open":
            line.cash_in_cents = line.cash_out_cents = line.from_vault_cents = line.to_vault_cents = None
    day.by_kind = {kind: (count, None) for kind, (count, _) in day.by_kind.items()}
    day.by_teller = {actor: (count, None) for actor, (count, _) in day.by_teller.items()}
    day.vault_close_cents = day.cash_accounts_cents = day.cash_held_cents = None
    day.blind = True
    return day


def to_json(r: Report) -> dict:
    """The report as the API answers it: money as JSON numbers, times as the journal keeps them (UTC)."""
    def money(cents):
        return None if cents is None else json_number(cents)

    return {
        "business_date": r.business_date, "status": r.status, "closed_at": r.closed_at, "closed_by": r.closed_by,
        "amounts_hidden": r.blind,
        "sessions": [{"drawer": x.session.id, "teller": x.session.username, "status": x.session.status,
                      "opened_at": x.session.opened_at, "closed_at": x.session.closed_at,
                      "opening_float": money(x.opening_cents), "cash_in": money(x.cash_in_cents),
                      "cash_out": money(x.cash_out_cents), "from_vault": money(x.from_vault_cents),
                      "to_vault": money(x.to_vault_cents), "expected": money(x.session.expected_cents),
                      "counted": money(x.session.counted_cents), "variance": money(x.session.variance_cents),
                      "signed_off_by": x.session.signed_off_by} for x in r.lines],
        "vault": {"open": money(r.vault_open_cents), "close": money(r.vault_close_cents)},
        "by_kind": {kind: {"count": count, "amount": money(cents)} for kind, (count, cents) in r.by_kind.items()},
        "by_teller": {actor: {"transactions": count, "amount": money(cents)}
                      for actor, (count, cents) in r.by_teller.items()},
        "proof": {"balanced": r.balanced, "unbalanced_transactions": [entry for entry, _ in r.unbalanced],
                  "cash_held": money(r.cash_held_cents),
                  "cash_accounts": money(None if r.cash_accounts_cents is None else -r.cash_accounts_cents),
                  "cash_agrees": r.cash_agrees, "verify": {"ok": not r.verify_problems,
                                                           "rows_checked": r.rows_checked,
                                                           "problems": r.verify_problems[:10]},
                  "day_rows": r.day_rows},
        "atms": [{"atm": a.atm_id, "name": a.name, "open": money(a.open_cents), "close": money(a.close_cents),
                  "paid_out": money(a.paid_out_cents), "deposited": money(a.deposited_cents),
                  "loaded": money(a.loaded_cents), "taken_out": money(a.taken_out_cents),
                  "variance": money(a.variance_cents)} for a in r.atms],
    }


CSV_HEADER = ["business_date", "drawer", "teller", "opened", "closed", "opening_float", "cash_in", "cash_out",
              "from_vault", "to_vault", "expected", "counted", "variance", "signed_off_by"]


def to_csv(r: Report, zone: str) -> bytes:
    """One row per drawer session, then the totals; money as plain decimals, times in the branch's zone. Only what
    the day's rows hold: the same bytes every time for a closed day."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)

    def money(cents):
        return "" if cents is None else format_cents(cents).replace(",", "")

    for line in r.lines:
        s = line.session
        writer.writerow([r.business_date, s.id, s.username, local(s.opened_at, zone),
                         local(s.closed_at, zone) if s.closed_at else "", money(line.opening_cents),
                         money(line.cash_in_cents), money(line.cash_out_cents), money(line.from_vault_cents),
                         money(line.to_vault_cents), money(s.expected_cents), money(s.counted_cents),
                         money(s.variance_cents), s.signed_off_by or ""])

    def total(values):
        values = list(values)
        return None if None in values else sum(values)

    writer.writerow([r.business_date, "total", f"{len(r.lines)} sessions", "", "",
                     money(total(x.opening_cents for x in r.lines)),
                     money(total(x.cash_in_cents for x in r.lines)), money(total(x.cash_out_cents for x in r.lines)),
                     money(total(x.from_vault_cents for x in r.lines)), money(total(x.to_vault_cents for x in r.lines)),
                     money(sum(x.session.expected_cents or 0 for x in r.lines)),
                     money(sum(x.session.counted_cents or 0 for x in r.lines)),
                     money(sum(x.session.variance_cents or 0 for x in r.lines)), ""])
    writer.writerow([r.business_date, "vault", "", "", "", money(r.vault_open_cents), "", "", "", "",
                     money(r.vault_close_cents), "", "", ""])
    for a in r.atms:  # an ATM as a drawer: its open, in (deposits), out (paid), from and to the vault, its close
        writer.writerow([r.business_date, f"atm {a.atm_id}", a.name, "", "", money(a.open_cents),
                         money(a.deposited_cents), money(a.paid_out_cents), money(a.loaded_cents),
                         money(a.taken_out_cents), money(a.close_cents), "", money(a.variance_cents), ""])
    return out.getvalue().encode()


async def _refuse_waiting_replenishments(where, now: float, in_write: bool = False) -> None:
    """Close the day waits for every ATM replenishment to be confirmed (or declined) and signed off."""
    waiting = await (replenishment.waiting_in(where, now) if in_write
                     else where.read(lambda conn: replenishment.waiting_in(conn, now)))
    if waiting:
        raise DrawerRefused("The day cannot be closed while an ATM replenishment waits for its confirmation or "
                            "sign-off: " + ", ".join(f"ATM {atm_id}" for atm_id in waiting) + ".")


async def close_day(db: Database, admin, *, now: float | None = None) -> tuple[str, str]:
    """Close the current business day: (its date, its CSV's SHA-256). Refused while a drawer is open or waits for
    a sign-off (naming them), and for a day that has not begun at the branch (BRANCH_TIMEZONE): a day is closed on
    its date or later, never ahead."""
    now = or_system(now)
    closing = await current_business_date(db, now=now)
    today = stamp(now, db.branch_timezone).today
    if closing > today:  # closed already today: the next business day has not begun in the branch's zone
        raise DrawerRefused(f"The business day {closing} has not begun yet (today is {today} at the branch): it can "
                            f"be closed on {closing} or later.")
    not_closed = await sessions(db)
    if not_closed:
        names = ", ".join(f"drawer {s.id} of {s.username} ({'open' if s.status == 'open' else 'waiting for sign-off'})"
                          for s in not_closed)
        raise DrawerRefused(f"The day cannot be closed while drawers are not closed: {names}.")
    await _refuse_waiting_replenishments(db, now)
    day_report = await report(db, closing)
    digest = hashlib.sha256(to_csv(day_report, db.branch_timezone)).hexdigest()
    seen = (day_report.day_rows, len(day_report.lines))
    next_date = (date.fromisoformat(closing) + timedelta(days=1)).isoformat()
    at = stamp(now, db.branch_timezone)

    async def op(conn):
        async with conn.savepoint():
            if await conn.fetchall("SELECT 1 FROM drawer_sessions WHERE status != 'closed'"):
                raise DrawerRefused("A drawer was opened meanwhile: close it first.")
            await _refuse_waiting_replenishments(conn, now, in_write=True)
            if await conn.fetchall("SELECT 1 FROM closed_days WHERE business_date = ?", (closing,)):
                raise DrawerRefused(f"{closing} is closed already.")
            rows = await days.row_count_in(conn, closing)
            (opened,), = await conn.fetchall("SELECT COUNT(*) FROM drawer_sessions WHERE business_date = ?",
                                             (closing,))
            if (rows, opened) != seen:  # the CSV whose digest is recorded must be the day's
                raise DrawerRefused("The day changed while it was being closed: try again.")
            if await journal.business_date(conn, at.today) != closing or await days.posted_after_in(conn,
                                                                                                closing):
                raise DrawerRefused("The business day moved on meanwhile: look at the report again.")
            await conn.execute("INSERT INTO closed_days (business_date, closed_at, closed_by, csv_sha256) "
                               "VALUES (?, ?, ?, ?)", (closing, at.created_at, admin.username, digest))
            await days.record_closing_in(conn, closing)  # the next day's report opens from it
            await days.move_on_in(conn, next_date)
            await audit.record(conn, now, admin.actor, "day closed", closing, f"CSV SHA-256 {digest}")

    await db.write(op)
    return closing, digest
