"""End to end: the Procfile's command, real HTTP, real SQLite file, concurrent clients."""
import json
import os
import random
import socket
import sqlite3
import threading
import time

import pytest

from .server import ROOT, Server

CLIENTS = int(os.environ.get("E2E_CLIENTS", "64"))
OPS_PER_CLIENT = int(os.environ.get("E2E_OPS", "50"))
ACCOUNTS = [f"E2E{i}" for i in range(7)] + ["LIMITED"]
DEADLINE_S = 180


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db_path = tmp_path_factory.mktemp("e2e") / "atm.db"
    with Server(db_path) as srv:
        srv.db_path = db_path
        yield srv


def test_original_readme_examples(server):
    """The original README's curl examples, as HTTP requests, with their exact bodies."""
    assert server.request("GET", "/is_alive") == (200, {"active": "true"})
    assert server.request("GET", "/accounts/1234/balance") == (200, {"account_number": "1234", "balance": 0.0,
                                                                  "held": 0.0, "available": 1000.0})
    status, body = server.request("POST", "/accounts/1234/deposit", {"amount": 100})
    assert status == 200 and {k: body[k] for k in ("account_number", "deposited_amount", "balance", "status")} \
        == {"account_number": "1234", "deposited_amount": 100, "balance": 100, "status": "success"}
    status, body = server.request("POST", "/accounts/1234/withdraw", {"amount": 50})
    assert status == 200 and {k: body[k] for k in ("account_number", "withdrawn_amount", "balance", "status")} \
        == {"account_number": "1234", "withdrawn_amount": 50, "balance": 50, "status": "success"}
    assert server.request("POST", "/accounts/1234/withdraw", {"amount": 2000}) == \
        (400, {"detail": "Insufficient funds for withdrawal"})
    assert server.request("GET", "/accounts/1234/balance") == (200, {"account_number": "1234", "balance": 50,
                                                                  "held": 0, "available": 1050})
    status, body = server.request("POST", "/accounts/1234/deposit", {"amount": -1})
    assert status == 422 and "detail" in body


def test_concurrent_clients_keep_the_ledger_exact(server):
    seed = int(os.environ.get("E2E_SEED", random.randrange(1 << 30)))
    print(f"E2E_SEED={seed}")
    acknowledged, failures, lock = [], [], threading.Lock()
    deadline = time.monotonic() + DEADLINE_S

    def client(index):
        rng = random.Random(seed * 1000 + index)
        conn = server.connection(timeout=30)
        try:
            for _ in range(OPS_PER_CLIENT):
                if time.monotonic() > deadline:
                    break
                number = rng.choice(ACCOUNTS)
                if number == "LIMITED":  # pushed to its limit: mostly large withdrawals
                    kind = "withdraw" if rng.random() < 0.9 else "deposit"
                    amount = rng.choice([50, 99.99, 250]) if kind == "withdraw" else 10
                else:
                    kind = rng.choice(["deposit", "withdraw"])
                    amount = rng.randrange(1, 50000) / 100
                status, body = server.request("POST", f"/accounts/{number}/{kind}", {"amount": amount}, conn=conn)
                with lock:
                    if status == 200:
                        acknowledged.append((body["transaction_id"], number, kind, body["balance"]))
                    elif status != 400:
                        failures.append((status, body))
        except Exception as error:
            with lock:
                failures.append(("exception", repr(error)))
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1, deadline - time.monotonic() + 30))
    assert not any(t.is_alive() for t in threads), "clients did not finish in time"
    assert failures == [], f"seed {seed}: {failures[:5]}"

    with sqlite3.connect(server.db_path) as conn:
        rows = conn.execute("SELECT id, account_number, kind, amount_cents FROM journal "
                            "WHERE account_number IN ({})".format(",".join("?" * len(ACCOUNTS))), ACCOUNTS).fetchall()
        journal_ids = [row[0] for row in rows]
        assert sorted(journal_ids) == sorted(tx[0] for tx in acknowledged), "every 200 has exactly one row"
        for number, balance, limit in conn.execute(
                "SELECT account_number, balance_cents, overdraft_limit_cents FROM accounts"):
            total = sum(a if k == "deposit" else -a for _, n, k, a in rows if n == number)
            if number in ACCOUNTS:
                assert balance == total, number
            assert balance >= -limit, number
        limited = conn.execute("SELECT balance_cents, overdraft_limit_cents FROM accounts "
                               "WHERE account_number = 'LIMITED'").fetchone()
        assert limited[0] < -limited[1] + 25000, "the LIMITED account was driven to its limit"


