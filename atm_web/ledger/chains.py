"""The check every verification makes of a journal row against the row before it on its account: its balance
after follows from that row's, and its hash from that row's hash and its own fields (verification.py for the whole
ledger, day_check.py for one day); and the hash of a row of an ATM's electronic journal (cash/atm_journal.py)."""
import hashlib

from atm_web.ledger.journal import JournalRow, row_hash


def atm_row_hash(previous_hash: str, atm_id: int, seq: int, at: str, event: str, detail: str, actor: str) -> str:
    """An ATM journal row's hash: of the row before it on that ATM's journal ('' for the first) and its fields."""
    text = "|".join((previous_hash, str(atm_id), str(seq), at, event, detail, actor))
    return hashlib.sha256(text.encode()).hexdigest()


def row_problem(tx: JournalRow, previous_hash: str | None, previous_balance: int,
                signed_cents: int | None = None) -> str | None:
    """What is wrong with the row tx, given the row before it on its account (its hash and balance after; None and
    0 for the first row): None when nothing is. signed_cents: tx.signed_cents, when the caller has it already."""
    stored = tx.hash
    expected_balance = previous_balance + (tx.signed_cents if signed_cents is None else signed_cents)
    if tx.balance_after_cents != expected_balance:
        return f"journal row {tx.id}: balance after is {tx.balance_after_cents}, the journal sums to {expected_balance}"
    if stored is None:  # rows written before the hash chain have none; none may follow a hashed row
        return f"journal row {tx.id}: no hash after hashed rows (removed?)" if previous_hash is not None else None
    expected = row_hash(previous_hash or "", tx.account_number, tx.kind, tx.amount_cents, tx.balance_after_cents,
                        tx.created_at, tx.actor, tx.related_id, tx.memo, tx.entry_id, tx.business_date)
    return None if stored == expected else f"journal row {tx.id}: hash does not match its fields or its chain (edited?)"
