"""Every test here starts real server processes on 127.0.0.1: marked e2e, so `make check` leaves them out."""
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.e2e)
