"""The database behind get_db(): SQLite at DB_PATH, or PostgreSQL when DATABASE_URL is set; one interface.

The domain packages above (ledger, staff, customers, approvals, cash) write the same SQL for both engines, with
`?` or `:name` placeholders; what differs between engines (connections, turn-taking, the SQL dialect of triggers,
error names) lives here and in the engines' migrations (storage/migrations/ENGINE/). Storage knows no domain
module: what a domain must run when the database opens is given to it (Database.startup).

One naming habit, everywhere above: a function whose name ends in `_in` (e.g. `account_open_in`,
`reverse_in`, `hold_in`) takes a connection, `conn`, and runs in the caller's transaction, inside
someone's write op or read snapshot (common.py); its twin without the suffix takes the Database and makes a write
or read of its own. A write made of several `_in` steps is all or nothing.
"""
from flask import current_app

from atm_web.storage.common import Database, DatabaseUnreachable, IntegrityError, LedgerUnavailable

__all__ = ["Database", "DatabaseUnreachable", "IntegrityError", "LedgerUnavailable", "get_db", "open_database"]


def open_database(config, startup=()) -> Database:
    """The configured engine's database, not connected yet (Database.open() connects, migrates and runs the
    start-up steps a higher layer gives: see Database.startup)."""
    if config.get("DATABASE_URL"):
        from atm_web.storage.postgresql import PostgresDatabase
        return PostgresDatabase(config["DATABASE_URL"], config["MAX_DEBT_CENTS"], config["DB_POOL_SIZE"],
                                config["DB_PREPARED_STATEMENTS"], config["BRANCH_TIMEZONE"], startup)
    from atm_web.storage.sqlite import SQLiteDatabase
    return SQLiteDatabase(config["DB_PATH"], config["MAX_DEBT_CENTS"], config["BRANCH_TIMEZONE"], startup)


def get_db() -> Database:
    """The app's database (flaskr's habit: one accessor, used by every blueprint)."""
    return current_app.extensions["atm_db"]
