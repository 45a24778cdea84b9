import re
import threading

import pytest

from atm_web.core import rules
from atm_web.ledger import accounts, idempotency

from conftest import add_token, bearer


def post(client, path, body, key, **headers):
    return client.post(path, json=body, headers={"Idempotency-Key": key, **headers})


@pytest.mark.parametrize("path, body", [
    ("/accounts/I1/deposit", {"amount": 10}),
    ("/accounts/I1/withdraw", {"amount": 10}),
    ("/transfers", {"from_account": "SRC", "to_account": "I1", "amount": 10}),
])
def test_retry_with_same_key_replays_and_writes_nothing(client, raw, path, body):
    client.post("/accounts/SRC/deposit", json={"amount": 100})
    first = post(client, path, body, "key-1")
    rows = raw.journal_count()
    again = post(client, path, body, "key-1")
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert raw.journal_count() == rows


def test_same_key_different_body_is_422(client, raw):
    post(client, "/accounts/I1/deposit", {"amount": 10}, "key-2")
    rows = raw.journal_count()
    for path, body in (("/accounts/I1/deposit", {"amount": 11}), ("/accounts/I2/deposit", {"amount": 10}),
                       ("/accounts/I1/withdraw", {"amount": 10})):
        response = post(client, path, body, "key-2")
        assert response.status_code == 422 and "idempotency key" in response.get_json()["detail"]
    assert raw.journal_count() == rows


def test_refusal_is_replayed_too(client, raw):
    first = post(client, "/accounts/I1/withdraw", {"amount": 5000}, "key-3")
    client.post("/accounts/I1/deposit", json={"amount": 10000})  # now it would succeed...
    again = post(client, "/accounts/I1/withdraw", {"amount": 5000}, "key-3")  # ...but the key has its answer
    assert first.status_code == again.status_code == 400
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert raw.journal_count() == 1


def test_keys_are_scoped_to_the_token(app, client, raw):
    other = app.test_client()
    other.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app, 'other')}"
    assert post(client, "/accounts/I1/deposit", {"amount": 1}, "shared").status_code == 200
    second = post(other, "/accounts/I1/deposit", {"amount": 1}, "shared")
    assert second.status_code == 200 and "Idempotent-Replayed" not in second.headers
    assert raw.journal_count() == 2


def test_key_expires_after_24_hours(client, clock, raw):
    post(client, "/accounts/I1/deposit", {"amount": 1}, "old-key")
    clock.advance(24 * 3600 - 5)
    assert post(client, "/accounts/I1/deposit", {"amount": 1}, "old-key").headers.get("Idempotent-Replayed")
    clock.advance(10)
    fresh = post(client, "/accounts/I1/deposit", {"amount": 2}, "old-key")  # expired: a new request
    assert fresh.status_code == 200 and "Idempotent-Replayed" not in fresh.headers
    assert raw.journal_count() == 2
    clock.advance(25 * 3600)
    post(client, "/accounts/I9/deposit", {"amount": 1}, "later")  # purges keys older than 24 hours
    assert [k for (k,) in raw.rows("SELECT key FROM idempotency_keys")] == ["later"]


@pytest.mark.parametrize("key", ["", "x" * 256, "café", "a b"])
def test_bad_keys_are_422(client, raw, key):
    response = post(client, "/accounts/I1/deposit", {"amount": 1}, key)
    assert response.status_code == 422 and raw.journal_count() == 0


def test_quoted_structured_field_key(client, raw):
    post(client, "/accounts/I1/deposit", {"amount": 1}, '"abc"')
    assert post(client, "/accounts/I1/deposit", {"amount": 1}, "abc").headers["Idempotent-Replayed"] == "true"


def test_post_without_key_works_as_before(client, raw):
    for _ in range(2):
        assert client.post("/accounts/I1/deposit", json={"amount": 1}).status_code == 200
    assert raw.journal_count() == 2


def test_twenty_concurrent_identical_requests_make_one_row(app, raw):
    secret = add_token(app, "burst")
    results, barrier = [], threading.Barrier(20)

    def send():
        client = app.test_client()
        barrier.wait(timeout=10)
        response = client.post("/accounts/C1/deposit", json={"amount": 7.25},
                               headers={**bearer(secret), "Idempotency-Key": "burst-1"})
        results.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=send) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == 20 and {status for status, _ in results} == {200}
    assert len({repr(sorted(body.items())) for _, body in results}) == 1
    assert raw.journal_count() == 1


# Forms post once

def form_key(html):
    return re.search(r'name="form_key" type="hidden" value="([0-9a-f]{32})"', html).group(1)