def test_empty_bodies_get_their_status_line(server):
    """304 to a revalidation and HEAD: hypercorn's own WSGI wrapper dropped their status (hypercorn#331); ours
    (atm_web/asgi.py) must not."""
    conn = server.connection()
    try:
        conn.request("GET", "/static/css/atm.css")
        first = conn.getresponse()
        first.read()
        conn.request("GET", "/static/css/atm.css", headers={"If-None-Match": first.getheader("ETag")})
        revalidated = conn.getresponse()
        assert revalidated.status == 304 and revalidated.read() == b""
        conn.request("HEAD", "/is_alive")
        head = conn.getresponse()
        assert head.status == 200 and head.read() == b""
        conn.request("GET", "/is_alive")  # the connection is still in step
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_whole_files_and_request_details_reach_the_app_and_back(server):
    """Through the ASGI adapter: a static file arrives byte for byte, a UTF-8 path and the query string reach
    Flask intact (the 422 names the parameter), and the server logs no lifespan error."""
    conn = server.connection()
    try:
        conn.request("GET", "/static/css/atm.css")
        response = conn.getresponse()
        assert response.status == 200 and response.read() == (ROOT / "static/css/atm.css").read_bytes()
        conn.request("GET", "/accounts/%C3%A9/balance", headers={"Authorization": f"Bearer {server.token}"})
        response = conn.getresponse()
        assert response.status == 422 and b"account number" in response.read()
        conn.request("GET", "/accounts/A1/transactions?limt=5", headers={"Authorization": f"Bearer {server.token}"})
        response = conn.getresponse()
        assert response.status == 422 and b"limt" in response.read()
    finally:
        conn.close()
    assert "Lifespan" not in server.output()


def post_raw(server, path, body: bytes, chunked: bool):
    conn = server.connection()
    try:
        conn.request("POST", path, body=body, encode_chunked=chunked,
                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {server.token}",
                              **({"Transfer-Encoding": "chunked"} if chunked else {})})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_chunked_bodies_are_read_and_oversized_ones_are_413_json(server):
    status, body = post_raw(server, "/accounts/CHUNKED/deposit", b'{"amount": 2.5}', chunked=True)
    assert (status, body["balance"]) == (200, 2.5)
    oversized = b'{"amount": 1, "padding": "' + b"x" * 40_000 + b'"}'
    for chunked in (False, True):
        status, body = post_raw(server, "/accounts/CHUNKED/deposit", oversized, chunked)
        assert status == 413 and body["detail"], (chunked, body)
    assert server.request("GET", "/accounts/CHUNKED/balance")[1]["balance"] == 2.5


def test_a_body_declared_and_never_sent_is_answered_not_held_open(server):
    """The probe's stalled request: headers promising 100 bytes, then silence. The server answers 408 within
    the adapter's body timeout and closes; it does not hold the connection (and a worker thread) for good."""
    from atm_web.serving.asgi import BODY_TIMEOUT_S
    with socket.create_connection(("127.0.0.1", server.port), timeout=BODY_TIMEOUT_S + 10) as sock:
        sock.sendall(b"POST /accounts/STALL/deposit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n"
                     b"Authorization: Bearer " + server.token.encode() + b"\r\n\r\n{\"amount\":")
        started = time.monotonic()
        received = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        waited = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert b'"detail"' in received and waited < BODY_TIMEOUT_S + 5
    assert server.request("GET", "/accounts/STALL/balance")[1]["balance"] == 0  # nothing was written
