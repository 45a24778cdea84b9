"""Reversals: a transaction (every row of it: both legs of a transfer, the bank's side of a deposit) compensated
by linked rows in a transaction of their own, at most once, audited."""
from dataclasses import dataclass, replace

from atm_web.core import audit
from atm_web.core.clock import or_system
from atm_web.core.rules import BANK_KINDS, CLEARING, DRAWER_PREFIX, REVERSING_KIND
from atm_web.ledger.journal import TX_COLUMNS, Transaction, append, note_cash, posting_stamp
from atm_web.ledger.refusals import CannotReverse, CashAtTheCounter, UnknownEntry, check_reason
from atm_web.storage import Database, IntegrityError

_REASON_MARK = ": "  # a reversal's memo: "reverses {id}: {reason}"


@dataclass(frozen=True)
class Reversal:
    rows: list[Transaction]  # the compensating entries, by id
    replayed: bool = False  # the entry was already reversed with this very reason: these are that reversal's rows


def reversible(tx: Transaction, related: list[Transaction]) -> bool:
    """Whether tx (with its related rows) may still be reversed."""
    return (tx.kind in REVERSING_KIND and tx.kind not in BANK_KINDS
            and not any(r.kind.startswith("reversal") for r in related))


async def moved_cash(conn, original: Transaction) -> bool:
    """Whether the original's transaction moved cash through a drawer (its reversal must pay cash back)."""
    return original.entry_id is not None and bool(await conn.fetchall(
        f"SELECT 1 FROM journal WHERE entry_id = ? AND account_number LIKE '{DRAWER_PREFIX}%'", (original.entry_id,)))


async def _rows_of(conn, original: Transaction, cash_account: str | None) -> list[Transaction]:
    """Every row of the original's transaction, to reverse on the same accounts; but cash that went through a
    drawer is paid back through `cash_account` (the drawer of the teller who asked for the reversal; refused
    without one: CashAtTheCounter), never through another teller's drawer. A row written before double entry is
    alone, or a transfer's two legs; the opening entry gave clearing the other side of all of those, so clearing
    takes it again here."""
    if original.entry_id is not None:
        rows = [Transaction(*row) for row in await conn.fetchall(
            f"SELECT {TX_COLUMNS} FROM journal WHERE entry_id = ? ORDER BY id", (original.entry_id,))]
        if any(row.account_number.startswith(DRAWER_PREFIX) for row in rows) and cash_account is None:
            raise CashAtTheCounter(original.id)
        return [replace(row, account_number=cash_account) if row.account_number.startswith(DRAWER_PREFIX)
                else row for row in rows]
    legs = [original]
    if original.kind.startswith("transfer"):
        other = await conn.fetchall(
            f"SELECT {TX_COLUMNS} FROM journal WHERE (id = ? OR related_id = ?) AND id != ? "
            "AND kind IN ('transfer_in', 'transfer_out')", (original.related_id, original.id, original.id))
        legs += [Transaction(*row) for row in other]
    net = sum(leg.signed_cents for leg in legs)
    if net:
        legs.append(Transaction(0, CLEARING, "debit" if net > 0 else "credit", abs(net), 0, original.created_at,
                                original.actor))
    return legs


async def original_in(conn, tx_id: int) -> Transaction:
    """The entry to reverse, refused (CannotReverse) unless a customer's entry that is not a reversal."""
    rows = await conn.fetchall(f"SELECT {TX_COLUMNS} FROM journal WHERE id = ?", (tx_id,))
    if not rows:
        raise UnknownEntry(tx_id)
    original = Transaction(*rows[0])
    if original.kind in BANK_KINDS:
        raise CannotReverse(f"journal entry {tx_id} is the bank's side of a transaction: reverse the "
                            "customer's entry")
    if original.kind not in REVERSING_KIND:
        raise CannotReverse("a reversal cannot itself be reversed")
    if await conn.fetchall("SELECT 1 FROM journal WHERE related_id = ? AND kind IN ('reversal_credit', "
                           "'reversal_debit')", (tx_id,)):
        raise CannotReverse(f"journal entry {tx_id} is already reversed")
    return original


async def reverse_in(conn, tx_id: int, reason: str, actor: str, now: float, at,
                     cash_account: str | None = None) -> Reversal:
    """The reversal, in the caller's transaction (all or nothing), audited; cash it pays back goes through
    cash_account (see _rows_of)."""
    async with conn.savepoint():
        original = await original_in(conn, tx_id)
        legs = await _rows_of(conn, original, cash_account)
        await conn.lock_accounts(leg.account_number for leg in legs)
        done, entry = [], None
        for leg in sorted(legs, key=lambda t: t.is_credit, reverse=True):  # the debit that may fail first
            try:
                row = await append(conn, leg.account_number, REVERSING_KIND[leg.kind], leg.amount_cents, actor,
                                   at, related_id=leg.id or None, memo=f"reverses {leg.id or 'entry 0'}"
                                   f"{_REASON_MARK}{reason}", entry=entry)
            except IntegrityError as error:
                if error.constraint == "journal_one_reversal":
                    raise CannotReverse(f"journal entry {leg.id} is already reversed") from None
                raise
            entry = row.entry_id
            if leg.kind not in BANK_KINDS:
                done.append(row)
        if cash_account is not None and any(leg.account_number == cash_account for leg in legs):
            for row in done:  # the cash it pays back (or takes in) through the drawer
                await note_cash(conn, row.entry_id, row.account_number, row.kind, row.amount_cents, at.today)
        await audit.record(conn, now, actor, "entry reversed", str(tx_id), reason)
        return Reversal(sorted(done, key=lambda t: t.id))


async def reverse(db: Database, tx_id: int, reason: str, actor: str, *, now: float | None = None) -> Reversal:
    """Compensate a journal entry with linked entries, in one transaction with its audit row. Asked again with the
    same reason, the first reversal is the answer (replayed): a retried request does not fail. Refused
    (InsufficientFunds) if it would break a limit; CannotReverse for a reversal, or one already reversed with
    another reason; CashAtTheCounter for a transaction that moved cash (cash_desk.reverse_at_counter pays it)."""
    reason = check_reason(reason)
    now = or_system(now)
    at = posting_stamp(db, now)

    async def op(conn):
        return await reverse_in(conn, tx_id, reason, actor, now, at)

    try:
        return await db.write(op)
    except UnknownEntry:
        raise
    except CannotReverse:
        earlier = await reversals_of(db, tx_id)
        if earlier and all(r.memo.endswith(_REASON_MARK + reason) for r in earlier):
            return Reversal(earlier, replayed=True)
        raise


async def reversals_of(db: Database, tx_id: int) -> list[Transaction]:
    """The reversal entries of a journal entry and, for a transfer, of its other leg."""
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT {TX_COLUMNS} FROM journal WHERE kind IN ('reversal_credit', 'reversal_debit') AND related_id IN "
        "(SELECT id FROM journal WHERE id = :t OR related_id = :t OR id = (SELECT related_id FROM journal "
        " WHERE id = :t AND kind LIKE 'transfer%')) ORDER BY id", {"t": tx_id}))
    return [Transaction(*row) for row in rows]
