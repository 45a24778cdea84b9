"""Holds over HTTP, on real servers: captures and voids of one hold at two servers at once (PostgreSQL) end it once;
32 clients placing, capturing, voiding and withdrawing on 8 accounts through two workers (both engines) never take
an account below its limit, and every capture acknowledged is in the journal once."""
import os
import random
import threading
import time
from decimal import Decimal

import pytest

from .server import Server, burst

CLIENTS = 32
ACCOUNTS = [f"HL{i}" for i in range(8)]
OPS_PER_CLIENT = int(os.environ.get("HOLDS_LOAD_OPS", "30"))  # more for a soak run
DEADLINE_S = float(os.environ.get("HOLDS_LOAD_SECONDS", "150"))
MAX_DEBT = "200"


def cents_of(amount) -> int:
    return int(Decimal(str(amount)) * 100)


def placed(server, number, amount):
    status, body = server.request("POST", f"/accounts/{number}/holds", {"amount": amount, "expires_in": 600})
    assert status == 201, body
    return body["hold_id"]


@pytest.mark.postgresql_only
def test_captures_and_voids_of_one_hold_at_two_servers_at_once_end_it_once(two_servers, raw):
    first, second = two_servers
    assert first.request("POST", "/accounts/TWIN/deposit", {"amount": 500})[0] == 200
    for _ in range(4):
        hold_id = placed(first, "TWIN", 50)

        def end(n, hold_id=hold_id):  # half capture, half void, alternately at each server
            what = "capture" if n % 4 < 2 else "void"
            return what, *two_servers[n % 2].request("POST", f"/holds/{hold_id}/{what}", {"amount": 20} if what ==
                                                     "capture" else None)

        answers = burst(16, end)
        won = [(what, body) for what, status, body in answers if status == 200]
        assert len(won) == 1, answers
        what, _ = won[0]
        ended = "captured" if what == "capture" else "voided"
        assert all(status == 409 and body["status"] == ended for _, status, body in answers if status != 200)
        rows = raw.scalar("SELECT count(*) FROM journal WHERE memo = ?", (f"hold {hold_id}",))
        assert rows == (1 if ended == "captured" else 0)
        assert raw.rows("SELECT status FROM holds WHERE id = ?", (hold_id,)) == [(ended,)]
    # the same capture, with one Idempotency-Key, at both servers at once: one answer, one posting
    hold_id = placed(second, "TWIN", 30)
    answers = burst(12, lambda n: two_servers[n % 2].request("POST", f"/holds/{hold_id}/capture", {"amount": 30},
                                                             headers={"Idempotency-Key": f"cap-{hold_id}"}))
    assert {status for status, _ in answers} == {200}, answers
    assert len({tuple(sorted(body.items())) for _, body in answers}) == 1
    assert raw.scalar("SELECT count(*) FROM journal WHERE memo = ?", (f"hold {hold_id}",)) == 1
    assert raw.scalar("SELECT held_cents FROM accounts WHERE account_number = 'TWIN'") == 0
    verified = second.flask("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_32_clients_holding_capturing_and_withdrawing_on_8_accounts_never_overspend(database, raw, tmp_path):
    seed = int(os.environ.get("E2E_SEED", random.randrange(1 << 30)))
    print(f"E2E_SEED={seed}")
    acknowledged, ended, failures, pending, lock = [], [], [], [], threading.Lock()
    with Server(database, workers=2, log_path=tmp_path / "server.log", MAX_DEBT=MAX_DEBT) as server:
        for number in ACCOUNTS:
            assert server.request("POST", f"/accounts/{number}/deposit", {"amount": 300})[0] == 200
        deadline = time.monotonic() + DEADLINE_S

        def client(index):
            rng = random.Random(seed * 1000 + index)
            conn = server.connection(timeout=30)
            try:
                for _ in range(OPS_PER_CLIENT):
                    if time.monotonic() > deadline:
                        break
                    number, roll = rng.choice(ACCOUNTS), rng.random()
                    with lock:
                        hold_id, cents = pending.pop(rng.randrange(len(pending))) if pending and roll < 0.45 else (
                            None, 0)
                    if hold_id is not None and roll < 0.35:  # someone else's hold, maybe: races are the point
                        part = rng.choice([None, rng.randrange(1, cents + 1) / 100])
                        status, body = server.request("POST", f"/holds/{hold_id}/capture",
                                                      {"amount": part} if part else None, conn=conn)
                        if status == 200:
                            with lock:
                                acknowledged.append((hold_id, body["transaction_id"], body["withdrawn_amount"]))
                    elif hold_id is not None:
                        status, body = server.request("POST", f"/holds/{hold_id}/void", conn=conn)
                        if status == 200:
                            with lock:
                                ended.append(hold_id)
                    elif roll < 0.75:
                        status, body = server.request("POST", f"/accounts/{number}/holds",
                                                      {"amount": rng.randrange(1, 12000) / 100}, conn=conn)
                        if status == 201:
                            with lock:
                                # twice: a second capture or void races the first
                                pending.extend([(body["hold_id"], cents_of(body["amount"]))] * 2)
                    elif roll < 0.92:
                        status, body = server.request("POST", f"/accounts/{number}/withdraw",
                                                      {"amount": rng.randrange(1, 15000) / 100}, conn=conn)
                    else:
                        status, body = server.request("POST", f"/accounts/{number}/deposit",
                                                      {"amount": rng.randrange(1, 5000) / 100}, conn=conn)
                    if status not in (200, 201, 400, 409) or (status == 400 and body != {
                            "detail": "Insufficient funds for withdrawal"}) or (status == 409 and body.get(
                            "status") not in ("captured", "voided", "expired")):
                        with lock:
                            failures.append((status, body))
            finally:
                conn.close()
            return "done"

        # an exception shows as its repr, a client still running after the deadline as None
        assert burst(CLIENTS, client, timeout=DEADLINE_S + 60) == ["done"] * CLIENTS, f"seed {seed}"
        assert failures == [], f"seed {seed}: {failures[:5]}"
        assert "Traceback" not in server.output()
        verified = server.flask("verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr

    captured = {hold_id for hold_id, _, _ in acknowledged}
    assert len(captured) == len(acknowledged), "a hold captured twice"
    assert not captured & set(ended), "a hold both captured and voided"
    for hold_id, transaction_id, amount in acknowledged:
        assert raw.rows("SELECT id, kind, amount_cents FROM journal WHERE memo = ?", (f"hold {hold_id}",)) == [
            (transaction_id, "withdrawal", cents_of(amount))], hold_id
        assert raw.rows("SELECT status, transaction_id FROM holds WHERE id = ?", (hold_id,)) == [
            ("captured", transaction_id)]
    assert raw.scalar("SELECT count(*) FROM holds WHERE status = 'captured'") == len(acknowledged)
    assert raw.rows("SELECT account_number FROM accounts WHERE balance_cents - held_cents < -overdraft_limit_cents "
                    "OR balance_cents < -overdraft_limit_cents") == []
    assert raw.scalar("SELECT count(*) FROM holds") > CLIENTS, "the clients placed holds"
    assert len(acknowledged) > 10 and raw.scalar(
        "SELECT count(*) FROM accounts WHERE account_number LIKE 'HL%' AND balance_cents - held_cents < "
        "-overdraft_limit_cents + 5000") > 0, "some account was driven near its limit"
    print(f"holds load: {len(acknowledged)} captures, {len(ended)} voids, "
          f"{raw.scalar('SELECT count(*) FROM holds')} holds")
