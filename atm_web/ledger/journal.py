"""Journal rows: the records the ledger reads, the one statement that appends a row (with its hash), and reads of
rows by id, by link and by account."""
import contextlib
import hashlib
from dataclasses import dataclass
from typing import NamedTuple

from atm_web.core import clock
from atm_web.core.clock import Stamp
from atm_web.core.rules import ATM_PREFIX, BANK_PREFIX, CREDIT_KINDS, DRAWER_PREFIX, HISTORY_MAX
from atm_web.ledger.refusals import (
    BalanceTooLarge,
    DrawerNotOpen,
    InsufficientFunds,
    InvalidCursor,
    NotEnoughCash,
    check_account_number,
)
from atm_web.storage import Database, IntegrityError

ACCOUNT_COLUMNS = ("account_number, balance_cents, overdraft_limit_cents, own_overdraft_limit_cents, opened_at, kind, "
                   "held_cents")
TX_COLUMNS = ("id, account_number, kind, amount_cents, balance_after_cents, created_at, actor, related_id, memo, "
              "entry_id, business_date")
# A row's signed amount in SQL (credit positive), as delta() gives it here.
SIGNED_SQL = "CASE WHEN kind IN ({}) THEN amount_cents ELSE -amount_cents END".format(
    ", ".join(f"'{kind}'" for kind in sorted(CREDIT_KINDS)))


@dataclass(frozen=True)
class Account:
    number: str
    balance_cents: int
    overdraft_limit_cents: int
    own_overdraft_limit_cents: int | None
    opened_at: str | None
    kind: str = "customer"  # or one of the bank's own: vault, drawer, cash_over, cash_short, clearing
    held_cents: int = 0  # reserved by pending holds (holds.py); as read at a time, those past it left out

    @property
    def available_cents(self) -> int:
        """What can still be withdrawn (or held) before the overdraft limit is reached, counting the holds."""
        return self.balance_cents + self.overdraft_limit_cents - self.held_cents

    @property
    def exists(self) -> bool:
        return self.opened_at is not None


@dataclass(frozen=True)
class Transaction:
    id: int
    account_number: str
    kind: str
    amount_cents: int
    balance_after_cents: int
    created_at: str
    actor: str
    related_id: int | None = None
    memo: str = ""
    entry_id: int | None = None  # the transaction the row belongs to (None: written before double entry)
    business_date: str | None = None
    replayed: bool = False  # answered from an earlier request with the same idempotency key

    @property
    def is_credit(self) -> bool:
        return self.kind in CREDIT_KINDS

    @property
    def signed_cents(self) -> int:
        return self.amount_cents if self.is_credit else -self.amount_cents


ROW_COLUMNS = TX_COLUMNS + ", hash"  # a JournalRow's


class JournalRow(NamedTuple):
    """A journal row as verification reads it (ROW_COLUMNS): a Transaction's fields and the row's stored hash. A
    named tuple, made five times faster than a Transaction, for the reads that go through every row of a day or of
    the ledger."""
    id: int
    account_number: str
    kind: str
    amount_cents: int
    balance_after_cents: int
    created_at: str
    actor: str
    related_id: int | None
    memo: str
    entry_id: int | None
    business_date: str | None
    hash: str | None

    @property
    def signed_cents(self) -> int:
        return self.amount_cents if self.kind in CREDIT_KINDS else -self.amount_cents


def row_hash(previous: str, number: str, kind: str, amount_cents: int, balance_after_cents: int, created_at: str,
             actor: str, related_id: int | None, memo: str, entry_id: int | None = None,
             business_date: str | None = None) -> str:
    """A row's hash: SHA-256 of its fields joined by '|' (integers in decimal, no related row as ''), the first
    field being the previous row's hash on the same account, and, for a row of double entry, its entry and
    business date last (a row written before double entry has neither and is hashed as it was). _APPEND computes
    the same in SQL; verify recomputes it here."""
    related = "" if related_id is None else related_id
    # one f-string, each field as str() gives it (every verification hashes every row)
    if entry_id is None:
        text = f"{previous}|{number}|{kind}|{amount_cents}|{balance_after_cents}|{created_at}|{actor}|{related}|{memo}"
    else:
        text = (f"{previous}|{number}|{kind}|{amount_cents}|{balance_after_cents}|{created_at}|{actor}|{related}|{memo}"
                f"|{entry_id}|{business_date}")
    return hashlib.sha256(text.encode()).hexdigest()


