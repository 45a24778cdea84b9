"""Wrong PINs at once from several processes (two workers of one server; on PostgreSQL, two servers' worth): the
count of wrong PINs lives in the database, so however many tries arrive at once, at most three reach the check."""
import json
import subprocess
import sys
import time

from atm_web.customers import cards, holders
from atm_web.customers.records import DETAIL_FIELDS, Details
from atm_web.serving import aio
from atm_web.staff.tellers import Teller

from conftest import ROOT, add_token, bearer, close_app, holder_fields, make_app

HERE = "tests/e2e/pin_burst.py"


def test_twenty_wrong_pins_at_once_from_two_processes_check_at_most_three(database, raw, clock):
    app = make_app(database, CLOCK=clock, PIN_KEY="e2e-pin-key-0123456789")
    db = app.extensions["atm_db"]
    try:
        assert app.test_client().post("/accounts/C1/deposit", json={"amount": 10},
                                      headers=bearer(add_token(app))).status_code == 200
        fields = holder_fields(document_number="E2E1")
        holly = aio.run(holders.link_holder(db, "C1", None, Details(**{name: fields[name] for name in DETAIL_FIELDS}),
                                            "test", clock()))
        issued = aio.run(cards.issue_card(db, holly.id, ["C1"], "C1", Teller(1, "tina", "teller", True, ""), clock()))
        assert aio.run(cards.set_first_pin(db, issued.number, issued.code, "1357", clock())).accepted
    finally:
        close_app(app)
    start_at = time.time() + 3  # both processes started and connected by then
    runs = [subprocess.Popen([sys.executable, HERE, str(database), issued.number, "10", str(start_at)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    answers = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err[-2000:]
        answers.append(json.loads(out.strip().splitlines()[-1]))
    outcomes = [o for answer in answers for o in answer["outcomes"]]
    assert sum(answer["checked"] for answer in answers) <= 3, answers
    assert outcomes.count("kept") == 1 and outcomes.count("refused") == 19, answers
    assert raw.rows("SELECT status, pin_tries FROM cards") == [("blocked", 3)]
    assert issued.number not in "".join(json.dumps(a) for a in answers)
