"""`flask --app atm_web ...` commands."""
import sys

import click

from atm_web.core.clock import now
from atm_web.core.rules import ROLES
from atm_web.ledger import verification
from atm_web.ledger.accounts import same_balances
from atm_web.serving import aio
from atm_web.serving.progress import Progress
from atm_web.staff import tellers, tokens
from atm_web.staff.refusals import StaffRefused
from atm_web.storage import DatabaseUnreachable, get_db


def _read_password() -> str:
    """From stdin when it is not a terminal (scripts), else prompted twice without echo."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _progress(label: str) -> Progress | None:
    """Progress on stderr when it is a terminal; None (quiet) otherwise."""
    return Progress(lambda text: click.echo(text, err=True, nl=False), label) if sys.stderr.isatty() else None


def _verify(db, actor: str, full: bool) -> verification.Verification:
    """verify_and_record, its progress on stderr when that is a terminal, and each problem printed (FAIL ...)."""
    progress = _progress("verify")
    outcome = aio.run(verification.verify_and_record(
        db, actor, full=full, now=now(), progress=progress, total=progress.set_total if progress else None))
    if progress is not None:
        progress.done()
    for problem in outcome.problems:
        click.echo(f"FAIL {problem}", err=True)
    if outcome.problem_count > len(outcome.problems):
        click.echo(f"... and {outcome.problem_count - len(outcome.problems)} more problems", err=True)
    return outcome


def register(app):
    @app.cli.command("init-db")
    def init_db():
        """Create or migrate the schema (also done at start-up)."""
        aio.run(get_db().open())
        click.echo(f"Database ready: {get_db().describe()}")

    @app.cli.command("verify")
    @click.option("--full", is_flag=True, help="Check every row, not only those since the last run that passed.")
    def verify(full):
        """Exit 0 when the journal, balances and limits reconcile and every transaction balances; else name each
        problem and exit 1. Checks the rows written since the last verification that passed (from the chain heads
        it kept), or every row with --full or when there is no such run. Progress on a terminal."""
        outcome = _verify(get_db(), "cli", full)
        what = ("every row" if outcome.kind == "full"
                else "the rows written since the last verification that passed")
        if not outcome.ok:
            click.echo(f"Checked {what}: {outcome.rows_checked} journal rows.", err=True)
            raise SystemExit(1)
        click.echo(f"OK ({outcome.kind}): {outcome.rows_checked} journal rows, {what}; every hash chain holds, every "
                   "balance equals its journal and respects its limit, every transaction and all balances sum to zero")

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
            progress = _progress("copy-ledger")
            copied = aio.run(copy_ledger(source, target, progress, progress.set_total if progress else None))
            if progress is not None:
                progress.done()
        except CopyRefused as error:
            raise click.ClickException(str(error)) from None
        except DatabaseUnreachable as error:
            raise click.ClickException(str(error).replace("DATABASE_URL", "--to", 1)) from None
        try:
            click.echo(f"Copied to {redacted(url)}: " + ", ".join(f"{n} {t}" for t, n in copied.items()))
            outcome = _verify(target, "cli copy-ledger", full=True)
            same = aio.run(same_balances(source, target))
        finally:
            aio.run(target.close())
        if not same:
            click.echo("FAIL the balances differ from the SQLite ledger's", err=True)
        if not outcome.ok or not same:
            raise SystemExit(1)
        click.echo(f"OK: the copy verifies: {outcome.rows_checked} journal rows, every hash chain holds, every "
                   "balance equals its journal and the SQLite ledger's")
