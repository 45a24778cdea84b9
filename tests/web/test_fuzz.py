"""API fuzzing: schemathesis generates requests from /openapi.json and runs all its default checks against the
app in-process, with a valid admin-scope token given through the document's bearer scheme (so its negative
cases without a token are real): no 5xx, responses match the schema, bad input rejected.

One check is configured: "schema-valid request accepted" also counts 400 and 422 as correct answers, for
the refusals JSON Schema cannot express (insufficient funds, a transfer to the same or from an unknown
account, a reversal of a reversal, a limit below the debt). Every other check runs as shipped.
The apps are made at import (schemathesis's fixture loader does not run under this pytest): one on a temp
SQLite file, one on a new PostgreSQL database when the server is reachable (else its test skips, or fails in CI).
"""
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from conftest import (
    add_token,
    close_app,
    drop_postgres_database,
    make_app,
    new_postgres_database,
    postgres_problem,
    require_postgres,
)

pytestmark = pytest.mark.slow  # generated requests by the hundred: make test, not make check

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))


def fuzzed(where):
    """The schema of an app on `where`, with an admin token for the document's bearer scheme."""
    app = make_app(where)
    atexit.register(close_app, app)
    config = SchemathesisConfig.from_dict({
        "auth": {"openapi": {"bearer": {"bearer": add_token(app, "fuzz", admin=True)}}},
        "checks": {"positive_data_acceptance": {"expected-statuses": [
            "2xx", "400", "401", "403", "404", "409", "422", "429"]}},
    })
    return schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)


_dir = tempfile.mkdtemp(prefix="atm-fuzz-")
atexit.register(shutil.rmtree, _dir, ignore_errors=True)
sqlite_schema = fuzzed(Path(_dir) / "atm.db")
if postgres_problem() is None:
    _url = new_postgres_database()
    atexit.register(drop_postgres_database, _url)  # registered first, so it runs after the app has closed
    postgres_schema = fuzzed(_url)
else:
    postgres_schema = sqlite_schema  # its test skips (or fails in CI) before running a case


@sqlite_schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_holds_its_contract_on_sqlite(case):
    case.call_and_validate()


@postgres_schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_holds_its_contract_on_postgresql(case):
    require_postgres()
    case.call_and_validate()
