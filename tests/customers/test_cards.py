"""Cards (customers/cards.py, card_numbers.py, pins.py, customer_pages.py): issued by a teller for accounts the
customer holds, the number and PIN-setting code shown once and never stored, the PIN a keyed slow hash, three wrong
PINs in a row keep the card (however many arrive at once), a supervisor other than the asker unblocks, lost is
final; on both engines."""
import asyncio
import hashlib
import hmac
import logging
import re
import uuid

import pytest
from werkzeug.security import check_password_hash

from atm_web.customers import cards, pins
from atm_web.customers.card_numbers import card_number, is_luhn_valid, luhn_check_digit, new_number
from atm_web.customers.refusals import CardRefused

from conftest import add_teller, holder_fields, log_in

PIN_KEY = b"test-pin-key-0123456789"  # conftest.make_app's


def open_account(client, number, **fields):
    return client.post("/teller/transactions", data={"account_number": number, "amount": "10", "deposit": "Deposit",
                                                     "form_key": uuid.uuid4().hex, "confirm_open": "yes", **fields})


@pytest.fixture
def bank(app, client, raw):
    """tina (teller, `client`) with customer Holly holding C1 and C2; sam, a supervisor, logged in too."""
    assert open_account(client, "C1", **holder_fields("Holly Holder", document_number="HH1")).status_code == 303
    (customer_id,), = raw.rows("SELECT id FROM customers")
    assert open_account(client, "C2", holder=str(customer_id)).status_code == 303
    assert open_account(client, "OTHER", **holder_fields("Oscar Other", document_number="OO1")).status_code == 303
    sam = log_in(app, app.test_client(), add_teller(app, "sam", "supervisor"))
    return customer_id, sam


def issue(client, customer_id, accounts=("C1", "C2"), default="C1", form_key=None):
    return client.post(f"/teller/customers/{customer_id}/cards/new",
                       data={"accounts": list(accounts), "default": default, "form_key": form_key or uuid.uuid4().hex})


def issued_secrets(page: str) -> tuple[str, str]:
    number = re.search(r'class="card-number">(\d{4} \d{4} \d{4} \d{4})<', page).group(1).replace(" ", "")
    code = re.search(r'class="card-number">(\d{8})<', page).group(1)
    return number, code


def everything_stored(raw) -> str:
    """Every row of every table, as text: what a stolen copy of the database holds."""
    if raw.is_postgres:
        tables = [t for t, in raw.rows("SELECT table_name FROM information_schema.tables "
                                       "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")]
        return "\n".join(str(raw.rows(f"SELECT t::text FROM {table} t")) for table in tables)
    tables = [t for t, in raw.rows("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return "\n".join(str(raw.rows(f"SELECT * FROM \"{table}\"")) for table in tables)


# Numbers and PIN rules

def test_card_numbers_are_sixteen_luhn_valid_digits_under_the_prefix():
    assert luhn_check_digit("7992739871") == "3" and is_luhn_valid("79927398713")
    assert not is_luhn_valid("79927398710") and not is_luhn_valid("") and not is_luhn_valid("٣٣")
    numbers = {new_number("999999") for _ in range(200)}
    assert len(numbers) == 200
    assert all(len(n) == 16 and n.startswith("999999") and is_luhn_valid(n) for n in numbers)
    some = next(iter(numbers))
    assert card_number(f"{some[:4]} {some[4:8]}-{some[8:12]} {some[12:]}") == some
    assert card_number(some[:-1] + str((int(some[-1]) + 1) % 10)) is None  # one digit off: the check digit says so
    assert card_number(some[:15]) is None and card_number(None) is None and card_number("x" * 100) is None


@pytest.mark.parametrize("pin, ok", [("1357", True), ("130542", True), ("2580", True), ("123", False),
                                     ("1234567", False), ("1111", False), ("1234", False), ("9876", False),
                                     ("345678", False), ("12a4", False), ("١٣٥٧", False), ("", False), (None, False)])
