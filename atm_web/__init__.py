"""create_app(test_config=None): the configuration, the ledger's database, then the web layer (web.register)."""
import logging
import os

from dotenv import load_dotenv
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from atm_web import config
from atm_web.core import clock
from atm_web.core.settings import BranchSettings
from atm_web.ledger.accounts import LEDGER_STARTUP
from atm_web.serving import aio
from atm_web.storage import DatabaseUnreachable, open_database
from atm_web.web.json_body import LedgerJSONProvider

MAX_REQUEST_BYTES = 16 * 1024


class AtmFlask(Flask):
    """Runs async views on the process's one long-lived loop, where the database connections live."""

    json_provider_class = LedgerJSONProvider

    def async_to_sync(self, func):
        def run(*args, **kwargs):
            return aio.run(func(*args, **kwargs))
        return run


def create_app(test_config=None):
    app = AtmFlask(__name__, instance_relative_config=True,
                   template_folder="../templates", static_folder="../static")
    if test_config is None:
        load_dotenv()
    environ = dict(os.environ)
    overrides = dict(test_config or {})
    for name in config.DEFAULTS:
        if name in overrides:
            environ[name] = str(overrides.pop(name))
    app.config.update(config.load(environ, app.instance_path))
    app.config.update(MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES, WTF_CSRF_TIME_LIMIT=None, CLOCK=clock.system,
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    app.config.update(overrides)
    # aiosqlite's debug lines carry every statement's parameters (customers' records, hashes): never emitted
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    package_log = logging.getLogger("atm_web")  # our own lines; hypercorn logs its own
    if not package_log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        package_log.addHandler(handler)
        package_log.setLevel(logging.INFO)
    if app.config["TRUST_PROXY_HEADERS"]:  # behind Heroku/Render's router: believe its X-Forwarded-* headers
        hops = app.config["TRUST_PROXY_HEADERS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    open_ledger(app)
    from atm_web import cli, web
    web.register(app)
    cli.register(app)
    return app


def open_ledger(app) -> None:
    """The ledger's database, opened (schema created or migrated, MAX_DEBT applied) at start, not mid-request, with
    the branch's settings the domain packages read from it (core.settings)."""
    database = open_database(app.config, LEDGER_STARTUP)
    database.settings = BranchSettings.from_config(app.config)
    try:
        aio.run(database.open())
    except DatabaseUnreachable as error:
        raise config.ConfigError(str(error)) from None
    aio.close_at_exit(database)
    app.extensions["atm_db"] = database
