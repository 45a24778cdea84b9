"""`flask --app atm_web ...` commands."""
import click

from . import accounts, aio, get_db


def register(app):
    @app.cli.command("init-db")
    def init_db():
        """Create or migrate the schema (also done at start-up)."""
        aio.run(get_db().open())
        click.echo(f"Database ready: {get_db().path}")

    @app.cli.command("verify")
    def verify():
        """Exit 0 when the journal, balances and limits reconcile; else name each problem and exit 1."""
        problems = aio.run(accounts.verify(get_db()))
        for problem in problems:
            click.echo(f"FAIL {problem}", err=True)
        if problems:
            raise SystemExit(1)
        click.echo("OK: every balance equals its journal and respects its limit")
