"""Fixtures: an app on a real SQLite file in tmp_path, its test client and CLI runner, and the ledger.

`client` is a logged-in teller that also carries a read-write API token, so tests of pages and endpoints run
as an authorised user; tests/test_security.py covers everyone else.
"""
import time
from functools import lru_cache

import pytest
from werkzeug.security import generate_password_hash

from atm_web import aio, create_app, staff

PASSWORD = "correct horse battery"


@lru_cache(maxsize=None)
def password_hash(password: str = PASSWORD) -> str:
    return generate_password_hash(password)  # werkzeug's default (scrypt), computed once per run


class Clock:
    """A clock tests can move: app.config['CLOCK']."""

    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now

    def advance(self, seconds: float):
        self.now += seconds


def make_app(db_path, **overrides):
    config = {"DB_PATH": str(db_path), "SECRET_KEY": "test-secret", "TESTING": True,
              "WTF_CSRF_ENABLED": False, **overrides}
    return create_app(config)


def close_app(app):
    aio.run(app.extensions["atm_db"].close())


def add_teller(app, username, role="teller"):
    return aio.run(staff.create_teller(app.extensions["atm_db"], username, password_hash(), role, "test",
                                       app.config["CLOCK"]()))


def log_in(app, client, teller):
    session_id = aio.run(staff.start_session(app.extensions["atm_db"], teller.id, app.config["CLOCK"]()))
    with client.session_transaction() as session:
        session["sid"] = session_id
    return client


def add_token(app, name="test-script", read_only=False, admin=False):
    return aio.run(staff.create_token(app.extensions["atm_db"], name, read_only, "test", app.config["CLOCK"](),
                                      admin))[1]


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "atm.db"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def app(db_path, clock):
    app = make_app(db_path, CLOCK=clock)
    yield app
    close_app(app)


@pytest.fixture
def client(app):
    client = log_in(app, app.test_client(), add_teller(app, "tina"))
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app)}"
    return client


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    return app.extensions["atm_db"]


@pytest.fixture
def run():
    """Run a coroutine on the process loop, where the app's connections live."""
    return aio.run
