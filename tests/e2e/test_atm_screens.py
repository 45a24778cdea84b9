"""The ATM screen over HTTP, on real servers (two workers; on PostgreSQL, two servers): twenty paired screens, ten at
each of two ATMs, the same card at all of them: twenty withdrawals at once never pass the card's daily limit or the
cassettes' notes, and every one ends exactly once; twenty wrong PINs at once check at most three; a dispenser's
report sent at once through both servers posts once."""
import re
import urllib.parse

import pytest

from atm_web.cash import atm_screens, atm_withdrawals, atms, end_of_day
from atm_web.customers import cards
from atm_web.ledger import verification
from atm_web.serving import aio

from .server import Server, burst
from conftest import close_app, make_app

SCREENS = 20
PIN = "2468"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SESSION = re.compile(r'name="session" value="([^"]+)"')


class Kiosk:
    """A paired browser at a server: its cookies (the device cookie, Flask's for CSRF), its forms' tokens."""

    def __init__(self, server, device_cookie: str):
        self.server, self.jar = server, {"atm_device": device_cookie}

    def _send(self, method, path, fields=None):
        conn = self.server.connection(timeout=60)
        try:
            headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.jar.items())}
            body = None
            if fields is not None:
                body = urllib.parse.urlencode(fields)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=headers)
            answer = conn.getresponse()
            text = answer.read().decode()
            for header in answer.headers.get_all("Set-Cookie") or []:
                name, _, value = header.split(";")[0].partition("=")
                self.jar[name.strip()] = value
            return answer.status, text
        finally:
            conn.close()

    def page(self) -> str:
        status, text = self._send("GET", "/atm/")
        assert status == 200, (status, text[:300])
        return text

    def post(self, path, **fields) -> int:
        page = self.page()
        session = SESSION.search(page)
        data = {"csrf_token": CSRF.search(page).group(1), **fields}
        if session:
            data["session"] = session.group(1)
        return self._send("POST", path, data)[0]


@pytest.fixture
def atm_world(database, clock, tmp_path):
    """The atm_bank world (conftest) built in-process, then twenty screens paired (ten at each of two ATMs) and an
    agent's credential; the servers to reach them."""
    app = make_app(database, CLOCK=clock, PIN_KEY="e2e-pin-key-0123456789")
    db = app.extensions["atm_db"]
    try:
        from atm_web.cash import vault
        from atm_web.cash.replenishment import Count
        from atm_web.customers import holders
        from atm_web.customers.records import DETAIL_FIELDS, Details
        from atm_web.ledger import accounts

        from conftest import add_teller, holder_fields, load_atm
        aio.run(accounts.deposit(db, "C1", 300_000, "test"))
        fields = holder_fields(document_number="E2E2")
        holly = aio.run(holders.link_holder(db, "C1", None, Details(**{n: fields[n] for n in DETAIL_FIELDS}), "test",
                                            clock()))
        ada, sam = add_teller(app, "ada", "admin"), add_teller(app, "sam", "supervisor")
        issued = aio.run(cards.issue_card(db, holly.id, ["C1"], "C1", ada, clock()))
        assert aio.run(cards.set_first_pin(db, issued.number, issued.code, PIN, clock())).accepted
        aio.run(vault.ship_cash(db, "in", 2_000_000, "CIT 1", ada))
        machines = [aio.run(atms.register_atm(db, name, "Hall", [5000, 2000], ada, clock())) for name in ("A", "B")]
        for atm in machines:
            load_atm(db, aio.run, atm, ada, sam, clock, Count({1: 0, 2: 0}, {}, {}), {1: 10, 2: 10})
        cookies = []
        for n in range(SCREENS):
            code = aio.run(atm_screens.pairing_link(db, machines[n % 2].id, ada, clock()))
            cookies.append(aio.run(atm_screens.pair(db, code, clock()))[1])
        agent_code = aio.run(atm_screens.pairing_link(db, machines[0].id, ada, clock()))
        agent = aio.run(atm_screens.pair(db, agent_code, clock()))[1]
    finally:
        close_app(app)
    two = str(database).startswith("postgresql://")
    with Server(database, workers=2, log_path=tmp_path / "a.log") as first:
        if two:
            with Server(database, workers=2, log_path=tmp_path / "b.log") as second:
                yield (first, second), issued, cookies, agent
        else:
            yield (first, first), issued, cookies, agent


def kiosks_at_the_pin(servers, issued, cookies):
    kiosks = [Kiosk(servers[n % 2], cookie) for n, cookie in enumerate(cookies)]
    for kiosk in kiosks:
        assert kiosk.post("/atm/start") == 303
        assert kiosk.post("/atm/card", card_number=issued.number) == 303
        assert "Enter your PIN" in kiosk.page()
    return kiosks