def posting_stamp(db: Database, seconds: float | None) -> Stamp:
    """The stamp for rows written at this time (the app's clock), in the branch's time zone."""
    return clock.stamp(seconds, db.branch_timezone)


# One journal row, written by one statement on either engine: it computes the balance after and the row's hash
# (row_hash's text, by concatenation; sha256_hex is an SQL function on both engines) from the account's balance and
# the account's latest row, and the engine's triggers apply the row to the balance in the same statement: a row
# that cannot be applied (CHECK balance_within_limit, cash_not_negative) is not written either. A transaction's
# first row takes the next entry number (:entry NULL), its others pass that number; the business date is the
# branch's date, or the day after the last day closed if later. Parameters whose type the SQL cannot show are
# cast, so PostgreSQL knows them too. Correct because writes take turns a group at a time (storage.common):
# nothing else appends to the account, or takes an entry number, between the read and the insert.
_APPEND = (
    "INSERT INTO journal (account_number, kind, amount_cents, balance_after_cents, created_at, actor, related_id, "
    "  memo, entry_id, business_date, hash) "
    "SELECT :n, :kind, :amount, b.after, :now, :actor, CAST(:related AS BIGINT), :memo, e.id, d.day, "
    "  sha256_hex(coalesce(p.hash, '') || '|' || :n || '|' || :kind || '|' || CAST(CAST(:amount AS BIGINT) AS TEXT) "
    "    || '|' || CAST(b.after AS TEXT) || '|' || :now || '|' || :actor || '|' "
    "    || coalesce(CAST(CAST(:related AS BIGINT) AS TEXT), '') || '|' || :memo || '|' || CAST(e.id AS TEXT) "
    "    || '|' || d.day) "
    "FROM (SELECT coalesce((SELECT balance_cents FROM accounts WHERE account_number = :n), 0) + :delta AS after) AS b, "
    "     (SELECT (SELECT hash FROM journal WHERE account_number = :n ORDER BY id DESC LIMIT 1) AS hash) AS p, "
    "     (SELECT coalesce(CAST(:entry AS BIGINT), (SELECT coalesce(max(entry_id), 0) + 1 FROM journal)) AS id) AS e, "
    "     (SELECT CASE WHEN :today >= earliest_business_date THEN :today ELSE earliest_business_date END AS day "
    "      FROM settings) AS d "
    "RETURNING id, balance_after_cents, entry_id, business_date")


def delta(kind: str, amount_cents: int) -> int:
    return amount_cents if kind in CREDIT_KINDS else -amount_cents


# A posting and the bank's side of it (of the opposite sign, on `:c`), written by ONE statement: each row as _APPEND
# writes it, both in the next entry. One statement is all or nothing by itself (a refusal of either row undoes
# both), so a posting needs no savepoint: a quarter of the statements two appends would take. The rows are on
# different accounts, and the entry number and the date are read once (MATERIALIZED) before either is written.
_ROW = ("CAST(sha256_hex(coalesce(x.prev, '') || '|' || x.n || '|' || x.kind || '|' "
        "|| CAST(CAST(:amount AS BIGINT) AS TEXT) || '|' || CAST(x.after AS TEXT) || '|' || :now || '|' || :actor "
        "|| '||' || x.memo || '|' || CAST(e.id AS TEXT) || '|' || d.day) AS TEXT)")
_APPEND_PAIR = (
    "WITH e AS MATERIALIZED (SELECT coalesce(max(entry_id), 0) + 1 AS id FROM journal), "
    "     d AS MATERIALIZED (SELECT CASE WHEN :today >= earliest_business_date THEN :today "
    "                        ELSE earliest_business_date END AS day FROM settings), "
    "     r (n, kind, delta, memo) AS (VALUES (CAST(:n AS TEXT), CAST(:kind AS TEXT), CAST(:delta AS BIGINT), ''), "
    "                                        (CAST(:c AS TEXT), CAST(:ckind AS TEXT), -CAST(:delta AS BIGINT), "
    "                                         CAST(:cmemo AS TEXT))), "
    "     x AS MATERIALIZED (SELECT r.n, r.kind, r.memo, "
    "          coalesce((SELECT balance_cents FROM accounts WHERE account_number = r.n), 0) + r.delta AS after, "
    "          (SELECT hash FROM journal WHERE account_number = r.n ORDER BY id DESC LIMIT 1) AS prev FROM r) "
    "INSERT INTO journal (account_number, kind, amount_cents, balance_after_cents, created_at, actor, related_id, "
    "  memo, entry_id, business_date, hash) "
    f"SELECT x.n, x.kind, :amount, x.after, :now, :actor, NULL, x.memo, e.id, d.day, {_ROW} FROM x, e, d "
    "RETURNING id, account_number, balance_after_cents, entry_id, business_date")


