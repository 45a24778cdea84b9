"""`make bench-scale`: the ledger at two sizes, built through the app's own statements, and each cost issue 22 names
measured at both in one run, with its growth factor (large over small).

Each ledger: SCALE_SMALL and SCALE_LARGE customer accounts (default 10,000 and 100,000), ten journal rows per
account (the customer's and the bank's side of five postings, spread over thirty past days), a customer for one
account in ten, and a day before that was closed with drawers; then today: SCALE_DAY cash transactions (default
50,000) at four tellers' drawers, on SCALE_DAY_ACCOUNTS accounts that have a customer (default 1,000, spread through
the ledger: the same day, as broad, at both sizes; the large-cash rule at work). Everything is
written by the app's code (postings, customers, holders, drawers, Close the day), so hash chains hold and verify
passes. SCALE_ENGINES picks the engines (default sqlite,postgresql; PostgreSQL at DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/test, a new database per ledger, dropped after).

Measured, per engine and size:
- cash postings a second through the real path (cash_desk.post_cash, 4 at once) for the day's first 2,000 and its
  last 2,000: their ratio shows whether a posting's cost grows with the day;
- over HTTP, on the Procfile's server (2 workers), unloaded: each teller page and API read, 40 times (p95, ms);
  the end-of-day report (JSON, page, CSV) and the Large cash page, 3 times (median, ms); a balance read while
  end-of-day reports run (p95, ms);
- start-up (the server's first /is_alive answer) and `flask init-db` with nothing to migrate (s);
- `flask verify --full` (s, and its peak memory, MiB) and the default run after 1,000 more postings (s).
Prints a table, and writes it as JSON to SCALE_OUT (default bench-scale.json). SCALE_REUSE=folder keeps the SQLite
ledgers built there (scale-N.db) and, on a later run, measures them again without building (the posting rates are
measured only as a ledger is built); for PostgreSQL, the kept SQLite ledgers are moved there by `flask copy-ledger`,
then a day of SCALE_DAY cash transactions is posted there through the app (two days after the copied one), its first
and last postings timed.
"""
import asyncio
import json
import logging
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import contextlib

from atm_web import create_app
from atm_web.cash import cash_desk, drawers, end_of_day, vault
from atm_web.core.clock import stamp
from atm_web.customers import records
from atm_web.customers.large_cash import IdCheck
from atm_web.customers.refusals import NeedsIdentityCheck
from atm_web.ledger.accounts import Posting
from atm_web.ledger.refusals import InsufficientFunds, NotEnoughCash
from atm_web.serving import aio
from atm_web.staff import tellers
from atm_web.staff.tellers import hash_password
from tests.bench.bench import postgres_database
from tests.e2e.server import ROOT, Server
from tests.e2e.server import logged_in as browser_login

