"""`flask --app atm_web ...` commands."""
import sys

import click

from atm_web.core.clock import now
from atm_web.core.rules import ROLES
from atm_web.ledger import verification
from atm_web.ledger.accounts import balances_and_limits
from atm_web.serving import aio
from atm_web.staff import tellers, tokens
from atm_web.staff.refusals import StaffRefused
from atm_web.storage import DatabaseUnreachable, get_db


def _read_password() -> str:
    """From stdin when it is not a terminal (scripts), else prompted twice without echo."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def register(app):
    @app.cli.command("init-db")
    def init_db():
        """Create or migrate the schema (also done at start-up)."""
        aio.run(get_db().open())
        click.echo(f"Database ready: {get_db().describe()}")

    @app.cli.command("verify")
    def verify():
        """Exit 0 when the journal, balances and limits reconcile and every transaction balances; else name each
        problem and exit 1."""
        problems, rows_checked = aio.run(verification.verify_and_record(get_db(), "cli", now=now()))
        for problem in problems:
            click.echo(f"FAIL {problem}", err=True)
        if problems:
            raise SystemExit(1)
        click.echo(f"OK: {rows_checked} journal rows; every hash chain holds, every balance equals its journal "
                   "and respects its limit, every transaction and all balances sum to zero")

    @app.cli.command("backup")
    @click.option("--to", "target", required=True, metavar="FILE", help="A new file (never overwritten).")
    def backup_command(target):
        """Copy this SQLite ledger to FILE while it serves (one point in time), then verify the copy; exit 0 only
        when it verifies."""
        from atm_web.serving.backups import BackupFailed, backup
        try:
            made = aio.run(backup(get_db(), target))
        except BackupFailed as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"Backup {made.path}: verified, {made.rows_checked} journal rows checked, "
                   f"{made.size_bytes} bytes")

    @app.cli.command("restore")
    @click.option("--from", "source", required=True, metavar="FILE", help="A backup made by flask backup.")
    def restore_command(source):
        """Put the backup FILE in place of this SQLite ledger: verified first, refused while a server holds the
        ledger; the file it replaces is kept beside it, renamed with the time."""
        from atm_web.serving.backups import BackupFailed, restore
        db = get_db()
        if db.engine != "sqlite":
            raise click.ClickException("flask restore is for a SQLite ledger; on PostgreSQL use pg_restore "
                                       "(README, Backups)")
        aio.run(db.close())  # this command's own hold on the ledger
        try:
            rows_checked, kept = aio.run(restore(db.path, source))
        except BackupFailed as error:
            raise click.ClickException(f"nothing restored: {error}") from None
        click.echo(f"Restored {source} as {db.path} (it verifies: {rows_checked} journal rows checked); "
                   + (f"the ledger it replaced is kept as {kept}" if kept else "there was no ledger to replace"))

    @app.cli.command("create-teller")
    @click.argument("name")
    @click.option("--admin", is_flag=True, help="Make an administrator (the same as --role admin).")
    @click.option("--role", type=click.Choice(ROLES), default=None, help="teller (the default), supervisor or admin.")
    def create_teller(name, admin, role):
        """Add a teller; the password is read from stdin when it is not a terminal, else prompted twice."""
        if admin and role not in (None, "admin"):
            raise click.UsageError("--admin and --role name two roles: give one")
        try:
            teller = aio.run(tellers.create_teller(get_db(), name, tellers.hash_password(_read_password()),
                                                   "admin" if admin else role or "teller", "cli", now()))
        except StaffRefused as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"Added {teller.role} {teller.username}")

    @app.cli.command("create-token")
    @click.argument("name")
    @click.option("--read-only", is_flag=True, help="May read, never write.")
    @click.option("--admin", is_flag=True, help="May also set overdraft limits.")
    def create_token(name, read_only, admin):
        """Make an API token; it is printed once, alone on the last line, and stored only as a hash."""
        try:
            token, secret = aio.run(tokens.create_token(get_db(), name, read_only, "cli", now(), admin))
        except StaffRefused as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"Created {token.scope} token {token.name!r}; it is shown only now:")
        click.echo(secret)

    @app.cli.command("copy-ledger")
    @click.option("--to", "target_url", required=True, metavar="URL",
                  help="An empty PostgreSQL database: postgresql://user:password@host:5432/dbname")
    def copy_ledger(target_url):
        """Copy this SQLite ledger (DB_PATH) into an empty PostgreSQL database, then verify the copy there."""
        from atm_web.config import ConfigError, database_url
        from atm_web.storage.copy import CopyRefused, copy_ledger
        from atm_web.storage.postgresql import PostgresDatabase, redacted
        source = get_db()
        if source.engine != "sqlite":
            raise click.ClickException("copy-ledger copies the SQLite ledger at DB_PATH: unset DATABASE_URL")
        try:
            url = database_url(target_url)
        except ConfigError as error:
            raise click.ClickException(str(error).replace("DATABASE_URL", "--to", 1)) from None
        target = PostgresDatabase(url, source.max_debt_cents, pool_size=2, startup=source.startup)
        try:
            copied = aio.run(copy_ledger(source, target))
        except CopyRefused as error:
            raise click.ClickException(str(error)) from None
        except DatabaseUnreachable as error:
            raise click.ClickException(str(error).replace("DATABASE_URL", "--to", 1)) from None
        try:
            click.echo(f"Copied to {redacted(url)}: " + ", ".join(f"{n} {t}" for t, n in copied.items()))
            problems, rows_checked = aio.run(verification.verify_and_record(target, "cli copy-ledger", now=now()))
            same = aio.run(balances_and_limits(source)) == aio.run(balances_and_limits(target))
        finally:
            aio.run(target.close())
        for problem in problems + ([] if same else ["the balances differ from the SQLite ledger's"]):
            click.echo(f"FAIL {problem}", err=True)
        if problems or not same:
            raise SystemExit(1)
        click.echo(f"OK: the copy verifies: {rows_checked} journal rows, every hash chain holds, every balance "
                   "equals its journal and the SQLite ledger's")
