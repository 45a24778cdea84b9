"""Every test here starts real server processes on 127.0.0.1: marked e2e, so `make check` leaves them out."""
from pathlib import Path

import pytest

from .server import Server

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def two_servers(database, tmp_path):
    """Two app servers (the Procfile's command, 2 workers each) on one database, sharing one token."""
    with Server(database, workers=2, log_path=tmp_path / "a.log") as first, \
            Server(database, workers=2, log_path=tmp_path / "b.log") as second:
        second.token = first.token
        yield first, second