SMALL = int(os.environ.get("SCALE_SMALL", "10000"))
LARGE = int(os.environ.get("SCALE_LARGE", "100000"))
DAY = int(os.environ.get("SCALE_DAY", "50000"))
# the customer accounts the day's cash goes to, spread through the ledger: the same day's breadth at both sizes
DAY_ACCOUNTS = int(os.environ.get("SCALE_DAY_ACCOUNTS", "1000"))
ENGINES = os.environ.get("SCALE_ENGINES", "sqlite,postgresql").split(",")
OUT = os.environ.get("SCALE_OUT", "bench-scale.json")
REUSE = os.environ.get("SCALE_REUSE", "")  # a folder: SQLite ledgers built there are kept, and measured again later
PG_SERVER = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
POSTINGS_PER_ACCOUNT = 5  # each: the customer's row and the bank's, so ten journal rows an account
HISTORY_DAYS = 30
TELLERS = ["tara", "tom", "tess", "theo"]
PASSWORD = "scale-bench-password"
MEASURED = min(2_000, DAY // 5)  # cash postings timed at the day's start and at its end
READS = 40  # requests per page or read (p95)
REPORTS = 3  # requests per report (median)
SECRET = "scale-secret"
PIN_KEY = "scale-pin-key-0123456789"
FLOAT_NOTES = 10_000  # 100.00 notes in each drawer's float: 1,000,000.00
SKIPPED = (InsufficientFunds, NotEnoughCash)  # a withdrawal the customer or the drawer cannot cover


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def account(i: int) -> str:
    return f"S{i:07d}"


class Ledger:
    """One ledger being built in-process, through the app's own code."""

    def __init__(self, where: str, accounts: int):
        self.where, self.accounts = where, accounts
        config = {"SECRET_KEY": SECRET, "PIN_KEY": PIN_KEY, "APPROVAL_CASH_LIMIT": "1000000"}
        config["DATABASE_URL" if where.startswith("postgresql://") else "DB_PATH"] = where
        self.app = create_app(config)
        logging.getLogger("atm_web").setLevel(logging.WARNING)  # not each migration's line, at each build
        self.db = self.app.extensions["atm_db"]
        self.rng = random.Random(22)
        self.now = time.time()
        self.shift = 0.0  # seconds added to the clock of the measured day (a later day, on a ledger built before)
        self.customers: dict[str, int] = {}  # account: its holder's id

    def close(self):
        aio.run(self.db.close())

    def clock(self) -> float:
        return time.time() + self.shift

    def resume(self):
        """The staff, customers and the day's accounts of a ledger built before (its drawers all closed)."""
        async def people():
            admin = (await tellers.find_teller(self.db, "ada"))[0]
            return admin, [(await tellers.find_teller(self.db, name))[0] for name in TELLERS]
        self.admin, self.tellers = aio.run(people())
        self.customers = dict(aio.run(self.db.read(lambda conn: conn.fetchall(
            "SELECT account_number, min(customer_id) FROM account_holders GROUP BY account_number "
            "ORDER BY account_number"))))
        self.held = list(self.customers)
        self.day_accounts = self.held[::max(1, len(self.held) // DAY_ACCOUNTS)][:DAY_ACCOUNTS]

    def last_date(self) -> str:
        """The ledger's latest business date: the day measured."""
        return aio.run(self.db.read(lambda conn: conn.fetchall("SELECT max(business_date) FROM journal")))[0][0]

    async def _gather(self, ops, chunk=4000):
        """Each op as its own write, many at once: the engine groups them as it groups requests."""
        results = []
        for start in range(0, len(ops), chunk):
            results += await asyncio.gather(*(self.db.write(op) for op in ops[start:start + chunk]),
                                            return_exceptions=True)
        return results

    def history(self):
        """Five postings per account against clearing (the API's), spread over thirty past days."""
        numbers = [account(i) for i in range(self.accounts)]
        plan = [n for n in numbers for _ in range(POSTINGS_PER_ACCOUNT)]
        self.rng.shuffle(plan)
        per_day = len(plan) // HISTORY_DAYS + 1
        done = 0
        for day in range(HISTORY_DAYS):
            at_day = self.now - (HISTORY_DAYS + 2 - day) * 86400
            batch = plan[day * per_day:(day + 1) * per_day]
            ops = [Posting(n, "deposit", self.rng.randint(1_000, 500_000), "token:history",
                           stamp(at_day + k * 0.001, self.db.branch_timezone), None) for k, n in enumerate(batch)]
            failed = [r for r in aio.run(self._gather(ops)) if isinstance(r, Exception)]
            assert not failed, failed[:3]
            done += len(batch)
            if day % 10 == 9:
                say(f"  history: {done:,} of {len(plan):,} postings")
        say(f"  history: {done:,} postings ({2 * done:,} journal rows) over {HISTORY_DAYS} days")

    def people(self):
        """Staff; a customer for one account in ten, holder of it."""
        async def make():
            db, at = self.db, self.now - 3 * 86400
            self.admin = await tellers.create_teller(db, "ada", hash_password(PASSWORD), "admin", "bench", at)
            self.tellers = [await tellers.create_teller(db, name, hash_password(PASSWORD), "teller", "bench", at)
                            for name in TELLERS]
            held = [account(i) for i in range(0, self.accounts, 10)]
            for start in range(0, len(held), 500):
                async def op(conn, part=held[start:start + 500]):
                    made = {}
                    for number in part:
                        customer = await records.add_customer(conn, records.Details(
                            f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)} {number[-5:]}", "1980-01-01",
                            "passport", f"P{number}", "US", "1 Main Street", "+1 555 0100"), "teller:tara", at)
                        await records.add_holder(conn, number, customer.id, "teller:tara", at)
                        made[number] = customer.id
                    return made
                self.customers.update(await db.write(op))
        aio.run(make())
        self.held = list(self.customers)
        self.day_accounts = self.held[::max(1, len(self.held) // DAY_ACCOUNTS)][:DAY_ACCOUNTS]
        say(f"  people: {len(self.customers):,} customers, holders of as many accounts")

    def day_before(self):
        """Yesterday: cash shipped into the vault, the tellers' drawers open, some cash, drawers closed, the day
        closed (its close recorded)."""
        at = self.now - 86400
        aio.run(vault.ship_cash(self.db, "in", len(self.tellers) * FLOAT_NOTES * 100_00, "CIT bench", self.admin,
                                now=at))
        self._drawers(at, 500)
        self._close_drawers(at)
        aio.run(end_of_day.close_day(self.db, self.admin, now=at + 60))
        say("  yesterday: drawers opened, cash, drawers closed, the day closed")

    def _drawers(self, at, postings):
        self.open = {t.username: aio.run(drawers.open_drawer(self.db, t, {100_00: FLOAT_NOTES}, now=at))
                     for t in self.tellers}
        self.cash_postings(postings, at)

    def _close_drawers(self, at):
        for teller in self.tellers:
            session = aio.run(drawers.current_session(self.db, teller.id))
            balance = aio.run(self.db.read(lambda conn, n=session.account_number: conn.fetchall(
                "SELECT balance_cents FROM accounts WHERE account_number = ?", (n,))))[0][0]
            aio.run(drawers.close_drawer(self.db, teller, {1: -balance}, 0, now=at))

    def _cash_op(self, at, id_check=None, number=None, kind=None, cents=None):
        teller = self.rng.choice(self.tellers)
        number = number or self.rng.choice(self.day_accounts)
        kind = kind or ("deposit" if self.rng.random() < 0.6 else "withdrawal")
        cents = cents or self.rng.randint(10_00, 200_00)  # a teller's everyday cash: rarely above CTR_THRESHOLD
        return cash_desk.CashPosting(number, kind, cents, teller.actor, stamp(at, self.db.branch_timezone),
                                     self.open[teller.username].account_number,
                                     self.db.settings.ctr_threshold_cents, id_check)

    def cash_postings(self, count, at):
        """count cash transactions, many at once; one that needs the identity check is posted again with it."""
        ops = [self._cash_op(at + k * 0.001) for k in range(count)]
        again = []
        for op, result in zip(ops, aio.run(self._gather(ops, 2000)), strict=True):
            if isinstance(result, NeedsIdentityCheck):
                again.append(self._cash_op(op.at.seconds, IdCheck(self.customers[op.number], op.actor), op.number,
                                           op.kind, op.amount_cents))
            elif isinstance(result, Exception) and not isinstance(result, SKIPPED):
                raise result
        if again:
            results = aio.run(self._gather(again, 2000))
            unexpected = [r for r in results if isinstance(r, Exception) and not isinstance(r, SKIPPED)]
            assert not unexpected, unexpected[:3]

    def timed_postings(self, count) -> float:
        """count cash postings through the real path, four at a time: postings a second."""
        async def teller(n, jobs):
            while jobs:
                number, kind, cents = jobs.pop()
                who = self.tellers[n]
                holder = self.customers[number]
                with contextlib.suppress(SKIPPED):
                    await cash_desk.post_cash(self.db, number, kind, cents, who.actor,
                                              drawer=self.open[who.username].account_number, now=self.clock(),
                                              id_check=IdCheck(holder, who.actor))

        jobs = [(self.rng.choice(self.day_accounts), "deposit" if self.rng.random() < 0.6 else "withdrawal",
                 self.rng.randint(10_00, 200_00)) for _ in range(count)]

        async def all_of_them():
            await asyncio.gather(*(teller(n, jobs) for n in range(4)))

        started = time.perf_counter()
        aio.run(all_of_them())
        return count / (time.perf_counter() - started)

    def today(self) -> dict:
        """The measured day: drawers open, the first postings timed, the bulk, the last postings timed, drawers
        closed (the report then shows every amount)."""
        self.open = {t.username: aio.run(drawers.open_drawer(self.db, t, {100_00: FLOAT_NOTES}, now=self.clock()))
                     for t in self.tellers}
        first = self.timed_postings(MEASURED)
        remaining = DAY - 2 * MEASURED
        for start in range(0, remaining, 10_000):
            self.cash_postings(min(10_000, remaining - start), self.clock())
        last = self.timed_postings(MEASURED)
        self._close_drawers(self.clock())
        say(f"  today: {DAY:,} cash transactions; posting rate {first:,.0f}/s at the start, {last:,.0f}/s at the end")
        return {"cash postings/s, day's start": first, "cash postings/s, day's end": last,
                "end/start": last / first}


FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken", "Radia", "Tim"]
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Hamilton", "Thompson",
        "Perlman", "Berners-Lee"]


# Over HTTP

def logged_in(server, name) -> tuple[str, str]:
    """A browser session's cookie, after a real login, and its forms' CSRF token."""
    return browser_login(server, name, PASSWORD)


def timed(server, method, path, cookie=None, body=None, token=True) -> tuple[float, int]:
    conn = server.connection(timeout=300)
    headers = {"Cookie": cookie} if cookie else {}
    if token and server.token and not cookie:
        headers["Authorization"] = f"Bearer {server.token}"
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urllib.parse.urlencode(body)
    started = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    answer = conn.getresponse()
    answer.read()
    elapsed = (time.perf_counter() - started) * 1000
    conn.close()
    return elapsed, answer.status


def p95(values) -> float:
    return sorted(values)[max(0, int(len(values) * 0.95) - 1)]


def http_measures(ledger: Ledger, server) -> dict:
    rng = random.Random(7)
    (teller, csrf), (admin, _) = logged_in(server, TELLERS[0]), logged_in(server, "ada")
    numbers = list(ledger.customers)
    number = numbers[len(numbers) // 2]
    rows = aio.run(ledger.db.read(lambda conn: conn.fetchall(
        "SELECT id FROM journal WHERE account_number = ? ORDER BY id", (number,))))
    deep = rows[len(rows) // 2][0]  # a cursor half way back in the account's history
    receipt = rows[-1][0]
    customer = ledger.customers[number]
    part = "ovela"  # in a twelfth of the names (Lovelace)
    today = ledger.day  # the measured day's business date
    reads = {
        "teller: account page": ("GET", lambda: f"/teller/accounts/{rng.choice(numbers)}", teller, None),
        "teller: search by part of a name": ("POST", lambda: "/", teller, {"query": part, "csrf_token": csrf}),
        "teller: receipt": ("GET", lambda: f"/teller/receipts/{receipt}", teller, None),
        "teller: customer": ("GET", lambda: f"/teller/customers/{customer}", teller, None),
        "teller: my drawer": ("GET", lambda: "/teller/drawer/", teller, None),
        "approvals": ("GET", lambda: "/approvals/", admin, None),
        "API: balance": ("GET", lambda: f"/accounts/{rng.choice(numbers)}/balance", None, None),
        "API: account": ("GET", lambda: f"/accounts/{rng.choice(numbers)}", None, None),
        "API: transactions, deep cursor": ("GET", lambda: f"/accounts/{number}/transactions?cursor={deep}", None,
                                           None),
    }
    results = {}
    for name, (method, path, cookie, body) in reads.items():
        times = []
        for _ in range(READS):
            elapsed, status = timed(server, method, path(), cookie, body)
            assert status in (200, 303), (name, status)
            times.append(elapsed)
        results[f"{name} (p95 ms)"] = p95(times)
    reports = {
        "end of day, JSON": ("GET", f"/reports/end-of-day?date={today}", None),
        "end of day, page": ("GET", f"/admin/end-of-day/?date={today}", admin),
        "end of day, CSV": ("GET", f"/admin/end-of-day/report.csv?date={today}", admin),
        "large cash page": ("GET", "/admin/large-cash/", admin),
    }
    for name, (method, path, cookie) in reports.items():
        times = []
        for _ in range(REPORTS):
            elapsed, status = timed(server, method, path, cookie)
            assert status == 200, (name, status)
            times.append(elapsed)
        results[f"{name} (median ms)"] = statistics.median(times)
    busy, during = threading.Event(), []

    def reports_running():
        for _ in range(REPORTS):
            timed(server, "GET", f"/reports/end-of-day?date={today}")
        busy.set()

    runner = threading.Thread(target=reports_running)
    runner.start()
    while not busy.is_set():
        elapsed, status = timed(server, "GET", f"/accounts/{rng.choice(numbers)}/balance")
        assert status == 200
        during.append(elapsed)
    runner.join()
    results["balance read during end-of-day reports (p95 ms)"] = p95(during)
    return results


def seconds_of(command, env) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=7200)
    assert done.returncode == 0, done.stderr[-2000:]
    return time.perf_counter() - started


# The peak of the verifying process's own memory: VmHWM, of its address space only. (getrusage's ru_maxrss would not
# do: Linux carries the high-water mark across fork and exec, so a child of this process, grown large building the
# ledger, would report this process's peak, not its own.)
VERIFY_WITH_MEMORY = ("import re, sys\nfrom flask.cli import main\nsys.argv = ['flask', '--app', 'atm_web', "
                      "'verify', '--full']\ntry:\n    main()\nfinally:\n    status = open('/proc/self/status').read()\n"
                      "    print('MAXRSS', re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1), file=sys.stderr)\n")


def operations(ledger: Ledger, server: Server) -> dict:
    env = {**server.env}
    results = {"flask init-db, nothing to migrate (s)": seconds_of(
        [sys.executable, "-m", "flask", "--app", "atm_web", "init-db"], env)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", VERIFY_WITH_MEMORY], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=7200)
    assert done.returncode == 0, done.stderr[-2000:]
    results["verify --full (s)"] = time.perf_counter() - started
    results["verify --full, peak memory (MiB)"] = int(re.search(r"MAXRSS (\d+)", done.stderr).group(1)) / 1024
    aio.run(ledger._gather([Posting(account(i), "deposit", 100, "token:after", stamp(None, "UTC"), None)
                            for i in range(1_000)]))
    results["verify, the default run after 1,000 postings (s)"] = seconds_of(
        [sys.executable, "-m", "flask", "--app", "atm_web", "verify"], env)
    return results


def measure(engine: str, size: int, tmp: Path) -> dict:
    if engine == "sqlite" and REUSE and (Path(REUSE) / f"scale-{size}.db").exists():
        where = str(Path(REUSE) / f"scale-{size}.db")
        say(f"{engine}, {size:,} accounts: the ledger built before at {where}")
        ledger = Ledger(where, size)  # migrated to this version of the code, if it is older
        ledger.resume()
        ledger.day = ledger.last_date()
        ledger.close()
        return measure_built(engine, size, where, tmp, ledger, {})
    if engine == "postgresql" and REUSE and (Path(REUSE) / f"scale-{size}.db").exists():
        return copied_to_postgresql(Path(REUSE) / f"scale-{size}.db", size, tmp)
    say(f"{engine}, {size:,} accounts: building")
    if engine == "postgresql":
        where, drop = postgres_database(PG_SERVER)
    else:
        folder = Path(REUSE) if REUSE else tmp
        folder.mkdir(parents=True, exist_ok=True)
        where, drop = str(folder / f"scale-{size}.db"), (lambda: None)
    try:
        built = time.perf_counter()
        ledger = Ledger(where, size)
        ledger.history()
        ledger.people()
        ledger.day_before()
        results = ledger.today()
        ledger.day = ledger.last_date()
        say(f"  built in {time.perf_counter() - built:,.0f} s")
        ledger.close()
        return measure_built(engine, size, where, tmp, ledger, results)
    finally:
        drop()


def copied_to_postgresql(path: Path, size: int, tmp: Path) -> dict:
    """The SQLite ledger kept at `path`, moved to a new PostgreSQL database by `flask copy-ledger` (every row and
    hash as it is, verified there): building it through the app one posting at a time would take hours on
    PostgreSQL here. Then a day of its own on PostgreSQL, through the app (two days after the copied one: its
    posting rates at the start and the end), and measured as any."""
    where, drop = postgres_database(PG_SERVER)
    try:
        say(f"postgresql, {size:,} accounts: copying the ledger built at {path}")
        env = {**os.environ, "DB_PATH": str(path), "SECRET_KEY": SECRET, "PIN_KEY": PIN_KEY}
        env.pop("DATABASE_URL", None)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "atm_web", "copy-ledger", "--to", where],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=7200)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        say(f"  copied and verified in {time.perf_counter() - started:,.0f} s")
        ledger = Ledger(where, size)
        ledger.resume()
        ledger.shift = 2 * 86400
        results = ledger.today()
        ledger.day = ledger.last_date()
        ledger.close()
        return measure_built("postgresql", size, where, tmp, ledger, results)
    finally:
        drop()


def measure_built(engine: str, size: int, where: str, tmp: Path, ledger: Ledger, results: dict) -> dict:
    """Over HTTP and on the command line, on the ledger at `where` (built, or built before and kept)."""
    probe = Ledger(where, size)
    rows = aio.run(probe.db.read(lambda conn: conn.fetchall("SELECT max(id) FROM journal")))[0][0]
    probe.close()
    say(f"  {rows:,} journal rows: measuring")
    results["journal rows"] = rows
    server = Server(where, workers=2, log_path=tmp / f"server-{engine}-{size}.log")
    started = time.perf_counter()
    server.start(timeout=600)
    results["start-up, until /is_alive answers (s)"] = time.perf_counter() - started
    try:
        server.create_token("scale")
        results.update(http_measures(ledger, server))
        ledger = Ledger(where, size)
        results.update(operations(ledger, server))
        ledger.close()
    finally:
        server.stop()
    return results


def write(table: dict) -> None:
    Path(OUT).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "small": SMALL, "large": LARGE, "day": DAY,
                                     "results": table}, indent=1))


def main():
    say(f"bench-scale: {SMALL:,} and {LARGE:,} accounts, {DAY:,} cash transactions today, on {', '.join(ENGINES)}")
    table = {}
    with tempfile.TemporaryDirectory(prefix="atm-scale-") as tmp:
        for engine in ENGINES:
            for size in (SMALL, LARGE):
                table[f"{engine} {size}"] = measure(engine, size, Path(tmp))
                write(table)  # each ledger's figures kept as soon as measured
    names = list(dict.fromkeys(name for results in table.values() for name in results))
    print()
    for engine in ENGINES:
        small, large = table[f"{engine} {SMALL}"], table[f"{engine} {LARGE}"]
        print(f"{engine}: {SMALL:,} accounts | {LARGE:,} accounts | growth")
        for name in names:
            if name not in small or name not in large:
                continue  # measured as a ledger is built: not for a ledger built before
            growth = large[name] / small[name] if small[name] else float("nan")
            print(f"  {name}: {small[name]:,.1f} | {large[name]:,.1f} | x{growth:.2f}")
    write(table)
    print(f"\n(written to {OUT})")


if __name__ == "__main__":
    main()
