"""Holds (two-phase postings): reserved now, captured (in full or in part), voided or expired exactly once; the
database keeps available (balance + limit - held) at or above zero; verify checks what is held. Both engines."""
import asyncio

import pytest

from atm_web.ledger import accounts, holds, verification
from atm_web.ledger.refusals import HoldEnded
from atm_web.serving import aio

from conftest import add_teller, add_token, log_in

HOLD_COLUMNS = "status, amount_cents, captured_cents, transaction_id"


def opened(client, number, amount=100):
    assert client.post(f"/accounts/{number}/deposit", json={"amount": amount}).status_code == 200


def hold(client, number, amount, **extra):
    return client.post(f"/accounts/{number}/holds", json={"amount": amount, **extra})


def account(client, number):
    return client.get(f"/accounts/{number}").get_json()


def test_a_hold_counts_against_available_and_refuses_what_would_overspend(client, raw):
    opened(client, "H1")  # 100.00, MAX_DEBT 1000: available 1100
    placed = hold(client, "H1", 300, memo="fuel pump 4")
    assert placed.status_code == 201
    body = placed.get_json()
    assert body["status"] == "pending" and body["amount"] == 300 and body["available"] == 800
    assert body["memo"] == "fuel pump 4" and body["expires_at"].endswith("Z")
    shown = account(client, "H1")
    assert (shown["balance"], shown["held"], shown["available"]) == (100, 300, 800)
    assert client.get("/accounts/H1/balance").get_json() == {"account_number": "H1", "balance": 100, "held": 300,
                                                            "available": 800}
    refused = client.post("/accounts/H1/withdraw", json={"amount": 800.01})
    assert refused.status_code == 400 and refused.get_json() == {"detail": "Insufficient funds for withdrawal"}
    too_much = hold(client, "H1", 800.01)
    assert too_much.status_code == 400 and too_much.get_json()["detail"] == "Insufficient funds for withdrawal"
    assert raw.scalar("SELECT count(*) FROM holds") == 1
    assert client.post("/accounts/H1/withdraw", json={"amount": 800}).status_code == 200
    assert client.post("/accounts/H1/deposit", json={"amount": 0.01}).status_code == 200  # never refused
    assert raw.rows("SELECT balance_cents, held_cents FROM accounts WHERE account_number = 'H1'") == [(-69999, 30000)]


def test_a_capture_posts_once_in_full_or_in_part_and_releases_the_rest(client, raw):
    opened(client, "H2")
    whole = hold(client, "H2", 25).get_json()["hold_id"]
    part = hold(client, "H2", 40).get_json()["hold_id"]
    captured = client.post(f"/holds/{whole}/capture")
    assert captured.status_code == 200
    body = captured.get_json()
    assert body["withdrawn_amount"] == 25 and body["balance"] == 75 and body["hold_id"] == whole
    assert body["status"] == "success" and body["account_number"] == "H2"
    partial = client.post(f"/holds/{part}/capture", json={"amount": 30}).get_json()
    assert partial["withdrawn_amount"] == 30 and partial["balance"] == 45
    shown = account(client, "H2")
    assert (shown["held"], shown["available"]) == (0, 1045)
    assert client.get(f"/holds/{part}").get_json()["status"] == "captured"
    assert client.get(f"/holds/{part}").get_json()["captured_amount"] == 30
    assert raw.rows(f"SELECT {HOLD_COLUMNS} FROM holds ORDER BY id") == [
        ("captured", 2500, 2500, body["transaction_id"]), ("captured", 4000, 3000, partial["transaction_id"])]
    assert raw.rows("SELECT kind, amount_cents, memo FROM journal WHERE id = ?", (partial["transaction_id"],)) == [
        ("withdrawal", 3000, f"hold {part}")]
    again = client.post(f"/holds/{part}/capture", json={"amount": 30})
    assert again.status_code == 409
    assert again.get_json() == {"detail": f"hold {part} is captured: it can no longer be captured or voided",
                                "hold_id": part, "status": "captured"}
    assert client.post(f"/holds/{part}/void").status_code == 409
    assert raw.scalar("SELECT count(*) FROM journal WHERE memo LIKE 'hold %'") == 2
    assert aio.run(verification.verify(client.application.extensions["atm_db"]))[0] == []