def test_twenty_withdrawals_at_once_on_one_card_at_two_atms_never_pass_the_limit(atm_world, database, raw, clock):
    servers, issued, cookies, _ = atm_world
    kiosks = kiosks_at_the_pin(servers, issued, cookies)
    for kiosk in kiosks:
        assert kiosk.post("/atm/pin", pin=PIN) == 303
        assert kiosk.post("/atm/go/withdraw") == 303
    pages = [kiosk.page() for kiosk in kiosks]  # each screen's withdraw form, posted at once

    def withdraw(n):
        kiosk, page = kiosks[n], pages[n]
        return kiosk._send("POST", "/atm/withdraw", {"csrf_token": CSRF.search(page).group(1), "amount": "200",
                                                     "session": SESSION.search(page).group(1)})[0]

    assert burst(SCREENS, withdraw) == [303] * SCREENS
    held = [k for k in kiosks if "Take your card" in k.page()]
    assert len(held) == 5  # 1,000.00 a day: five of 200.00
    assert raw.rows("SELECT COUNT(*), sum(amount_cents) FROM atm_withdrawals WHERE status = 'pending'") == [
        (5, 100_000)]
    assert raw.scalar("SELECT min(notes - reserved) FROM atm_cassettes") >= 0
    for kiosk in held:
        assert kiosk.post("/atm/card-taken") == 303 and kiosk.post("/atm/cash-taken") == 303
        assert kiosk.post("/atm/done") == 303
    assert raw.rows("SELECT status, COUNT(*) FROM atm_withdrawals GROUP BY status") == [("dispensed", 5)]
    assert raw.rows("SELECT balance_cents, held_cents FROM accounts WHERE account_number = 'C1'") == [(200_000, 0)]
    assert raw.scalar("SELECT min(notes) FROM atm_cassettes") >= 0 and raw.scalar(
        "SELECT max(reserved) FROM atm_cassettes") == 0
    app = make_app(database, CLOCK=clock, PIN_KEY="e2e-pin-key-0123456789")
    try:
        db = app.extensions["atm_db"]
        assert aio.run(verification.verify(db))[0] == []
        day = aio.run(end_of_day.report(db, aio.run(end_of_day.current_business_date(db))))
        assert day.cash_agrees and day.balanced  # the vault, the drawers and the ATMs equal the cash accounts
    finally:
        close_app(app)


def test_twenty_wrong_pins_at_once_at_twenty_screens_check_at_most_three(atm_world, raw):
    servers, issued, cookies, _ = atm_world
    kiosks = kiosks_at_the_pin(servers, issued, cookies)
    pages = [kiosk.page() for kiosk in kiosks]

    def wrong(n):
        return kiosks[n]._send("POST", "/atm/pin", {"csrf_token": CSRF.search(pages[n]).group(1), "pin": "9753",
                                                    "session": SESSION.search(pages[n]).group(1)})[0]

    assert burst(SCREENS, wrong) == [303] * SCREENS
    answers = [kiosk.page() for kiosk in kiosks]
    kept = sum("Your card has been kept" in page for page in answers)
    refused = sum("Card or PIN not accepted." in page for page in answers)
    assert (kept, refused) == (1, SCREENS - 1)
    assert raw.rows("SELECT status, pin_tries FROM cards") == [("blocked", 3)]


def test_a_dispensers_report_sent_at_once_through_both_servers_posts_once(atm_world, database, raw, clock):
    servers, _, _, agent = atm_world
    app = make_app(database, CLOCK=clock, PIN_KEY="e2e-pin-key-0123456789")
    try:
        w = aio.run(atm_withdrawals.withdraw(app.extensions["atm_db"], 1, 1, "C1", 11000, "atm:1", now=clock()))
    finally:
        close_app(app)
    headers = {"Authorization": f"Device {agent}"}
    answers = burst(12, lambda n: servers[n % 2].request(
        "POST", f"/atm/device/withdrawals/{w.trace}/partial", {"paid_notes": {"1": 1}}, headers=headers))
    assert {status for status, _ in answers} == {200}, answers
    assert sum(not body["replayed"] for _, body in answers) == 1
    assert raw.scalar("SELECT COUNT(*) FROM journal WHERE memo = ?", (f"hold {w.hold_id}",)) == 1
    assert raw.rows("SELECT status, paid_cents FROM atm_withdrawals") == [("partial", 5000)]
