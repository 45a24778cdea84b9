"""Fixtures: an app on a real SQLite file in tmp_path, its test client and CLI runner, and the ledger."""
import pytest

from atm_web import aio, create_app


def make_app(db_path, **overrides):
    config = {"DB_PATH": str(db_path), "SECRET_KEY": "test-secret", "TESTING": True,
              "WTF_CSRF_ENABLED": False, **overrides}
    return create_app(config)


def close_app(app):
    aio.run(app.extensions["atm_db"].close())


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "atm.db"


@pytest.fixture
def app(db_path):
    app = make_app(db_path)
    yield app
    close_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


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
