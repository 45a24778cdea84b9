"""API fuzzing: schemathesis generates requests from /openapi.json and runs all its default checks against the
app in-process, with a valid admin-scope token given through the document's bearer scheme (so its negative
cases without a token are real): no 5xx, responses match the schema, bad input rejected.

One check is configured: "schema-valid request accepted" also counts 400 and 422 as correct answers, for
the refusals JSON Schema cannot express (insufficient funds, a transfer to the same or from an unknown
account, a reversal of a reversal, a limit below the debt). Every other check runs as shipped.
The app is made at import (schemathesis's fixture loader does not run under this pytest), on a temp file.
"""
import atexit
import os
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from conftest import add_token, close_app, make_app

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
_dir = tempfile.mkdtemp(prefix="atm-fuzz-")
app = make_app(Path(_dir) / "atm.db")
TOKEN = add_token(app, "fuzz", admin=True)
atexit.register(lambda: (close_app(app), shutil.rmtree(_dir, ignore_errors=True)))
config = SchemathesisConfig.from_dict({
    "auth": {"openapi": {"bearer": {"bearer": TOKEN}}},
    "checks": {"positive_data_acceptance": {"expected-statuses": [
        "2xx", "400", "401", "403", "404", "409", "422", "429"]}},
})
schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_holds_its_contract(case):
    case.call_and_validate()
