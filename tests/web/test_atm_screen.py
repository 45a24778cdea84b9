"""The ATM screen (web/atm_screen_pages.py, atm_device_api.py, cash/atm_screens.py): pairing by a one-time link, the
device cookie (only at /atm, staff sessions mean nothing there), a customer's whole session through the pages (card,
PIN, balance, fast cash, the card then the cash, the receipt), first use with the PIN-setting code, three wrong PINs,
forms sent twice, the idle timeout and cash not taken, the card attempts limit, the device interface; both
engines."""
import re

from atm_web.cash import atm_screens, atms
from atm_web.cash.replenishment import Count
from atm_web.customers import cards
from atm_web.ledger import verification

from conftest import load_atm, log_in

PIN = "2468"


def pair_kiosk(app, atm_bank, run, clock):
    """A kiosk browser paired with the ATM through the admin's link: its test client."""
    admin = log_in(app, app.test_client(), atm_bank["ada"])
    page = admin.post(f"/admin/atms/{atm_bank['atm'].id}/pair").get_data(as_text=True)
    link = re.search(r"http://localhost(/atm/pair/[\w-]+)", page).group(1)
    kiosk = app.test_client()
    assert "Pair this screen with ATM 1 (Lobby)?" in kiosk.get(link).get_data(as_text=True)
    paired = kiosk.post(link)
    assert paired.status_code == 303
    cookie = paired.headers["Set-Cookie"]
    assert cookie.startswith("atm_device=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    return kiosk, link


def session_token(page: str) -> str:
    return re.search(r'name="session" value="([^"]+)"', page).group(1)


def screen(kiosk) -> str:
    answer = kiosk.get("/atm/")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    return answer.get_data(as_text=True)


def post(kiosk, path, **fields):
    page = screen(kiosk)
    answer = kiosk.post(path, data={"session": session_token(page), **fields})
    assert answer.status_code == 303
    return screen(kiosk)


def with_pin(atm_bank, db, run, clock):
    assert run(cards.set_first_pin(db, atm_bank["number"], atm_bank["code"], PIN, clock())).accepted


def card_and_pin(kiosk, atm_bank, pin=PIN):
    kiosk.post("/atm/start")
    assert "Insert your card" in screen(kiosk)
    assert "Enter your PIN" in post(kiosk, "/atm/card", card_number=atm_bank["number"])
    return post(kiosk, "/atm/pin", pin=pin)


def test_a_browser_that_is_not_paired_is_not_an_atm_and_staff_sessions_do_not_make_it_one(app, atm_bank, client):
    for who in (app.test_client(), client):  # nobody, and a teller logged in
        answer = who.get("/atm/")
        page = answer.get_data(as_text=True)
        assert answer.status_code == 403 and "This screen is not an ATM" in page
        assert "<form" not in page and "<a " not in page


def test_a_screen_is_paired_by_a_one_time_link_and_unpaired_for_good(app, atm_bank, db, run, raw, clock):
    kiosk, link = pair_kiosk(app, atm_bank, run, clock)
    assert "Welcome" in screen(kiosk)
    assert app.test_client().post(link).status_code == 404  # used: a second browser gets nothing
    assert "/login" in kiosk.get("/teller/drawer/").location  # the device cookie opens nothing else
    stored = str(raw.rows("SELECT * FROM atm_screens"))
    cookie = kiosk.get_cookie("atm_device").value
    assert cookie.split(".")[1] not in stored and link.rsplit("/", 1)[1] not in stored
    admin = log_in(app, app.test_client(), atm_bank["ada"])
    assert admin.post("/admin/atms/1/screens/1/unpair").status_code == 303
    assert kiosk.get("/atm/").status_code == 403
    assert raw.rows("SELECT action FROM audit_log WHERE action LIKE 'atm screen%' ORDER BY id") == [
        ("atm screen paired",), ("atm screen unpaired",)]


def test_over_https_the_device_cookie_is_a_secure_host_cookie(app, atm_bank, db, run, clock):
    code = run(atm_screens.pairing_link(db, atm_bank["atm"].id, atm_bank["ada"], clock()))
    kiosk = app.test_client()
    paired = kiosk.post(f"/atm/pair/{code}", base_url="https://localhost")
    cookie = paired.headers["Set-Cookie"]
    assert cookie.startswith("__Host-atm_device=") and "Secure" in cookie and "HttpOnly" in cookie
    assert "Path=/" in cookie and "Domain=" not in cookie
    assert kiosk.get("/atm/", base_url="https://localhost").status_code == 200
    assert kiosk.get("/atm/").status_code == 403  # the plain-HTTP name means nothing: no downgrade


def test_a_pairing_link_expires(app, atm_bank, db, run, clock):
    code = run(atm_screens.pairing_link(db, atm_bank["atm"].id, atm_bank["ada"], clock()))
    clock.advance(atm_screens.PAIRING_SECONDS + 1)
    assert app.test_client().post(f"/atm/pair/{code}").status_code == 404


def test_a_customers_whole_session_card_pin_balance_fast_cash_the_card_then_the_cash(app, atm_bank, db, run, raw,
                                                                                     clock):
    with_pin(atm_bank, db, run, clock)
    kiosk, _ = pair_kiosk(app, atm_bank, run, clock)
    menu = card_and_pin(kiosk, atm_bank)
    assert "What would you like to do?" in menu and atm_bank["number"] not in menu
    balance = post(kiosk, "/atm/go/balance")
    assert re.search(r"Available</dt><dd>3,000\.00</dd>\s*<dt>Balance</dt><dd>2,000\.00", balance)  # MAX_DEBT 1,000
    post(kiosk, "/atm/go/menu")
    cash = post(kiosk, "/atm/go/withdraw")
    assert re.findall(r'name="amount" value="([\d.]+)"', cash) == [
        "20.00", "40.00", "60.00", "100.00", "200.00"]
    assert "Take your card" in post(kiosk, "/atm/withdraw", amount="60.00")
    assert raw.rows("SELECT balance_cents, held_cents FROM accounts WHERE account_number = 'C1'") == [(200000, 6000)]
    assert "Take your cash" in post(kiosk, "/atm/card-taken")
    receipt = post(kiosk, "/atm/cash-taken")
    assert "Would you like a receipt?" in receipt
    for text in ("Lobby", "Card •••• " + atm_bank["number"][-4:], "Withdrawal 60.00", "Available 2,940.00", "Trace "):
        assert text in receipt
    assert "Welcome" in post(kiosk, "/atm/done")
    assert raw.rows("SELECT balance_cents, held_cents FROM accounts WHERE account_number = 'C1'") == [(194000, 0)]
    assert [(c.notes, c.reserved) for c in run(atms.get_atm(db, 1)).cassettes] == [(100, 0), (97, 0)]
    events = [e for e, in raw.rows("SELECT event FROM atm_journal WHERE atm_id = 1 ORDER BY seq")]
    assert events[-4:] == ["cash held", "cash presented", "cash dispensed", "session ended"]
    journal = raw.rows("SELECT event, detail FROM atm_journal WHERE atm_id = 1 ORDER BY seq")
    last4 = atm_bank["number"][-4:]
    assert ("card read", f"screen 1: •••• {last4}") in journal
    assert ("PIN accepted", f"screen 1: •••• {last4}") in journal
    assert atm_bank["number"] not in str(journal)
    assert run(verification.verify(db))[0] == []


def test_fast_cash_offers_only_the_amounts_the_cassettes_can_pay(app, atm_bank, db, run, raw, clock):
    with_pin(atm_bank, db, run, clock)
    load_atm(db, run, atm_bank["atm"], atm_bank["ada"], atm_bank["sam"], clock, Count({1: 100, 2: 100}), {1: 100})
    assert [c.notes for c in run(atms.get_atm(db, 1)).cassettes] == [100, 0]  # the 20s out
    kiosk, _ = pair_kiosk(app, atm_bank, run, clock)
    card_and_pin(kiosk, atm_bank)
    cash = post(kiosk, "/atm/go/withdraw")
    assert re.findall(r'name="amount" value="([\d.]+)"', cash) == ["100.00", "200.00"]  # not 20, 40, 60
    refused = post(kiosk, "/atm/withdraw", amount="60.00")
    assert "This ATM cannot pay 60.00. It can pay 50.00 or 100.00." in refused
    assert raw.scalar("SELECT COUNT(*) FROM holds") == 0


def test_a_form_sent_twice_never_pays_twice(app, atm_bank, db, run, raw, clock):
    with_pin(atm_bank, db, run, clock)
    kiosk, _ = pair_kiosk(app, atm_bank, run, clock)
    card_and_pin(kiosk, atm_bank)
    page = post(kiosk, "/atm/go/withdraw")
    token = session_token(page)
    for _ in range(3):  # a double tap, then Back and resubmit: the same form
        assert kiosk.post("/atm/withdraw", data={"session": token, "amount": "40.00"}).status_code == 303
    assert raw.rows("SELECT COUNT(*), sum(amount_cents) FROM holds") == [(1, 4000)]
    assert "Take your card" in screen(kiosk)


def test_first_use_sets_the_pin_with_the_code(app, atm_bank, db, run, raw, clock):
    kiosk, _ = pair_kiosk(app, atm_bank, run, clock)
    kiosk.post("/atm/start")
    page = post(kiosk, "/atm/card", card_number=atm_bank["number"])
    assert "Choose your PIN" in page
    page = post(kiosk, "/atm/first-pin", code=atm_bank["code"], new_pin="1357", again="7531")
    assert "The two new PINs differ" in page
    assert "What would you like to do?" in post(kiosk, "/atm/first-pin", code=atm_bank["code"], new_pin="1357",
                                                again="1357")
    assert run(cards.check_pin(db, atm_bank["number"], "1357", clock())).accepted


def test_unknown_cards_and_wrong_pins_answer_alike_and_the_third_keeps_the_card(app, atm_bank, db, run, raw, clock):
    with_pin(atm_bank, db, run, clock)
    kiosk, _ = pair_kiosk(app, atm_bank, run, clock)
    kiosk.post("/atm/start")
    post(kiosk, "/atm/card", card_number="4000000000000002")  # no such card: the same PIN screen
    assert "Card or PIN not accepted." in post(kiosk, "/atm/pin", pin="1111")
    for attempt in range(3):
        page = card_and_pin(kiosk, atm_bank, pin="9753")
        assert ("Your card has been kept. Please contact your branch." if attempt == 2
                else "Card or PIN not accepted.") in page
        assert "Welcome" in page
    assert run(cards.get_card(db, atm_bank["card"].id)).status == "blocked"
    assert "Card or PIN not accepted." in card_and_pin(kiosk, atm_bank)  # kept: the right PIN no longer opens it


def test_an_idle_session_ends_and_back_shows_no_balance(app, atm_bank, db, run, raw, clock):
    with_pin(atm_bank, db, run, clock)
    kiosk, _ = pair_kiosk(app, atm_bank, run, clock)
    card_and_pin(kiosk, atm_bank)
    balance = post(kiosk, "/atm/go/balance")
    token = session_token(balance)
    clock.advance(31)
    page = screen(kiosk)
    assert "Welcome" in page and "2,000.00" not in page
    assert kiosk.post("/atm/go/menu", data={"session": token}).status_code == 303  # an old page's form
    assert "Welcome" in screen(kiosk)
    assert raw.rows("SELECT event FROM atm_journal ORDER BY seq DESC LIMIT 1") == [("session timed out",)]


def test_cash_not_taken_in_time_is_retracted_and_nothing_is_posted(app, atm_bank, db, run, raw, clock):
    with_pin(atm_bank, db, run, clock)
    kiosk, _ = pair_kiosk(app, atm_bank, run, clock)
    card_and_pin(kiosk, atm_bank)
    post(kiosk, "/atm/go/withdraw")
    post(kiosk, "/atm/withdraw", amount="100")
    post(kiosk, "/atm/card-taken")
    clock.advance(31)
    assert "Welcome" in screen(kiosk)
    assert raw.rows("SELECT status FROM atm_withdrawals") == [("retracted",)]
    assert raw.rows("SELECT balance_cents, held_cents FROM accounts WHERE account_number = 'C1'") == [(200000, 0)]
    assert [(c.notes, c.reserved) for c in run(atms.get_atm(db, 1)).cassettes] == [(98, 0), (100, 0)]


def test_at_most_ten_card_attempts_a_minute_at_an_atm_whichever_screen(app, atm_bank, db, run, raw, clock):
    kiosk, _ = pair_kiosk(app, atm_bank, run, clock)
    other, _ = pair_kiosk(app, atm_bank, run, clock)  # a second screen of the same ATM
    for _ in range(10):
        kiosk, other = other, kiosk  # five attempts at each
        kiosk.post("/atm/start")
        post(kiosk, "/atm/card", card_number="4000000000000002")
        post(kiosk, "/atm/cancel")
    kiosk.post("/atm/start")
    assert "cannot take a card now" in post(kiosk, "/atm/card", card_number=atm_bank["number"])
    clock.advance(61)
    kiosk.post("/atm/start")
    assert "Choose your PIN" in post(kiosk, "/atm/card", card_number=atm_bank["number"])  # a new card


def test_the_device_interface_reports_by_trace_once_with_its_own_credential(app, atm_bank, db, run, raw, clock):
    from atm_web.cash import atm_withdrawals
    code = run(atm_screens.pairing_link(db, atm_bank["atm"].id, atm_bank["ada"], clock()))
    agent = app.test_client()
    answer = agent.post("/atm/device/pair", json={"code": code})
    assert answer.status_code == 201
    credential = answer.get_json()["credential"]
    w = run(atm_withdrawals.withdraw(db, 1, atm_bank["card"].id, "C1", 11000, "atm:1", now=clock()))
    path = f"/atm/device/withdrawals/{w.trace}/partial"
    assert agent.post(path, json={"paid_notes": {"1": 1}}).status_code == 401  # no credential
    assert agent.post(path, json={"paid_notes": {"1": 1}}, headers={"Authorization": "Bearer x"}).status_code == 401
    headers = {"Authorization": f"Device {credential}"}
    first = agent.post(path, json={"paid_notes": {"1": 1}}, headers=headers)
    again = agent.post(path, json={"paid_notes": {"1": 1}}, headers=headers)
    assert first.get_json() == {"trace": w.trace, "status": "partial", "amount": 110, "paid": 50, "replayed": False}
    assert again.get_json()["replayed"] is True
    assert raw.rows("SELECT balance_cents FROM accounts WHERE account_number = 'C1'") == [(195000,)]
    assert agent.post(f"/atm/device/withdrawals/{w.trace}/taken", headers=headers).status_code == 422


def test_the_device_interface_reads_its_bodies_as_the_api_does(app, atm_bank, db, run, raw, clock):
    """One reader for every JSON body: a control character, a duplicate key, a body that is not JSON or not an
    object, or sent without its Content-Type, is a 422 naming the problem; nothing is paired or reported."""
    from atm_web.cash import atm_withdrawals
    code = run(atm_screens.pairing_link(db, atm_bank["atm"].id, atm_bank["ada"], clock()))
    agent = app.test_client()
    json_type = {"Content-Type": "application/json"}
    for body, headers, says in (
            (f'{{"code": "{code}\\u0000"}}', json_type, "control character"),
            (f'{{"code": "x", "code": "{code}"}}', json_type, "duplicate key 'code'"),
            ('["x"]', json_type, "must be a JSON object"), ("{", json_type, "not valid JSON"),
            (f'{{"code": "{code}"}}', {}, "Content-Type must be application/json")):
        answer = agent.post("/atm/device/pair", data=body, headers=headers)
        assert answer.status_code == 422 and says in answer.get_json()["detail"], (body, answer.get_data())
    assert raw.scalar("SELECT COUNT(*) FROM atm_screens WHERE paired_at IS NOT NULL") == 0
    for method, path, status in (("POST", "/atm/device/nope", 404), ("GET", "/atm/device/pair", 405)):
        answer = agent.open(path, method=method)  # errors no view saw: JSON here too
        assert answer.status_code == status and answer.is_json, (path, answer.get_data())
    credential = agent.post("/atm/device/pair", json={"code": code}).get_json()["credential"]
    w = run(atm_withdrawals.withdraw(db, 1, atm_bank["card"].id, "C1", 11000, "atm:1", now=clock()))
    path, device = f"/atm/device/withdrawals/{w.trace}/partial", {"Authorization": f"Device {credential}"}
    for body in ('{"paid_notes": {"1\\u0001": 1}}', '{"paid_notes": {"1": 1}, "paid_notes": {"1": 2}}',
                 '{"paid_notes": {"1": true}}', '{"paid_notes": {"1": 1.5}}'):
        assert agent.post(path, data=body, headers={**device, **json_type}).status_code == 422, body
    assert raw.rows("SELECT status FROM atm_withdrawals") == [("pending",)]


def test_cancel_before_the_cash_voids_the_hold_and_more_time_keeps_the_session(app, atm_bank, db, run, raw, clock):
    with_pin(atm_bank, db, run, clock)
    kiosk, _ = pair_kiosk(app, atm_bank, run, clock)
    card_and_pin(kiosk, atm_bank)
    clock.advance(25)
    post(kiosk, "/atm/more-time")
    clock.advance(25)  # 50 s since the PIN, 25 since More time: still in session
    post(kiosk, "/atm/go/withdraw")
    assert "Take your card" in post(kiosk, "/atm/withdraw", amount="40")
    assert "Welcome" in post(kiosk, "/atm/cancel")
    assert raw.rows("SELECT status FROM atm_withdrawals") == [("failed",)]
    assert raw.rows("SELECT status FROM holds") == [("voided",)]
    assert [(c.notes, c.reserved) for c in run(atms.get_atm(db, 1)).cassettes] == [(100, 0), (100, 0)]


def test_each_step_rotates_the_sessions_token_so_an_old_pages_form_does_nothing(app, atm_bank, db, run, clock):
    with_pin(atm_bank, db, run, clock)
    kiosk, _ = pair_kiosk(app, atm_bank, run, clock)
    menu = card_and_pin(kiosk, atm_bank)
    old = session_token(menu)
    post(kiosk, "/atm/go/balance")
    assert kiosk.post("/atm/go/withdraw", data={"session": old}).status_code == 303  # Back, then the menu's form
    page = screen(kiosk)
    assert "Your balance" in page and session_token(page) != old


def test_another_account_deposit_mini_statement_transfer_and_change_pin(app, atm_bank, db, run, raw, clock):
    with_pin(atm_bank, db, run, clock)
    kiosk, _ = pair_kiosk(app, atm_bank, run, clock)
    menu = card_and_pin(kiosk, atm_bank)
    for label in ("Balance", "Deposit", "Mini-statement", "Transfer", "Change PIN", "Another account", "End"):
        assert f">{label}</button>" in menu
    post(kiosk, "/atm/go/accounts")
    assert "account C2" in post(kiosk, "/atm/account", account="C2")
    assert "account C2" in post(kiosk, "/atm/account", account="OTHER")  # not the card's: nothing changes
    post(kiosk, "/atm/go/deposit")
    page = post(kiosk, "/atm/deposit", notes_5000="2", notes_2000="1")
    assert "Deposited 120.00" in page and "Balance: 620.00" in page
    assert run(atms.get_atm(db, 1)).cash_cents == 712000  # the deposit bin's 120.00 with the cassettes' 7,000.00
    post(kiosk, "/atm/go/transfer")
    assert "Transferred 20.00 from C2 to C1" in post(kiosk, "/atm/transfer", to="C1", amount="20")
    statement = post(kiosk, "/atm/go/statement")
    assert re.findall(r'<td class="num">([\d,.]+)</td><td class="num">([\d,.]+)</td>', statement)[:3] == [
        ("20.00", "600.00"), ("120.00", "620.00"), ("500.00", "500.00")]
    post(kiosk, "/atm/go/menu")
    post(kiosk, "/atm/go/change_pin")
    assert "differ" in post(kiosk, "/atm/change-pin", old_pin=PIN, new_pin="8642", again="8643")
    assert "Your PIN is changed." in post(kiosk, "/atm/change-pin", old_pin=PIN, new_pin="8642", again="8642")
    assert run(cards.check_pin(db, atm_bank["number"], "8642", clock())).accepted
    assert "Please take your card" in post(kiosk, "/atm/end") and "Welcome" in screen(kiosk)
    assert run(verification.verify(db))[0] == []


def test_with_a_devices_dispenser_the_screen_waits_for_its_agents_report(app, atm_bank, db, run, raw, clock):
    with_pin(atm_bank, db, run, clock)
    raw.execute("UPDATE atms SET dispenser = 'device' WHERE id = 1")
    code = run(atm_screens.pairing_link(db, 1, atm_bank["ada"], clock()))
    agent = app.test_client()
    credential = agent.post("/atm/device/pair", json={"code": code}).get_json()["credential"]
    kiosk, _ = pair_kiosk(app, atm_bank, run, clock)
    card_and_pin(kiosk, atm_bank)
    post(kiosk, "/atm/go/withdraw")
    post(kiosk, "/atm/withdraw", amount="110")
    page = post(kiosk, "/atm/card-taken")
    assert "Please take your cash from the dispenser." in page and "I have taken my cash" not in page
    assert '<meta http-equiv="refresh" content="2">' in page
    assert "Take your cash" in post(kiosk, "/atm/cash-taken")  # the screen does not report for a device
    assert raw.rows("SELECT status FROM atm_withdrawals") == [("pending",)]
    trace = raw.scalar("SELECT trace FROM atm_withdrawals")
    assert agent.post(f"/atm/device/withdrawals/{trace}/partial", json={"paid_notes": {"1": 1}},
                      headers={"Authorization": f"Device {credential}"}).status_code == 200
    receipt = screen(kiosk)
    assert "Would you like a receipt?" in receipt and "Withdrawal 50.00" in receipt
    assert raw.rows("SELECT balance_cents, held_cents FROM accounts WHERE account_number = 'C1'") == [(195000, 0)]
