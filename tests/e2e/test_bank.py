"""The bank test, after Jepsen's bank workload, against the real server: on SQLite one server with 2 workers, on
PostgreSQL two servers (the Procfile's command on two ports, 2 workers each) sharing one database, each client
talking to one of them.

64 clients for BANK_SECONDS (default 20) send random deposits, withdrawals, transfers and snapshot reads of all
8 balances, each write with an Idempotency-Key, and retry earlier writes with their keys. Checks:
- every snapshot read sums to the opening total plus the net of the deposits and withdrawals that had
  committed by then: at least those acknowledged before the read began, at most those also in flight;
- every acknowledged operation is in the journal exactly once, and retries never add a row;
- no balance below its limit, zero 5xx, and `flask verify` passes at the end.
The seed is printed (BANK_SEED replays it).
"""
import contextlib
import os
import random
import threading
import time
import uuid

from .server import Server

ACCOUNTS = [f"BANK{i}" for i in range(8)]
OPENING_CENTS = 50_000
CLIENTS = int(os.environ.get("BANK_CLIENTS", "64"))
SECONDS = float(os.environ.get("BANK_SECONDS", "20"))


class History:
    """Acknowledged operations and reads, with monotonic times, shared by the client threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = []        # (invoked, completed, delta_cents, transaction ids)
        self.in_flight = {}    # op id -> (invoked, delta_cents)
        self.reads = []        # (invoked, completed, total_cents)
        self.failures = []
        self.keys = []         # (path, body, key, first status, first body) for retries

    def start(self, op_id, delta):
        with self.lock:
            self.in_flight[op_id] = (time.monotonic(), delta)

    def finish(self, op_id, delta, tx_ids):
        with self.lock:
            invoked, _ = self.in_flight.pop(op_id)
            if tx_ids is not None:
                self.acked.append((invoked, time.monotonic(), delta, tx_ids))

    def abandon(self, op_id):
        """The outcome is unknown (an error): the op may or may not have committed."""
        with self.lock:
            invoked, delta = self.in_flight.pop(op_id)
            self.acked.append((invoked, float("inf"), delta, None))


def cents(number) -> int:
    return round(number * 100)


def run_client(server, history, rng, deadline):
    conn = server.connection(timeout=30)
    try:
        while time.monotonic() < deadline:
            roll = rng.random()
            if roll < 0.15:
                invoked = time.monotonic()
                status, body = server.request("GET", "/balances?accounts=" + ",".join(ACCOUNTS), conn=conn)
                if status != 200:
                    history.failures.append(("read", status, body))
                    continue
                total = sum(cents(v) for v in body["balances"].values())
                with history.lock:
                    history.reads.append((invoked, time.monotonic(), total))
                continue
            if roll < 0.25 and history.keys:
                with history.lock:
                    path, body, key, status0, body0 = rng.choice(history.keys)
                status, again = server.request("POST", path, body, conn=conn, headers={"Idempotency-Key": key})
                if (status, again) != (status0, body0):
                    history.failures.append(("retry differs", path, status0, body0, status, again))
                continue
            kind = rng.choice(["deposit", "withdraw", "transfer", "transfer"])
            amount = rng.randrange(1, 40_000)
            if kind == "transfer":
                source, target = rng.sample(ACCOUNTS, 2)
                path, body, delta = "/transfers", {"from_account": source, "to_account": target,
                                                   "amount": amount / 100}, 0
            else:
                path = f"/accounts/{rng.choice(ACCOUNTS)}/{kind}"
                body, delta = {"amount": amount / 100}, amount if kind == "deposit" else -amount
            key, op_id = str(uuid.UUID(int=rng.getrandbits(128))), object()
            history.start(op_id, delta)
            try:
                status, answer = server.request("POST", path, body, conn=conn, headers={"Idempotency-Key": key})
            except Exception as error:
                history.abandon(op_id)
                history.failures.append(("exception", repr(error)))
                conn.close()
                conn = server.connection(timeout=30)
                continue
            if status == 200:
                ids = [answer["from_transaction_id"], answer["to_transaction_id"]] if kind == "transfer" \
                    else [answer["transaction_id"]]
                history.finish(op_id, delta, ids)
            else:
                history.finish(op_id, delta, None)
                if status != 400:
                    history.failures.append((path, status, answer))
            with history.lock:
                history.keys.append((path, body, key, status, answer))
    finally:
        conn.close()


def test_bank(engine, database, raw, tmp_path):
    seed = int(os.environ.get("BANK_SEED", random.randrange(1 << 30)))
    print(f"BANK_SEED={seed}")
    count = 2 if engine == "postgresql" else 1
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(Server(database, workers=2, log_path=tmp_path / f"server{n}.log"))
                   for n in range(count)]
        server = servers[0]
        for other in servers[1:]:
            other.token = server.token
        for number in ACCOUNTS:
            assert server.request("POST", f"/accounts/{number}/deposit", {"amount": OPENING_CENTS / 100})[0] == 200
        opening_ids = {row[0] for row in raw.rows("SELECT id FROM journal")}
        history = History()
        deadline = time.monotonic() + SECONDS
        threads = [threading.Thread(target=run_client, args=(servers[i % count], history, random.Random(seed + i),
                                                               deadline)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SECONDS + 60)
        assert not any(t.is_alive() for t in threads), "clients did not stop in time"
        verified = server.flask("verify")

    assert history.failures == [], f"seed {seed}: {history.failures[:3]}"
    opening = OPENING_CENTS * len(ACCOUNTS)
    for invoked, completed, total in history.reads:
        before = sum(d for i, c, d, _ in history.acked if c < invoked)
        maybe = [d for i, c, d, _ in history.acked if not c < invoked and i < completed]
        low = opening + before + sum(d for d in maybe if d < 0)
        high = opening + before + sum(d for d in maybe if d > 0)
        assert low <= total <= high, f"seed {seed}: a read saw {total}, expected {low}..{high}"

    acked_ids = [i for *_, ids in history.acked if ids for i in ids]
    assert len(acked_ids) == len(set(acked_ids)), "a transaction id was acknowledged twice"
    customers = "WHERE account_number NOT LIKE '@%'"  # the bank's side of each: clearing's rows, checked below
    journal_ids = {row[0] for row in raw.rows(f"SELECT id FROM journal {customers}")} - opening_ids
    balances = raw.rows(f"SELECT account_number, balance_cents, overdraft_limit_cents FROM accounts {customers}")
    assert journal_ids == set(acked_ids), "every acknowledged operation exactly once, and nothing else"
    assert all(balance >= -limit for _, balance, limit in balances)
    net = sum(d for *_, d, ids in history.acked if ids)
    assert sum(b for _, b, _ in balances) == opening + net
    assert raw.scalar("SELECT balance_cents FROM accounts WHERE account_number = '@clearing'") == -(opening + net)
    assert raw.scalar("SELECT sum(balance_cents) FROM accounts") == 0  # double entry: the ledger sums to zero
    assert verified.returncode == 0, verified.stderr
    writes = len(history.acked)
    print(f"bank on {engine} ({count} server(s)): {SECONDS:.0f}s, {writes} acknowledged writes, "
          f"{len(history.reads)} snapshot reads, "
          f"{len(history.keys)} keys, retries checked, seed {seed}")
    assert writes > 100 and history.reads, "the workload was too small to mean anything"
