"""Crash test: kill -9 the server (parent and workers) under load, CRASH_KILLS times (default 20), restart it
on the same database each time. After every restart: `flask verify` passes, PRAGMA integrity_check is ok,
and every write acknowledged before the kill is in the journal. The seed is printed (CRASH_SEED replays it).
"""
import os
import random
import signal
import sqlite3
import threading
import time
import uuid

from .server import Server

KILLS = int(os.environ.get("CRASH_KILLS", "20"))
ACCOUNTS = [f"CR{i}" for i in range(6)]
CLIENTS = 12
DEADLINE_S = 30 + KILLS * 15


def load(server, acked, stop, rng, lock):
    """Writes until stopped; records the transaction ids of 200 answers received in full."""
    while not stop.is_set():
        try:
            conn = server.connection(timeout=5)
            while not stop.is_set():
                if rng.random() < 0.3:
                    source, target = rng.sample(ACCOUNTS, 2)
                    path, body = "/transfers", {"from_account": source, "to_account": target, "amount": 1}
                else:
                    path = f"/accounts/{rng.choice(ACCOUNTS)}/{rng.choice(['deposit', 'withdraw'])}"
                    body = {"amount": rng.randrange(1, 5000) / 100}
                status, answer = server.request("POST", path, body, conn=conn,
                                                headers={"Idempotency-Key": uuid.uuid4().hex})
                if status == 200:
                    with lock:
                        acked.update([answer["from_transaction_id"], answer["to_transaction_id"]]
                                     if path == "/transfers" else [answer["transaction_id"]])
        except Exception:  # noqa: BLE001 - the server was killed under us: expected here
            time.sleep(0.02)


def check_after_restart(server, db_path, acked):
    verified = server.flask("verify")
    assert verified.returncode == 0, verified.stderr
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        journal_ids = {row[0] for row in conn.execute("SELECT id FROM journal")}
    lost = acked - journal_ids
    assert not lost, f"acknowledged but lost after kill -9: {sorted(lost)[:10]}"


def test_kill_9_under_load_loses_nothing_acknowledged(tmp_path):
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1 << 30)))
    print(f"CRASH_SEED={seed}")
    rng, db_path, started = random.Random(seed), tmp_path / "atm.db", time.monotonic()
    token, acked, lock = None, set(), threading.Lock()
    for number in range(KILLS + 1):
        assert time.monotonic() - started < DEADLINE_S, "crash test ran out of time"
        server = Server(db_path, workers=2)
        server.token = token
        server.start()
        token = token or server.create_token("crash")
        server.token = token
        check_after_restart(server, db_path, acked)
        if number == KILLS:
            server.stop()
            break
        stop = threading.Event()
        threads = [threading.Thread(target=load, args=(server, acked, stop, random.Random(rng.random()), lock))
                   for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.3, 1.2))
        os.killpg(server.proc.pid, signal.SIGKILL)  # the parent and both workers, mid-write
        server.proc.wait(timeout=10)
        stop.set()
        for t in threads:
            t.join(timeout=10)
        server.stop()
    print(f"crash: {KILLS} kills, {len(acked)} acknowledged transactions, all found after every restart, "
          f"{time.monotonic() - started:.0f}s, seed {seed}")
    assert len(acked) > KILLS * 10, "too little load to mean anything"