async def append_pair(conn, number: str, kind: str, amount_cents: int, counter: str, counter_memo: str, actor: str,
                      at: Stamp) -> Transaction:
    """A deposit or withdrawal and its other side on `counter`, in one statement (see _APPEND_PAIR): the
    customer's row, or the ledger's refusal with nothing written. Through a drawer or an ATM, it is cash
    (note_cash)."""
    async with ledger_refusals(conn):
        rows = await conn.fetchall(_APPEND_PAIR, {
            "n": number, "kind": kind, "amount": amount_cents, "delta": delta(kind, amount_cents),
            "c": counter, "ckind": "debit" if kind in CREDIT_KINDS else "credit", "cmemo": counter_memo,
            "now": at.created_at, "actor": actor, "today": at.today})
    (tx_id, _, balance, entry_id, business_date), = [row for row in rows if row[1] == number]
    if counter.startswith((DRAWER_PREFIX, ATM_PREFIX)):
        await note_cash(conn, entry_id, number, kind, amount_cents, at.today)
    return Transaction(tx_id, number, kind, amount_cents, balance, at.created_at, actor, None, "", entry_id,
                       business_date)


# A customer's cash: the direction of each kind of row that moves cash through a drawer.
CASH_DIRECTION = {"deposit": "in", "reversal_credit": "in", "withdrawal": "out", "reversal_debit": "out"}


async def note_cash(conn, entry_id: int, number: str, kind: str, amount_cents: int, cash_day: str) -> None:
    """In the posting's transaction: its cash on the customer's account, on its cash day (the branch's calendar
    date at the posting, which Close the day does not move), for the day's totals (cash_total)."""
    await conn.execute("INSERT INTO customer_cash (entry_id, account_number, cash_day, direction, amount_cents) "
                       "VALUES (?, ?, ?, ?, ?)", (entry_id, number, cash_day, CASH_DIRECTION[kind], amount_cents))


async def cash_total(conn, numbers, cash_day: str, direction: str) -> int:
    """The cash of one day, one way ('in' or 'out'), on these customer accounts (in the caller's transaction):
    read through customer_cash_by_account_day, so it costs these accounts' rows of the day, never the day's or
    the ledger's."""
    numbers = list(numbers)
    if not numbers:
        return 0
    (total,), = await conn.fetchall(
        f"SELECT coalesce(sum(amount_cents), 0) FROM customer_cash WHERE account_number IN "
        f"({','.join('?' * len(numbers))}) AND cash_day = ? AND direction = ?", (*numbers, cash_day, direction))
    return total


async def cash_rows(conn, numbers, cash_day: str) -> list[Transaction]:
    """The customer rows of one day's cash on these accounts, oldest first."""
    numbers = list(numbers)
    if not numbers:
        return []
    rows = await conn.fetchall(
        f"SELECT {', '.join('j.' + c for c in TX_COLUMNS.split(', '))} FROM customer_cash c JOIN journal j "
        "ON j.entry_id = c.entry_id AND j.account_number = c.account_number "
        f"WHERE c.account_number IN ({','.join('?' * len(numbers))}) AND c.cash_day = ? ORDER BY j.id",
        (*numbers, cash_day))
    return [Transaction(*row) for row in rows]


async def append(conn, number: str, kind: str, amount_cents: int, actor: str, at: Stamp,
                 related_id: int | None = None, memo: str = "", entry: int | None = None) -> Transaction:
    """Append one journal row (see _APPEND) to a transaction (entry; None: a new one); refusals by the database
    become the ledger's own. A transaction's rows must sum to zero: its caller appends them all, in a savepoint."""
    async with ledger_refusals(conn):
        (tx_id, balance, entry_id, business_date), = await conn.fetchall(_APPEND, {
            "n": number, "kind": kind, "amount": amount_cents, "delta": delta(kind, amount_cents),
            "now": at.created_at, "actor": actor, "related": related_id, "memo": memo, "entry": entry,
            "today": at.today})
    return Transaction(tx_id, number, kind, amount_cents, balance, at.created_at, actor, related_id, memo, entry_id,
                       business_date)