def test_a_new_pin_is_4_to_6_digits_not_one_digit_repeated_nor_a_run(pin, ok):
    assert (pins.pin_problem(pin) is None) == ok


# Issuing

def test_a_teller_issues_a_card_and_sees_its_number_and_code_once_and_never_again(app, bank, client, raw, caplog):
    customer_id, _ = bank
    caplog.set_level(logging.DEBUG)
    form = client.get(f"/teller/customers/{customer_id}/cards/new").get_data(as_text=True)
    assert 'value="C1"' in form and 'value="C2"' in form and "OTHER" not in form
    key = uuid.uuid4().hex
    done = issue(client, customer_id, form_key=key)
    assert done.status_code == 201 and done.headers["Cache-Control"] == "no-store"
    page = done.get_data(as_text=True)
    number, code = issued_secrets(page)
    assert number.startswith("999999") and is_luhn_valid(number)
    assert raw.rows("SELECT last4, status, pin_hash, pin_tries FROM cards") == [(number[-4:], "active", None, 0)]
    assert raw.rows("SELECT account_number, is_default FROM card_accounts ORDER BY account_number") == [
        ("C1", 1), ("C2", 0)]
    again = issue(client, customer_id, form_key=key)  # the same form sent again: one card, nothing shown again
    assert again.status_code == 409 and "issued already" in again.get_data(as_text=True)
    assert number not in again.get_data(as_text=True) and raw.scalar("SELECT COUNT(*) FROM cards") == 1
    shown = client.get(f"/teller/customers/{customer_id}").get_data(as_text=True)
    assert f"•••• {number[-4:]}" in shown and "C1 (default), C2" in shown and "PIN not set yet" in shown
    assert number not in shown and code not in shown
    stored = everything_stored(raw)
    assert number not in stored and code not in stored and number[:12] not in stored
    assert number not in caplog.text and code not in caplog.text
    audit = raw.rows("SELECT actor, action, target, detail FROM audit_log WHERE action = 'card issued'")
    assert audit == [("teller:tina", "card issued", f"customer {customer_id}",
                      f"card •••• {number[-4:]} for C1, C2 (default C1)")]


@pytest.mark.parametrize("accounts, default, words", [
    ((), "C1", "Choose at least one account"), (("C1",), "", "Choose the default account"),
    (("C1",), "C2", "default account among"), (("C1", "OTHER"), "C1", "not a valid choice"),
    (("C1", "NOPE"), "C1", "not a valid choice")])
def test_a_card_is_only_for_accounts_its_customer_holds_with_one_of_them_the_default(bank, client, raw, accounts,
                                                                                       default, words):
    customer_id, _ = bank
    refused = issue(client, customer_id, accounts, default)
    assert refused.status_code in (409, 422) and words in refused.get_data(as_text=True)
    assert raw.scalar("SELECT COUNT(*) FROM cards") == 0
    assert issue(client, 9999, ("C1",), "C1").status_code == 404


def test_the_service_refuses_an_account_the_customer_does_not_hold(app, bank, db, run, raw):
    customer_id, _ = bank
    teller = type("T", (), {"actor": "teller:tina"})()
    with pytest.raises(CardRefused, match="does not hold account OTHER"):
        run(cards.issue_card(db, customer_id, ["C1", "OTHER"], "C1", teller, app.config["CLOCK"]()))
    assert raw.scalar("SELECT COUNT(*) FROM cards") == 0


# PINs

def new_card(app, db, run, customer_id, accounts=("C1",)):
    teller = type("T", (), {"actor": "teller:tina"})()
    issued = run(cards.issue_card(db, customer_id, list(accounts), accounts[0], teller, app.config["CLOCK"]()))
    return issued.number, issued.code


