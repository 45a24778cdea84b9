"""Moving a branch from SQLite to PostgreSQL: every table copied into an empty database, ids and hashes as they are.

The target is migrated first (the same schema the app would make), must hold no data, and is filled in ONE
transaction with its row triggers switched off for the copy (the rows are already applied: a journal row copied
must not add to a balance copied with it), then checked by the caller with verify. A copy that fails leaves the
target as empty as it was. The source is read from one snapshot, a batch of rows at a time (memory does not grow
with the ledger), each batch sent with COPY.
"""
import asyncpg

from atm_web.storage.postgresql import WRITE_LOCK, PostgresDatabase
from atm_web.storage.sqlite import SQLiteDatabase

# In the order their foreign keys need; settings is the target's own (MAX_DEBT of the configuration) but for the
# business day, copied.
TABLES = ["tellers", "accounts", "drawer_sessions", "journal", "holds", "vault_movements", "closed_days",
          "idempotency_keys", "verifications", "sessions", "login_attempts", "login_locks", "api_tokens", "audit_log",
          "setup_code", "customers", "account_holders", "cards", "card_accounts", "atms", "atm_cassettes",
          "atm_replenishments", "atm_journal", "atm_withdrawals", "approvals", "large_cash", "large_cash_checks",
          "customer_cash", "customer_reads", "closing_cash", "chain_heads"]
BATCH = 5000  # rows read, and sent, at a time
WITH_TRIGGERS = ["journal", "holds", "audit_log", "customer_cash", "customer_reads"]
WITH_IDENTITY = ["tellers", "journal", "holds", "vault_movements", "verifications", "login_attempts", "api_tokens",
                 "audit_log", "customers", "cards", "atms", "atm_replenishments", "atm_withdrawals", "approvals",
                 "large_cash", "large_cash_checks", "customer_reads"]


class CopyRefused(Exception):
    """The copy cannot start (the target holds data, or the schemas differ); nothing was written."""


async def copy_ledger(source: SQLiteDatabase, target: PostgresDatabase, progress=None, total=None) -> dict[str, int]:
    """Copy every table of source into target; the number of rows copied, per table. progress(rows copied) is
    called as it goes, total(rows to copy) once, first."""
    await source.open()
    await target.open()  # migrates the target
    conn = await target._connect()
    try:
        async with conn.raw.transaction():
            await conn.raw.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK})")  # no app writes meanwhile
            # the bank's own accounts, as the migration opened them (no rows yet), are the source's to copy
            await conn.raw.execute("DELETE FROM accounts WHERE kind != 'customer' AND balance_cents = 0 "
                                   "AND NOT EXISTS (SELECT 1 FROM journal)")
            held = {table: await conn.raw.fetchval(f"SELECT COUNT(*) FROM {table}") for table in TABLES}
            if any(held.values()):
                rows = ", ".join(f"{count} in {table}" for table, count in held.items() if count)
                raise CopyRefused(f"the target database already holds data ({rows}): copy-ledger fills an "
                                  "empty one")
            for table in WITH_TRIGGERS:
                await conn.raw.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            copied = await source.read(lambda reader: _copy_tables(reader, conn.raw, progress, total),
                                       snapshot=True, long=True)
            for table in WITH_TRIGGERS:
                await conn.raw.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            for table in WITH_IDENTITY:  # new rows continue after the copied ids
                await conn.raw.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)")
        # the tables just filled, vacuumed and their statistics taken now rather than at autovacuum's next visit:
        # without them the first reports of a large ledger take plans made for empty tables, and every index-only
        # scan reads the table too (no page is marked all-visible yet)
        await conn.raw.execute("VACUUM (ANALYZE)")
        return copied
    finally:
        await conn.raw.close()


async def _copy_tables(reader, target: asyncpg.Connection, progress, total) -> dict[str, int]:
    """Every table, from the source's one snapshot (reader); then the business day (settings is the target's own:
    MAX_DEBT of its configuration)."""
    if total is not None:
        counts = [await reader.fetchall(f"SELECT count(*) FROM {table}") for table in TABLES]
        total(sum(count for (count,), in counts))
    copied, done = {}, 0
    for table in TABLES:
        copied[table] = 0
        columns = await _columns(reader, target, table)
        batch = []
        async for row in reader.stream(f"SELECT {', '.join(columns)} FROM {table} ORDER BY rowid"):
            batch.append(row)
            if len(batch) == BATCH:
                await target.copy_records_to_table(table, records=batch, columns=columns)
                copied[table] += len(batch)
                done += len(batch)
                batch = []
                if progress is not None:
                    progress(done)
        if batch:
            await target.copy_records_to_table(table, records=batch, columns=columns)
            copied[table] += len(batch)
            done += len(batch)
    (earliest,), = await reader.fetchall("SELECT earliest_business_date FROM settings")
    await target.execute("UPDATE settings SET earliest_business_date = $1", earliest)
    if progress is not None:
        progress(done)
    return copied


async def _columns(reader, target: asyncpg.Connection, table: str) -> list[str]:
    """The table's columns, the same on both sides (CopyRefused otherwise)."""
    source_columns = [row[1] for row in await reader.fetchall(f"PRAGMA table_info({table})")]
    target_columns = [row[0] for row in await target.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = $1 ORDER BY ordinal_position", table)]
    if sorted(source_columns) != sorted(target_columns):
        raise CopyRefused(f"table {table} has columns {source_columns} here and {target_columns} in the target")
    return target_columns
