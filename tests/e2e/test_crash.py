"""Crash tests: kill -9 the server (parent and workers) under load, and restart it on the same database.

SQLite: one server, CRASH_KILLS times (default 20). After every restart: `flask verify` passes, PRAGMA
integrity_check is ok, and every write acknowledged before the kill is in the journal.
PostgreSQL: two servers on one database, one of them killed CRASH_KILLS_PG times (default 6, taking turns) while
the other keeps serving (it acknowledges writes while its twin is down); the same checks after each restart.
The seed is printed (CRASH_SEED replays it).
"""
import os
import random
import signal
import sqlite3
import threading
import time
import uuid

import pytest

from .server import Server

KILLS = int(os.environ.get("CRASH_KILLS", "20"))
KILLS_PG = int(os.environ.get("CRASH_KILLS_PG", "6"))
ACCOUNTS = [f"CR{i}" for i in range(6)]
CLIENTS = 12
DEADLINE_S = 30 + KILLS * 15


def load(server, acked, stop, rng, lock, times=None):
    """Writes until stopped; records the transaction ids of 200 answers received in full (and, into times, when
    each was received)."""
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
                        if times is not None:
                            times.append(time.monotonic())
        except Exception:
            time.sleep(0.02)


def check_after_restart(server, raw, acked):
    verified = server.flask("verify")
    assert verified.returncode == 0, verified.stderr
    if not raw.is_postgres:
        with sqlite3.connect(raw.database) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    journal_ids = {row[0] for row in raw.rows("SELECT id FROM journal")}
    lost = acked - journal_ids
    assert not lost, f"acknowledged but lost after kill -9: {sorted(lost)[:10]}"


@pytest.mark.sqlite_only
def test_kill_9_under_load_loses_nothing_acknowledged(database, raw):
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1 << 30)))
    print(f"CRASH_SEED={seed}")
    rng, db_path, started = random.Random(seed), database, time.monotonic()
    token, acked, lock = None, set(), threading.Lock()
    for number in range(KILLS + 1):
        assert time.monotonic() - started < DEADLINE_S, "crash test ran out of time"
        server = Server(db_path, workers=2)
        server.token = token
        server.start()
        token = token or server.create_token("crash")
        server.token = token
        check_after_restart(server, raw, acked)
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


@pytest.mark.postgresql_only
def test_kill_9_of_one_server_loses_nothing_while_the_other_serves_on(database, raw, tmp_path):
    seed = int(os.environ.get("CRASH_SEED", random.randrange(1 << 30)))
    print(f"CRASH_SEED={seed}")
    rng, started = random.Random(seed), time.monotonic()
    acked, lock = set(), threading.Lock()
    servers = [Server(database, workers=2, log_path=tmp_path / f"server{n}.log") for n in range(2)]
    servers[0].start()
    token = servers[0].create_token("crash")
    for server in servers:
        server.token = token
    servers[1].start()
    try:
        for number in range(KILLS_PG):
            assert time.monotonic() - started < DEADLINE_S, "crash test ran out of time"
            victim, survivor = servers[number % 2], servers[1 - number % 2]
            stop, survivor_times = threading.Event(), []
            threads = [threading.Thread(target=load, args=(
                server, acked, stop, random.Random(rng.random()), lock, survivor_times if server is survivor else None))
                for server in servers for _ in range(CLIENTS // 2)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 1.2))
            os.killpg(victim.proc.pid, signal.SIGKILL)  # the parent and both workers, mid-write
            victim.proc.wait(timeout=10)
            killed_at = time.monotonic()
            time.sleep(1.0)                             # the survivor, alone, under its own load
            stop.set()
            for t in threads:
                t.join(timeout=10)
            served = [t for t in survivor_times if t > killed_at + 0.2]
            assert len(served) > 10, f"the other server acknowledged only {len(served)} writes while its twin was down"
            victim.stop()
            victim.start()
            check_after_restart(survivor, raw, acked)
    finally:
        for server in servers:
            server.stop()
    print(f"crash on postgresql: {KILLS_PG} kills of one of two servers, {len(acked)} acknowledged transactions, "
          f"all found after every restart, {time.monotonic() - started:.0f}s, seed {seed}")
    assert len(acked) > KILLS_PG * 10, "too little load to mean anything"