async def append_entry(conn, rows, actor: str, at: Stamp) -> list[Transaction]:
    """A transaction of several rows, (number, kind, amount, memo) each, that sum to zero: all or none. Rows of
    no amount are left out (a close with no variance, say)."""
    rows = [row for row in rows if row[2]]
    if sum(delta(kind, amount) for _, kind, amount, _ in rows) != 0:
        raise ValueError(f"a transaction's rows must sum to zero: {rows}")
    written, entry = [], None
    async with conn.savepoint():
        for number, kind, amount, memo in rows:
            written.append(await append(conn, number, kind, amount, actor, at, memo=memo, entry=entry))
            entry = written[-1].entry_id
    return written


@contextlib.asynccontextmanager
async def ledger_refusals(conn):
    """Around one statement that writes journal rows: a refusal by the database (a CHECK or trigger) leaves the
    transaction usable and becomes the ledger's own refusal."""
    try:
        async with conn.refusable():
            yield
    except IntegrityError as error:
        refused = refusal(error.constraint)
        if refused is None:
            raise
        raise refused from None


async def account_open_in(conn, number: str) -> bool:
    """Whether a customer's account exists (in the caller's transaction)."""
    return bool(await conn.fetchall("SELECT 1 FROM accounts WHERE account_number = ? AND kind = 'customer'",
                                    (number,)))


async def business_date(conn, today: str) -> str:
    """The business date of a posting made on the branch's local date `today`: that date, or the day after the
    last day closed if later (_APPEND computes the same in SQL)."""
    (earliest,), = await conn.fetchall("SELECT earliest_business_date FROM settings")
    return max(today, earliest)


def refusal(constraint: str | None) -> Exception | None:
    """The ledger's refusal for a CHECK the database refused a row by, or None for any other constraint."""
    if constraint == "balance_within_limit":
        return InsufficientFunds()
    if constraint == "balance_within_maximum":
        return BalanceTooLarge()
    if constraint == "cash_not_negative":
        return NotEnoughCash()
    if constraint == "drawer_not_open":
        return DrawerNotOpen()
    return None


async def customer_row_of(db: Database, entry_id: int) -> int | None:
    """The (first) customer's row of a transaction: its receipt; None for a transaction of the bank's own."""
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT min(id) FROM journal WHERE entry_id = ? AND account_number NOT LIKE '{BANK_PREFIX}%'", (entry_id,)))
    return rows[0][0] if rows else None


async def get_transaction(db: Database, tx_id: int) -> Transaction | None:
    rows = await db.read(lambda conn: conn.fetchall(f"SELECT {TX_COLUMNS} FROM journal WHERE id = ?", (tx_id,)))
    return Transaction(*rows[0]) if rows else None


async def related_transactions(db: Database, tx: Transaction) -> list[Transaction]:
    """The other rows linked to this one (the other side of a transfer, a reversal)."""
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT {TX_COLUMNS} FROM journal WHERE (id = ? OR related_id = ?) AND id != ? ORDER BY id",
        (tx.related_id, tx.id, tx.id)))
    return [Transaction(*row) for row in rows]


async def history(db: Database, number: str, limit: int = 20, cursor: str | None = None):
    """Journal rows of an account, newest first: (rows, next_cursor or None). The cursor is a row id."""
    check_account_number(number)
    limit = max(1, min(int(limit), HISTORY_MAX))
    before = 2**63 - 1
    if cursor is not None:
        if not (isinstance(cursor, str) and cursor.isascii() and cursor.isdigit() and len(cursor) < 19):
            raise InvalidCursor()
        before = int(cursor)
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT {TX_COLUMNS} FROM journal WHERE account_number = ? AND id < ? ORDER BY id DESC LIMIT ?",
        (number, before, limit + 1)))
    page = [Transaction(*row) for row in rows[:limit]]
    return page, (str(page[-1].id) if len(rows) > limit else None)