def test_a_capture_with_its_key_again_answers_the_first(client, raw):
    opened(client, "H3")
    hold_id = hold(client, "H3", 50).get_json()["hold_id"]
    first = client.post(f"/holds/{hold_id}/capture", json={"amount": 20}, headers={"Idempotency-Key": "cap-1"})
    again = client.post(f"/holds/{hold_id}/capture", json={"amount": 20}, headers={"Idempotency-Key": "cap-1"})
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    other = client.post(f"/holds/{hold_id}/capture", json={"amount": 10}, headers={"Idempotency-Key": "cap-1"})
    assert other.status_code == 422
    assert raw.scalar("SELECT count(*) FROM journal WHERE memo LIKE 'hold %'") == 1


def test_placing_with_its_key_again_places_one_hold(client, raw):
    opened(client, "H4")
    first = client.post("/accounts/H4/holds", json={"amount": 10, "expires_in": 60},
                        headers={"Idempotency-Key": "h-1"})
    again = client.post("/accounts/H4/holds", json={"amount": 10, "expires_in": 60},
                        headers={"Idempotency-Key": "h-1"})
    assert first.status_code == again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["hold_id"] == first.get_json()["hold_id"]
    assert raw.scalar("SELECT count(*) FROM holds") == 1 and account(client, "H4")["held"] == 10


def test_a_void_releases_once_and_nothing_is_posted(client, raw):
    opened(client, "H5")
    hold_id = hold(client, "H5", 60).get_json()["hold_id"]
    journal = raw.journal_count()
    voided = client.post(f"/holds/{hold_id}/void")
    assert voided.status_code == 200 and voided.get_json()["status"] == "voided"
    assert account(client, "H5")["held"] == 0 and raw.journal_count() == journal
    capture = client.post(f"/holds/{hold_id}/capture")
    assert capture.status_code == 409 and capture.get_json()["status"] == "voided"
    assert client.post(f"/holds/{hold_id}/void").status_code == 409


def test_a_hold_past_its_time_is_not_counted_nor_capturable_and_is_recorded_expired_once(client, clock, raw):
    opened(client, "H6")  # available 1100
    hold_id = hold(client, "H6", 1000, expires_in=60).get_json()["hold_id"]
    clock.advance(59)
    assert account(client, "H6")["available"] == 100
    clock.advance(1)  # its expiry time: no longer counted, anywhere
    assert account(client, "H6")["available"] == 1100
    assert client.get(f"/holds/{hold_id}").get_json()["status"] == "expired"
    assert [h["hold_id"] for h in client.get("/accounts/H6/holds?status=expired").get_json()["holds"]] == [hold_id]
    assert client.get("/accounts/H6/holds?status=pending").get_json()["holds"] == []
    assert raw.rows("SELECT status FROM holds") == [("pending",)]  # nothing wrote since
    # the next withdrawal records it expired, in its own statement, and may take what it held
    assert client.post("/accounts/H6/withdraw", json={"amount": 1100}).status_code == 200
    assert raw.rows("SELECT status, ended_by FROM holds") == [("expired", "expiry")]
    assert raw.rows("SELECT held_cents FROM accounts WHERE account_number = 'H6'") == [(0,)]
    late = client.post(f"/holds/{hold_id}/capture")
    assert late.status_code == 409 and late.get_json()["status"] == "expired"


