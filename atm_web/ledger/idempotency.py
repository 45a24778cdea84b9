"""Idempotent requests: a key claimed in the money's own transaction, so a retried request moves money at most once
and gets the first answer again."""
from dataclasses import dataclass, replace

from atm_web.ledger.journal import TX_COLUMNS, Transaction
from atm_web.ledger.refusals import IdempotencyKeyReused, InsufficientFunds
from atm_web.storage import Database

IDEMPOTENCY_TTL_S = 24 * 3600  # keys are kept at least this long, then purged
PURGE_EVERY_S = 3600


@dataclass(frozen=True)
class Once:
    """An idempotent request: its key within a scope (a token, a teller's forms), a fingerprint of what it asks,
    and when it was made (the app's clock)."""
    scope: str
    key: str
    fingerprint: str
    now: float


@dataclass(frozen=True)
class Replay:
    """What a write returns when its key already had an outcome (or a refusal stored with a first claim): the
    transaction it posted, or the hold it placed or ended (holds.py)."""
    transaction_id: int | None
    refusal: str | None
    first_time: bool = False
    hold_id: int | None = None


INSUFFICIENT_FUNDS = "insufficient_funds"  # the one refusal stored as an outcome: a retry gets it again


async def at_most_once(conn, once: Once | None, apply):
    """Run apply() unless this key already has an outcome; store the outcome in the same transaction.

    The key is claimed first (an insert that a twin request with the same key, on any server, waits behind on
    the unique index), then the money moves, then the claim records the outcome: concurrent identical requests
    make one journal row. An expired key (older than IDEMPOTENCY_TTL_S) is claimed afresh."""
    if once is None:
        return await apply()
    async with conn.savepoint():
        claimed = await conn.fetchall(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, transaction_id, refusal, created_at) "
            "VALUES (?, ?, ?, NULL, NULL, ?) ON CONFLICT (scope, key) DO UPDATE SET "
            "fingerprint = excluded.fingerprint, transaction_id = NULL, hold_id = NULL, refusal = NULL, "
            "created_at = excluded.created_at "
            "WHERE idempotency_keys.created_at < ? RETURNING scope",
            (once.scope, once.key, once.fingerprint, once.now, once.now - IDEMPOTENCY_TTL_S))
        if not claimed:
            (fingerprint, tx_id, refusal, hold_id), = await conn.fetchall(
                "SELECT fingerprint, transaction_id, refusal, hold_id FROM idempotency_keys "
                "WHERE scope = ? AND key = ?",
                (once.scope, once.key))
            if fingerprint != once.fingerprint:
                raise IdempotencyKeyReused(tx_id)
            return Replay(tx_id, refusal, hold_id=hold_id)
        try:
            async with conn.savepoint():  # a refusal must leave the claim standing, to record it
                result = await apply()
        except InsufficientFunds:  # an outcome like any other: a retry gets the same refusal
            outcome, first, refusal = Replay(None, INSUFFICIENT_FUNDS, first_time=True), None, INSUFFICIENT_FUNDS
        else:
            outcome, first, refusal = result, (result[0] if isinstance(result, tuple) else result), None
        hold_id = first.id if getattr(first, "is_hold", False) else None
        tx_id = None if first is None or hold_id is not None else first.id
        await conn.execute("UPDATE idempotency_keys SET transaction_id = ?, hold_id = ?, refusal = ? "
                           "WHERE scope = ? AND key = ?", (tx_id, hold_id, refusal, once.scope, once.key))
        return outcome


async def replayed(db: Database, replay: Replay) -> tuple[Transaction, ...]:
    """The transactions (or the refusal) an earlier request with the same key got, marked replayed."""
    if replay.refusal == INSUFFICIENT_FUNDS:
        raise InsufficientFunds(replayed=not replay.first_time)
    rows = await db.read(lambda conn: conn.fetchall(  # its own rows: not a reversal made since
        f"SELECT {TX_COLUMNS} FROM journal WHERE (id = ? OR related_id = ?) "
        "AND kind NOT IN ('reversal_credit', 'reversal_debit') ORDER BY id",
        (replay.transaction_id, replay.transaction_id)))
    return tuple(replace(Transaction(*row), replayed=True) for row in rows)


def batch_key(once: Once | None) -> tuple:
    """(scope, key, fingerprint, key time, oldest key time still valid) for a posting made in one statement."""
    if once is None:
        return (None,) * 5
    return once.scope, once.key, once.fingerprint, once.now, once.now - IDEMPOTENCY_TTL_S


async def purge_expired_keys(db: Database, once: Once | None) -> None:
    """Now and then (hourly, per process), forget idempotency keys past IDEMPOTENCY_TTL_S."""
    if once is None or once.now - db.idempotency_purged_at <= PURGE_EVERY_S:
        return
    db.idempotency_purged_at = once.now
    await db.write(lambda conn: conn.execute("DELETE FROM idempotency_keys WHERE created_at < ?",
                                             (once.now - IDEMPOTENCY_TTL_S,)))