def test_the_first_pin_is_set_with_the_code_and_a_wrong_code_counts_as_a_wrong_pin(app, bank, db, run, raw):
    customer_id, _ = bank
    number, code = new_card(app, db, run, customer_id)
    at = app.config["CLOCK"]()
    assert run(cards.check_pin(db, number, "1357", at)).outcome == "refused"  # no PIN yet
    with pytest.raises(CardRefused, match="run of digits"):
        run(cards.set_first_pin(db, number, code, "1234", at))
    assert raw.scalar("SELECT pin_tries FROM cards") == 0  # a PIN refused by the rules is not an attempt
    wrong = "0" * 8 if code != "0" * 8 else "1" * 8
    assert run(cards.set_first_pin(db, number, wrong, "1357", at)).outcome == "refused"
    assert raw.scalar("SELECT pin_tries FROM cards") == 1
    assert run(cards.set_first_pin(db, number, code, "1357", at)).accepted
    assert raw.rows("SELECT pin_tries, code_digest FROM cards") == [(0, None)]
    assert run(cards.set_first_pin(db, number, code, "2468", at)).outcome == "refused"  # the code is used up
    assert run(cards.check_pin(db, number, "1357", at)).accepted


def test_three_wrong_pins_in_a_row_keep_the_card_and_a_right_one_resets_the_count(app, bank, db, run, raw):
    customer_id, _ = bank
    number, code = new_card(app, db, run, customer_id)
    at = app.config["CLOCK"]()
    assert run(cards.set_first_pin(db, number, code, "1357", at)).accepted
    outcomes = [run(cards.check_pin(db, number, pin, at)).outcome for pin in ("1111", "2222", "1357", "3333", "4444")]
    assert outcomes == ["refused", "refused", "accepted", "refused", "refused"]
    assert raw.rows("SELECT status, pin_tries FROM cards") == [("active", 2)]
    kept = run(cards.check_pin(db, number, "5555", at))
    assert kept.outcome == "kept" and kept.card.status == "blocked"
    assert run(cards.check_pin(db, number, "1357", at)).outcome == "refused"  # kept: even the right PIN
    assert raw.rows("SELECT actor, action, detail FROM audit_log WHERE action = 'card kept'") == [
        ("atm", "card kept", f"card •••• {number[-4:]}: 3 wrong PINs in a row")]
    # an unknown number, a number failing its check digit, nothing: the same answer
    other = new_number("999999")
    assert {run(cards.check_pin(db, n, "1357", at)).outcome for n in (other, number[:-1] + "x", "")} == {"refused"}


def test_twenty_wrong_pins_at_once_check_at_most_three(app, bank, db, run, raw, monkeypatch):
    customer_id, _ = bank
    number, code = new_card(app, db, run, customer_id)
    at = app.config["CLOCK"]()
    assert run(cards.set_first_pin(db, number, code, "1357", at)).accepted
    checked = []
    real, dummy = pins.pin_matches, cards._dummy_hash(PIN_KEY)

    def counted(key, pin_hash, pin):
        if pin_hash != dummy:
            checked.append(pin)
        return real(key, pin_hash, pin)
    monkeypatch.setattr(pins, "pin_matches", counted)

    async def burst():
        return await asyncio.gather(*(cards.check_pin(db, number, f"{2000 + i}", at) for i in range(20)))
    outcomes = [check.outcome for check in run(burst())]
    assert len(checked) <= 3 and outcomes.count("kept") == 1 and outcomes.count("accepted") == 0
    assert raw.rows("SELECT status, pin_tries FROM cards") == [("blocked", 3)]


def test_the_database_alone_cannot_verify_a_pin(app, bank, db, run, raw):
    customer_id, _ = bank
    number, code = new_card(app, db, run, customer_id)
    assert run(cards.set_first_pin(db, number, code, "1357", app.config["CLOCK"]())).accepted
    stored, digest = raw.rows("SELECT pin_hash, number_digest FROM cards")[0]
    assert stored.startswith("scrypt:")  # werkzeug's slow salted hash
    assert not check_password_hash(stored, "1357")  # the PIN as it is: no
    keyed = hmac.new(PIN_KEY, b"pin:1357", hashlib.sha256).hexdigest()
    assert check_password_hash(stored, keyed)  # only with PIN_KEY
    other_key = hmac.new(b"another-key-0123456789", b"pin:1357", hashlib.sha256).hexdigest()
    assert not check_password_hash(stored, other_key)
    assert digest != hashlib.sha256(number.encode()).hexdigest() and digest == pins.number_digest(PIN_KEY, number)