def test_a_capture_after_the_expiry_time_is_refused_and_the_next_hold_records_the_expiry(client, clock, raw):
    opened(client, "H7")
    hold_id = hold(client, "H7", 5, expires_in=30).get_json()["hold_id"]
    clock.advance(31)
    refused = client.post(f"/holds/{hold_id}/capture")
    assert refused.status_code == 409 and refused.get_json()["status"] == "expired"
    assert raw.rows("SELECT status FROM holds") == [("pending",)]  # a refused write leaves nothing behind
    assert hold(client, "H7", 1100).status_code == 201  # fits only once the expired one is released
    assert raw.rows("SELECT status, ended_by FROM holds ORDER BY id") == [("expired", "expiry"), ("pending", None)]
    assert raw.scalar("SELECT held_cents FROM accounts WHERE account_number = 'H7'") == 110000


def test_captures_at_once_post_once(app, raw):
    db = app.extensions["atm_db"]
    aio.run(accounts.deposit(db, "H8", 10_000, "test"))
    placed, _ = aio.run(holds.place(db, "H8", 5_000, 600, "", "test"))

    async def all_at_once():
        return await asyncio.gather(*(holds.capture(db, placed.id, None, f"script-{n}") for n in range(8)),
                                    return_exceptions=True)

    outcomes = aio.run(all_at_once())
    won = [o for o in outcomes if isinstance(o, holds.Captured)]
    assert len(won) == 1 and all(isinstance(o, HoldEnded) for o in outcomes if o not in won)
    assert raw.scalar("SELECT count(*) FROM journal WHERE memo = ?", (f"hold {placed.id}",)) == 1
    assert raw.rows("SELECT balance_cents, held_cents FROM accounts WHERE account_number = 'H8'") == [(5_000, 0)]


@pytest.mark.parametrize("body, detail", [
    ({"amount": 0}, "amount"), ({"amount": 1.001}, "amount"), ({"amount": "ten"}, "amount"), ({}, "amount"),
    ({"amount": 5, "expires_in": 0}, "expires_in"), ({"amount": 5, "expires_in": -1}, "expires_in"),
    ({"amount": 5, "expires_in": 604801}, "expires_in"), ({"amount": 5, "expires_in": "60"}, "expires_in"),
    ({"amount": 5, "expires_in": True}, "expires_in"), ({"amount": 5, "expires_in": 1.5}, "expires_in"),
    ({"amount": 5, "memo": "x" * 201}, "memo"), ({"amount": 5, "memo": 7}, "memo"),
    ({"amount": 5, "memo": "a\x00b"}, "control character"),
])
def test_bad_holds_are_422_and_write_nothing(client, raw, body, detail):
    opened(client, "H9")
    answer = client.post("/accounts/H9/holds", json=body)
    assert answer.status_code == 422 and detail in answer.get_json()["detail"]
    assert raw.scalar("SELECT count(*) FROM holds") == 0


def test_holds_on_what_is_not_a_customers_open_account_or_of_no_hold(client, raw):
    opened(client, "HA")
    vault = client.post("/accounts/@vault/holds", json={"amount": 5})
    assert vault.status_code == 422 and "account number" in vault.get_json()["detail"], vault.get_json()
    missing = client.post("/accounts/NOTOPEN/holds", json={"amount": 5})
    assert missing.status_code == 404 and missing.get_json()["detail"] == "account NOTOPEN does not exist"
    for path in ("/holds/999/capture", "/holds/999/void"):
        answer = client.post(path)
        assert answer.status_code == 404 and answer.get_json()["detail"] == "there is no hold 999"
    assert client.get("/holds/999").status_code == 404
    hold_id = hold(client, "HA", 10).get_json()["hold_id"]
    above = client.post(f"/holds/{hold_id}/capture", json={"amount": 10.01})
    assert above.status_code == 422 and "at most the hold's amount (10.00)" in above.get_json()["detail"]
    assert client.post(f"/holds/{hold_id}/capture", json={"amount": 0}).status_code == 422
    assert client.get("/accounts/HA/holds?status=gone").status_code == 422
    assert raw.rows("SELECT status FROM holds") == [("pending",)]
    assert raw.scalar("SELECT count(*) FROM journal WHERE memo LIKE 'hold %'") == 0


