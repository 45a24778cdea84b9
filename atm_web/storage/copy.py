"""Moving a branch from SQLite to PostgreSQL: every table copied into an empty database, ids and hashes as they are.

The target is migrated first (the same schema the app would make), must hold no data, and is filled in ONE
transaction with its row triggers switched off for the copy (the rows are already applied: a journal row copied
must not add to a balance copied with it), then checked by the caller with verify. A copy that fails leaves the
target as empty as it was.
"""
import asyncpg

from atm_web.storage.postgresql import WRITE_LOCK, PostgresDatabase
from atm_web.storage.sqlite import SQLiteDatabase

# In the order their foreign keys need; settings is the target's own (MAX_DEBT of the configuration) but for the
# business day, copied.
TABLES = ["tellers", "accounts", "drawer_sessions", "journal", "vault_movements", "closed_days", "idempotency_keys",
          "verifications", "sessions", "login_attempts", "login_locks", "api_tokens", "audit_log", "setup_code",
          "customers", "account_holders", "approvals", "large_cash", "large_cash_checks", "customer_cash",
          "customer_reads"]
WITH_TRIGGERS = ["journal", "audit_log", "customer_cash", "customer_reads"]
WITH_IDENTITY = ["tellers", "journal", "vault_movements", "verifications", "login_attempts", "api_tokens",
                 "audit_log", "customers", "approvals", "large_cash", "large_cash_checks", "customer_reads"]


class CopyRefused(Exception):
    """The copy cannot start (the target holds data, or the schemas differ); nothing was written."""


async def copy_ledger(source: SQLiteDatabase, target: PostgresDatabase) -> dict[str, int]:
    """Copy every table of source into target; the number of rows copied, per table."""
    await source.open()
    await target.open()  # migrates the target
    conn = await target._connect()
    try:
        copied = {}
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
            for table in TABLES:
                copied[table] = await _copy_table(source, conn.raw, table)
            for table in WITH_TRIGGERS:
                await conn.raw.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
            (earliest,), = await source.read(lambda c: c.fetchall("SELECT earliest_business_date FROM settings"))
            await conn.raw.execute("UPDATE settings SET earliest_business_date = $1", earliest)
            for table in WITH_IDENTITY:  # new rows continue after the copied ids
                await conn.raw.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)")
        return copied
    finally:
        await conn.raw.close()


async def _copy_table(source: SQLiteDatabase, target: asyncpg.Connection, table: str) -> int:
    source_columns = [row[1] for row in await source.read(lambda c: c.fetchall(f"PRAGMA table_info({table})"))]
    target_columns = [row[0] for row in await target.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = $1 ORDER BY ordinal_position", table)]
    if sorted(source_columns) != sorted(target_columns):
        raise CopyRefused(f"table {table} has columns {source_columns} here and {target_columns} in the target")
    rows = await source.read(lambda c: c.fetchall(f"SELECT {', '.join(target_columns)} FROM {table} ORDER BY 1"))
    if rows:
        await target.copy_records_to_table(table, records=rows, columns=target_columns)
    return len(rows)
