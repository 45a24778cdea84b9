"""create_app(test_config=None): config, extensions, blueprints, error handlers."""
import logging
import os

from dotenv import load_dotenv
from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from . import aio, clock, config, rules
from .json_body import LedgerJSONProvider
from .money import format_cents
from .storage import DatabaseUnreachable, open_database

csrf = CSRFProtect()
MAX_REQUEST_BYTES = 16 * 1024


class AtmFlask(Flask):
    """Runs async views on the process's one long-lived loop, where the database connections live."""

    json_provider_class = LedgerJSONProvider

    def async_to_sync(self, func):
        def run(*args, **kwargs):
            return aio.run(func(*args, **kwargs))
        return run


class TellerSessionInterface(SecureCookieSessionInterface):
    """The signed session cookie (it holds only a random session id and the CSRF token): HttpOnly, SameSite=Lax,
    and Secure with the __Host- prefix when the request came over HTTPS."""

    def get_cookie_name(self, app):
        return "__Host-atm_session" if request.is_secure else "atm_session"

    def get_cookie_secure(self, app):
        return request.is_secure

    def get_cookie_domain(self, app):
        return None

    def get_cookie_path(self, app):
        return "/"


class RowIdConverter(IntegerConverter):
    """<id:name>: a database row id, 1 to 2**63 - 1 in ASCII digits; anything else in the path is a 404, never an
    overflow (werkzeug's int converter matches \\d, which takes other scripts' digits too: '١' is 1)."""

    regex = r"[0-9]+"

    def __init__(self, url_map):
        super().__init__(url_map, min=1, max=2**63 - 1)


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

    app.session_interface = TellerSessionInterface()
    if app.config["TRUST_PROXY_HEADERS"]:  # behind Heroku/Render's router: believe its X-Forwarded-* headers
        hops = app.config["TRUST_PROXY_HEADERS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    app.url_map.converters["id"] = RowIdConverter
    register_extensions(app)
    register_blueprints(app)
    app.add_url_rule("/favicon.ico", "favicon", lambda: app.send_static_file("favicon.ico"))  # asked for by browsers
    register_template_helpers(app)
    from . import errors
    errors.register(app)
    from .auth import announce_setup
    announce_setup(app)
    return app


def actor_name(actor: str) -> str:
    """Who did something, as a page shows it: a teller by name, a token by its name (the JSON keeps the actor)."""
    kind, _, name = actor.partition(":")
    if kind == "teller" and name:
        return name
    if kind == "token" and name:
        return f"{name} (API token)"
    return actor


def register_template_helpers(app):
    app.add_template_filter(format_cents, "money")
    app.add_template_filter(lambda moment: clock.local(moment, app.config["BRANCH_TIMEZONE"]), "when")
    app.add_template_filter(lambda moment: clock.local(moment, app.config["BRANCH_TIMEZONE"])[11:], "time_of_day")
    app.add_template_filter(lambda kind: rules.KIND_LABELS.get(kind, kind), "kind_label")
    app.add_template_filter(actor_name, "actor")
    app.add_template_global(rules, "rules")  # the templates state the rules from the one place they live


def register_extensions(app):
    csrf.init_app(app)
    database = open_database(app.config)
    try:  # create or migrate the schema, apply MAX_DEBT: fail at start, not mid-request
        aio.run(database.open())
    except DatabaseUnreachable as error:
        raise config.ConfigError(str(error)) from None
    aio.close_at_exit(database)
    app.extensions["atm_db"] = database


def register_blueprints(app):
    from . import (
        admin,
        api,
        approval_pages,
        auth,
        cli,
        customer_pages,
        drawer_pages,
        large_cash_pages,
        report_pages,
        teller,
        vault_pages,
    )
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)  # scripts authenticate per request with a token, not with a browser session
    app.register_blueprint(auth.bp)
    app.register_blueprint(teller.bp)
    app.register_blueprint(drawer_pages.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(vault_pages.bp)
    app.register_blueprint(report_pages.bp)
    app.register_blueprint(approval_pages.bp)
    app.register_blueprint(customer_pages.bp)
    app.register_blueprint(large_cash_pages.bp)
    cli.register(app)