def test_verify_catches_what_is_held_edited_behind_the_triggers_back(client, raw, db):
    opened(client, "HB")
    hold(client, "HB", 30)
    assert aio.run(verification.verify(db))[0] == []
    raw.execute("UPDATE accounts SET held_cents = 1000 WHERE account_number = 'HB'")
    problems, _ = aio.run(verification.verify(db))
    assert problems == ["account HB: 1000 held, but its pending holds come to 3000"]


def test_a_limit_below_what_the_account_owes_counting_its_holds_is_refused(app, raw):
    admin = app.test_client()
    admin.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app, 'limits', admin=True)}"
    opened(admin, "HC")  # 100.00
    hold(admin, "HC", 150)  # owes 50.00 counting the hold
    refused = admin.put("/accounts/HC/overdraft-limit", json={"overdraft_limit": 49.99})
    assert refused.status_code == 422 and "owes 50.00" in refused.get_json()["detail"]
    assert admin.put("/accounts/HC/overdraft-limit", json={"overdraft_limit": 50}).get_json()["available"] == 0


def test_the_account_page_shows_what_is_held_and_a_supervisor_releases_a_hold_with_a_reason(app, raw):
    db = app.extensions["atm_db"]
    aio.run(accounts.deposit(db, "HD", 10_000, "test"))
    placed, _ = aio.run(holds.place(db, "HD", 2_550, 600, "pump 4", "token:shop"))
    teller = log_in(app, app.test_client(), add_teller(app, "tina"))
    page = teller.get("/teller/accounts/HD").get_data(as_text=True)
    assert "Held</dt><dd>25.50" in page and "Available to withdraw</dt><dd>1,074.50" in page
    assert "Pending holds" in page and "pump 4" in page and "Reason for releasing hold" not in page
    assert teller.post(f"/teller/holds/{placed.id}/release", data={"note": "asked"}).status_code == 403
    sam = log_in(app, app.test_client(), add_teller(app, "sam", "supervisor"))
    assert "Reason for releasing hold" in sam.get("/teller/accounts/HD").get_data(as_text=True)
    no_reason = sam.post(f"/teller/holds/{placed.id}/release", data={"note": " "})
    assert no_reason.status_code == 303 and raw.rows("SELECT status FROM holds") == [("pending",)]
    done = sam.post(f"/teller/holds/{placed.id}/release", data={"note": "card cancelled by the customer"})
    assert done.status_code == 303 and done.location.endswith("/teller/accounts/HD")
    assert raw.rows("SELECT status, ended_by, note FROM holds") == [
        ("voided", "teller:sam", "card cancelled by the customer")]
    assert raw.rows("SELECT actor, action, target, detail FROM audit_log WHERE action = 'hold released'") == [
        ("teller:sam", "hold released", "HD", f"hold {placed.id}: card cancelled by the customer")]
    again = sam.post(f"/teller/holds/{placed.id}/release", data={"note": "again"})
    assert again.status_code == 303  # refused (it ended already), shown on the account page
    assert "Held</dt><dd>0.00" in sam.get("/teller/accounts/HD").get_data(as_text=True)


def test_a_deposit_on_an_account_deeper_than_max_debt_with_a_hold_is_taken_and_its_limit_shrinks_holds_counted(db):
    aio.run(accounts.deposit(db, "HE", 10_000, "test"))
    aio.run(accounts.set_overdraft_limit(db, "HE", 300_000, "test"))
    aio.run(accounts.withdraw(db, "HE", 250_000, "test"))  # balance -2,400.00
    aio.run(holds.place(db, "HE", 50_000, 600, "", "test"))
    assert aio.run(accounts.set_overdraft_limit(db, "HE", None, "test")).overdraft_limit_cents == 290_000
    aio.run(accounts.deposit(db, "HE", 10_000, "test"))  # never refused because of a hold
    account = aio.run(accounts.get_account(db, "HE"))
    assert (account.balance_cents, account.held_cents, account.overdraft_limit_cents) == (-230_000, 50_000, 280_000)
    assert account.available_cents == 0