def test_an_expired_card_is_refused_like_a_wrong_pin(app, bank, db, run, clock):
    customer_id, _ = bank
    number, code = new_card(app, db, run, customer_id)
    assert run(cards.set_first_pin(db, number, code, "1357", clock())).accepted
    clock.advance(4 * 366 * 24 * 3600 + 31 * 24 * 3600)  # past CARD_YEARS (4) and the month
    assert run(cards.check_pin(db, number, "1357", clock())).outcome == "refused"
    (card,) = run(cards.cards_of(db, customer_id))
    assert card.status == "active" and card.status_on("9999-12-31") == "expired"


def test_every_refusal_does_the_same_slow_work_as_a_wrong_pin(app, bank, db, run, raw, clock, monkeypatch):
    """An unknown card, a blocked one, an expired one and a wrong PIN each cost one keyed slow hash check: the answer
    takes the same time, so its timing does not tell a card that exists from one that does not."""
    customer_id, _ = bank
    number, code = new_card(app, db, run, customer_id)
    blocked, blocked_code = new_card(app, db, run, customer_id)
    for card, card_code in ((number, code), (blocked, blocked_code)):
        assert run(cards.set_first_pin(db, card, card_code, "1357", clock())).accepted
    raw.execute("UPDATE cards SET status = 'blocked' WHERE id = (SELECT MAX(id) FROM cards)")
    checks, real = [], pins.pin_matches
    monkeypatch.setattr(pins, "pin_matches", lambda *args: checks.append(1) or real(*args))
    for card, pin, when in ((number, "9753", clock()), (new_number("999999"), "1357", clock()), ("", "1357", clock()),
                            (blocked, "1357", clock()), (number, "1357", clock() + 5 * 366 * 24 * 3600)):
        checks.clear()
        assert run(cards.check_pin(db, card, pin, when)).outcome == "refused"
        assert checks == [1], (card[-4:], pin)


# Unblock and lost

def keep(app, db, run, number):
    for pin in ("1111", "2222", "3333"):
        run(cards.check_pin(db, number, pin, app.config["CLOCK"]()))


def test_a_kept_card_is_unblocked_only_by_another_persons_approval(app, bank, client, db, run, raw):
    customer_id, sam = bank
    number, code = new_card(app, db, run, customer_id)
    assert run(cards.set_first_pin(db, number, code, "1357", app.config["CLOCK"]())).accepted
    (card_id,), = raw.rows("SELECT id FROM cards")
    base = f"/teller/customers/{customer_id}/cards/{card_id}"
    active = client.post(f"{base}/unblock", data={"reason": "forgot"})
    assert "Unblock not asked" in client.get(active.location).get_data(as_text=True)
    assert raw.scalar("SELECT COUNT(*) FROM approvals") == 0
    keep(app, db, run, number)
    assert client.post(f"{base}/unblock", data={"reason": ""}).status_code == 303
    assert raw.scalar("SELECT COUNT(*) FROM approvals") == 0  # no reason, no request
    asked = client.post(f"{base}/unblock", data={"reason": "customer present with ID"})
    assert re.fullmatch(r"/teller/requests/\d+", asked.location)
    page = client.get(asked.location).get_data(as_text=True)
    assert f"Unblock card •••• {number[-4:]}; reason: customer present with ID" in page
    assert raw.rows("SELECT kind, status, card_id, account_number FROM approvals") == [
        ("card_unblock", "pending", card_id, "C1")]
    approval_id = asked.location.rsplit("/", 1)[1]
    own = client.post(f"/approvals/{approval_id}", data={"note": "ok", "approve": "y"})
    assert own.status_code == 403  # a teller does not approve (nor anyone their own request)
    assert raw.scalar("SELECT status FROM cards") == "blocked"
    assert sam.post(f"/approvals/{approval_id}", data={"note": "seen the ID", "approve": "y"}).status_code == 303
    assert raw.rows("SELECT status, pin_tries FROM cards") == [("active", 0)]
    assert raw.rows("SELECT actor, detail FROM audit_log WHERE action = 'card unblocked'") == [
        ("teller:sam", f"card •••• {number[-4:]}; asked by tina, approved by sam")]
    assert run(cards.check_pin(db, number, "1357", app.config["CLOCK"]())).accepted