def test_double_submit_of_a_teller_form_moves_money_once(client, raw):
    client.post("/accounts/F1/deposit", json={"amount": 1})
    key = form_key(client.get("/teller/accounts/F1").get_data(as_text=True))
    form = {"account_number": "F1", "amount": "25", "deposit": "Deposit", "form_key": key}
    first = client.post("/teller/transactions", data=form)
    second = client.post("/teller/transactions", data=form)  # double click, or resubmit after back
    assert first.status_code == second.status_code == 303
    assert first.location == second.location                 # the original receipt
    assert "already submitted" in client.get(second.location).get_data(as_text=True)
    assert raw.journal_count() == 2


def test_back_edit_and_resubmit_does_not_move_money_again(client, raw):
    client.post("/accounts/F1/deposit", json={"amount": 1})
    key = form_key(client.get("/teller/accounts/F1").get_data(as_text=True))
    first = client.post("/teller/transactions", data={"account_number": "F1", "amount": "25", "deposit": "Deposit",
                                                      "form_key": key})
    edited = client.post("/teller/transactions", data={"account_number": "F1", "amount": "30", "withdraw": "W",
                                                       "form_key": key})
    assert edited.status_code == 303 and edited.location == first.location
    assert "already used" in client.get(edited.location).get_data(as_text=True)
    assert raw.journal_count() == 2


def test_form_without_key_is_refused(client, raw):
    response = client.post("/teller/transactions", data={"account_number": "F1", "amount": "25",
                                                         "deposit": "Deposit", "confirm_open": "yes"})
    assert response.status_code == 422 and "expired" in response.get_data(as_text=True)
    assert raw.journal_count() == 0


def test_idempotent_ledger_calls_replay(db, run, clock):
    once = idempotency.Once("s", "k", "fp", clock())
    first = run(accounts.deposit(db, "L1", 100, "t", once))
    again = run(accounts.deposit(db, "L1", 100, "t", once))
    assert again.id == first.id and again.replayed and not first.replayed


def test_retry_of_a_transfer_reversed_since_replays_the_original_answer(app, client, raw):
    admin = app.test_client()
    admin.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app, 'ops', admin=True)}"
    client.post("/accounts/RS1/deposit", json={"amount": 100})
    for path, body in (("/transfers", {"from_account": "RS1", "to_account": "RS2", "amount": 10}),
                       ("/accounts/RS1/deposit", {"amount": 7}), ("/accounts/RS1/withdraw", {"amount": 3})):
        first = post(client, path, body, f"before-reversal:{path}")
        entry = first.get_json().get("transaction_id") or first.get_json()["from_transaction_id"]
        assert admin.post(f"/transactions/{entry}/reversal", json={"reason": "keyed twice"}).status_code == 200
        rows = raw.journal_count()
        again = post(client, path, body, f"before-reversal:{path}")
        assert again.status_code == 200, again.get_json()
        assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
        assert raw.journal_count() == rows


def test_teller_repost_of_a_transfer_reversed_since_shows_its_receipt(app, client, raw):
    client.post("/accounts/RF1/deposit", json={"amount": 100})
    client.post("/accounts/RF2/deposit", json={"amount": 1})  # open: a transfer to a new account asks its holder
    key = form_key(client.get("/teller/transfer").get_data(as_text=True))
    form = {"from_account": "RF1", "to_account": "RF2", "amount": "10", "form_key": key}
    first = client.post("/teller/transfer", data=form)
    assert first.status_code == 303
    entry = int(first.location.rsplit("/", 1)[1])
    admin = app.test_client()
    admin.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app, 'ops', admin=True)}"
    assert admin.post(f"/transactions/{entry}/reversal", json={"reason": "wrong account"}).status_code == 200
    rows = raw.journal_count()
    again = client.post("/teller/transfer", data=form)
    assert again.status_code == 303 and again.location == first.location
    assert raw.journal_count() == rows


def test_a_refusal_no_key_keeps_gives_the_key_up_again(client, db, run, raw):
    """Insufficient funds is an outcome a key keeps (replayed); a balance past the maximum is not: the key is
    given up, so a retry is judged afresh and the same key may serve another request."""
    run(accounts.deposit(db, "FULL", rules.BALANCE_MAX_CENTS - 5, "test"))
    for _ in range(2):
        refused = post(client, "/accounts/FULL/deposit", {"amount": 1}, "given-up")
        assert refused.status_code == 422 and "Idempotent-Replayed" not in refused.headers
    assert raw.rows("SELECT key FROM idempotency_keys") == []
    assert post(client, "/accounts/OTHER/deposit", {"amount": 1}, "given-up").status_code == 200
    assert raw.rows("SELECT key FROM idempotency_keys") == [("given-up",)]
