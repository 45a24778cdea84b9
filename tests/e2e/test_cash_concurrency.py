"""Cash under load: 32 clients through one server with two workers post cash at four open drawers (24 clients, six
per teller's login) and through the API (8 clients) at once. No cash is created or lost: the vault plus the
drawers end at what they held plus the acknowledged cash deposits minus the acknowledged cash withdrawals, each
drawer at its own, clearing at minus the API's net, the ledger at zero, verify passing, and no 5xx."""
import random
import threading
import time
import urllib.parse
import uuid

from atm_web.cash import drawers, vault
from atm_web.ledger.accounts import LEDGER_STARTUP
from atm_web.serving import aio
from atm_web.staff import tellers
from atm_web.storage.postgresql import PostgresDatabase
from atm_web.storage.sqlite import SQLiteDatabase

from .server import Server, burst
from .server import logged_in as browser_login
from conftest import Raw, password_hash

PASSWORD = "a long enough password"
TELLERS = ["t0", "t1", "t2", "t3"]
CUSTOMERS = [f"K{n}" for n in range(6)]
FLOAT_CENTS = 200_000  # 2,000.00 per drawer
OPS, DEADLINE_S = 15, 90


def prepare(database) -> dict[str, str]:
    """Four tellers with their drawers open (from a shipment into the vault); their drawer accounts."""
    location = str(database)
    db = (PostgresDatabase(location, 0, pool_size=2, startup=LEDGER_STARTUP)
          if location.startswith("postgresql://") else SQLiteDatabase(location, 0, startup=LEDGER_STARTUP))

    async def setup():
        boss = await tellers.create_teller(db, "boss", password_hash(PASSWORD), "admin", "test", time.time())
        await vault.ship_cash(db, "in", FLOAT_CENTS * len(TELLERS), "CIT", boss)
        opened = {}
        for name in TELLERS:
            teller = await tellers.create_teller(db, name, password_hash(PASSWORD), "teller", "test", time.time())
            opened[name] = (await drawers.open_drawer(db, teller, {10000: FLOAT_CENTS // 10000})).account_number
        await db.close()
        return opened

    return aio.run(setup())


def logged_in(server, name):
    """(cookie, csrf token) of a browser session of this teller."""
    return browser_login(server, name, PASSWORD, "/teller/accounts/K0")


def test_cash_at_four_drawers_and_the_api_at_once_creates_or_loses_nothing(database, tmp_path):
    accounts_of = prepare(database)
    raw = Raw(str(database))
    seed = random.randrange(10**6)
    print(f"cash concurrency seed {seed}")
    acked = dict.fromkeys(TELLERS, 0)  # net cash in, per drawer
    api_net, statuses, lock = [0], [], threading.Lock()
    # the four-eyes and large-cash rules (tests/test_approvals.py, test_large_cash.py) would hold or ask about some
    # of these postings: here they are set beyond any, so every posting is made or refused at once
    with Server(database, workers=2, log_path=tmp_path / "server.log", APPROVAL_CASH_LIMIT="1000000",
                CTR_THRESHOLD="1000000000") as server:
        for number in CUSTOMERS:  # every customer starts with 500.00, from clearing
            assert server.request("POST", f"/accounts/{number}/deposit", {"amount": 500})[0] == 200
        sessions = {name: logged_in(server, name) for name in TELLERS}
        deadline = time.monotonic() + DEADLINE_S

        def teller_client(n, rng):
            name = TELLERS[n % len(TELLERS)]
            cookie, csrf = sessions[name]
            conn = server.connection(timeout=30)
            for op in range(OPS):
                if time.monotonic() > deadline:
                    break
                deposit, cents = rng.random() < 0.5, rng.randint(1, 40_000)
                if op == 0:  # more than any customer or drawer holds: always refused, nothing written
                    deposit, cents = False, 5_000_000
                form = {"csrf_token": csrf, "account_number": rng.choice(CUSTOMERS), "amount": f"{cents / 100:.2f}",
                        ("deposit" if deposit else "withdraw"): "x", "form_key": uuid.uuid4().hex}
                conn.request("POST", "/teller/transactions", body=urllib.parse.urlencode(form),
                             headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
                answer = conn.getresponse()
                text = answer.read().decode()
                with lock:
                    statuses.append(answer.status)
                    if answer.status == 303:
                        acked[name] += cents if deposit else -cents
                    else:  # refused, nothing written: not enough cash, or the customer's funds
                        refusal = ("Insufficient funds" if answer.status == 400 else "Not enough cash in your drawer")
                        assert answer.status in (400, 409) and refusal in text, (answer.status, text[-1500:])
            conn.close()

        def api_client(rng):
            conn = server.connection(timeout=30)
            for _ in range(OPS):
                if time.monotonic() > deadline:
                    break
                deposit, cents = rng.random() < 0.5, rng.randint(1, 40_000)
                status, _ = server.request("POST", f"/accounts/{rng.choice(CUSTOMERS)}/"
                                           f"{'deposit' if deposit else 'withdraw'}", {"amount": cents / 100},
                                           conn=conn, timeout=30)
                with lock:
                    statuses.append(status)
                    if status == 200:
                        api_net[0] += cents if deposit else -cents
                    else:
                        assert status == 400, status
            conn.close()

        results = burst(32, lambda n: teller_client(n, random.Random(seed + n)) if n < 24
                        else api_client(random.Random(seed + n)), timeout=DEADLINE_S + 60)
        assert results == [None] * 32, results
        verified = server.flask("verify")
    assert not [s for s in statuses if s >= 500] and len(statuses) >= 32
    assert statuses.count(303) > 0 and any(s in (400, 409) for s in statuses)
    held = dict(raw.rows("SELECT account_number, -balance_cents FROM accounts WHERE kind IN ('vault', 'drawer')"))
    for name in TELLERS:
        assert held[accounts_of[name]] == FLOAT_CENTS + acked[name], name
    assert held["@vault"] == 0
    assert sum(held.values()) == FLOAT_CENTS * len(TELLERS) + sum(acked.values())  # no cash created or lost
    clearing = raw.scalar("SELECT balance_cents FROM accounts WHERE account_number = '@clearing'")
    assert clearing == -(len(CUSTOMERS) * 50_000 + api_net[0]) + FLOAT_CENTS * len(TELLERS)
    assert raw.scalar("SELECT sum(balance_cents) FROM accounts") == 0
    assert verified.returncode == 0, verified.stderr
    print(f"cash concurrency: {len(statuses)} requests, {statuses.count(303)} teller postings")