def test_a_supervisor_does_not_approve_their_own_unblock(app, bank, db, run, raw):
    customer_id, sam = bank
    new_card(app, db, run, customer_id)
    (card_id,), = raw.rows("SELECT id FROM cards")
    raw.execute("UPDATE cards SET status = 'blocked'")
    asked = sam.post(f"/teller/customers/{customer_id}/cards/{card_id}/unblock", data={"reason": "r"})
    approval_id = asked.location.rsplit("/", 1)[1]
    assert sam.post(f"/approvals/{approval_id}", data={"note": "mine", "approve": "y"}).status_code == 403
    assert raw.scalar("SELECT status FROM cards") == "blocked"


def test_a_lost_card_is_blocked_for_good(app, bank, client, db, run, raw):
    customer_id, _ = bank
    number, code = new_card(app, db, run, customer_id)
    assert run(cards.set_first_pin(db, number, code, "1357", app.config["CLOCK"]())).accepted
    (card_id,), = raw.rows("SELECT id FROM cards")
    base = f"/teller/customers/{customer_id}/cards/{card_id}"
    unconfirmed = client.post(f"{base}/lost", data={})
    assert "Tick the box" in client.get(unconfirmed.location).get_data(as_text=True)
    assert raw.scalar("SELECT status FROM cards") == "active"
    assert client.post(f"{base}/lost", data={"confirm": "y"}).status_code == 303
    assert raw.scalar("SELECT status FROM cards") == "lost"
    assert run(cards.check_pin(db, number, "1357", app.config["CLOCK"]())).outcome == "refused"
    again = client.post(f"{base}/lost", data={"confirm": "y"})
    assert "reported lost already" in client.get(again.location).get_data(as_text=True)
    unblock = client.post(f"{base}/unblock", data={"reason": "found it"})
    assert "a lost card stays lost" in client.get(unblock.location).get_data(as_text=True)
    with pytest.raises(raw.IntegrityError):  # the database keeps it so, whoever writes
        raw.execute("UPDATE cards SET status = 'active'")
    with pytest.raises(raw.IntegrityError):
        raw.execute("DELETE FROM cards")
    assert raw.rows("SELECT actor, action FROM audit_log WHERE action = 'card reported lost'") == [
        ("teller:tina", "card reported lost")]
    assert client.post(f"/teller/customers/{customer_id + 1}/cards/{card_id}/lost",
                       data={"confirm": "y"}).status_code == 404  # another customer's card


def test_no_pin_code_or_card_number_in_the_logs_or_the_database(app, bank, client, db, run, raw, caplog):
    customer_id, sam = bank
    caplog.set_level(logging.DEBUG)
    number, code = issued_secrets(issue(client, customer_id).get_data(as_text=True))
    at = app.config["CLOCK"]()
    assert run(cards.set_first_pin(db, number, code, "480913", at)).accepted
    for pin in ("480913", "771209", "480913"):
        run(cards.check_pin(db, number, pin, at))
    keep(app, db, run, number)
    (card_id,), = raw.rows("SELECT id FROM cards")
    asked = client.post(f"/teller/customers/{customer_id}/cards/{card_id}/unblock", data={"reason": "r"})
    sam.post(f"/approvals/{asked.location.rsplit('/', 1)[1]}", data={"note": "ok", "approve": "y"})
    client.get(f"/teller/customers/{customer_id}")
    sam.get("/approvals/")
    stored = everything_stored(raw)
    for secret in (number, code, "480913", "771209"):
        assert secret not in stored and secret not in caplog.text, secret
