"""Fixtures: an app on a real database of each engine (a SQLite file in tmp_path; a fresh PostgreSQL database),
its test client and CLI runner, the ledger, and raw SQL behind the app's back.

Every test that uses `database` (or `app`, `client`, `db`...) runs once per engine, unless marked
`@pytest.mark.sqlite_only` (it is about the file: pragmas, flock, WAL). PostgreSQL is the one every machine here
runs (ATM_TEST_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test names the server and the database
to connect to while creating one database per test); when it is not reachable its tests skip with one line
saying how to start it, unless ATM_REQUIRE_POSTGRES=1 (CI), where they fail.

`client` is a logged-in teller that also carries a read-write API token, so tests of pages and endpoints run
as an authorised user; tests/test_security.py covers everyone else.
"""
import contextlib
import os
import secrets
import shutil
import sqlite3
import time
import uuid
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from werkzeug.security import generate_password_hash

from atm_web import create_app
from atm_web.approvals.decisions import decide as decide_request
from atm_web.cash import atms, replenishment, vault
from atm_web.cash.replenishment import Count
from atm_web.customers import cards
from atm_web.ledger.journal import append_pair, posting_stamp
from atm_web.serving import aio
from atm_web.staff import login_sessions, tellers, tokens

PASSWORD = "correct horse battery"
ENGINES = ("sqlite", "postgresql")
PG_URL = os.environ.get("ATM_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"


def pytest_generate_tests(metafunc):
    if "engine" in metafunc.fixturenames:
        engines = list(ENGINES)
        if metafunc.definition.get_closest_marker("sqlite_only"):
            engines = ["sqlite"]
        elif metafunc.definition.get_closest_marker("postgresql_only"):
            engines = ["postgresql"]
        metafunc.parametrize("engine", engines, indirect=True, scope="function")


@cache
def password_hash(password: str = PASSWORD) -> str:
    return generate_password_hash(password)  # werkzeug's default (scrypt), computed once per run


class Clock:
    """A clock tests can move: app.config['CLOCK']."""

    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now

    def advance(self, seconds: float):
        self.now += seconds


# PostgreSQL: one fresh database per test

@cache
def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used for tests here, or None."""
    try:
        import psycopg
        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as error:
        return f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"


def require_postgres():
    problem = postgres_problem()
    if problem is None:
        return
    message = f"PostgreSQL not reachable at {PG_URL} ({problem}): start it with `{PG_START}`"
    if os.environ.get("ATM_REQUIRE_POSTGRES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _url_of(name: str) -> str:
    return urlunsplit(urlsplit(PG_URL)._replace(path=f"/{name}"))


@cache
def _migrated_template() -> str:
    """A database with today's migrations applied, to copy from (one per set of migration files, kept between
    runs): a copy takes a fraction of the time of migrating a new database."""
    import hashlib

    import psycopg

    from atm_web.storage.migrate import migrations
    from atm_web.storage.postgresql import PostgresDatabase
    digest = hashlib.sha256("".join(m.sql for m in migrations("postgresql")).encode()).hexdigest()[:12]
    name = f"atm_test_template_{digest}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return name
        for (old,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'atm_test_template_%'"
                                   ).fetchall():  # templates of earlier migrations, unless in use
            with contextlib.suppress(psycopg.errors.ObjectInUse):
                conn.execute(f"DROP DATABASE IF EXISTS {old}")
        building = f"{name}_{secrets.token_hex(3)}"
        conn.execute(f"CREATE DATABASE {building}")
    database = PostgresDatabase(_url_of(building), 0, pool_size=2)
    aio.run(database.open())
    aio.run(database.close())
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        try:
            conn.execute(f"ALTER DATABASE {building} RENAME TO {name}")
        except psycopg.errors.DuplicateDatabase:  # another run built it meanwhile
            conn.execute(f"DROP DATABASE {building} WITH (FORCE)")
    return name


def new_postgres_database(migrated: bool = True) -> str:
    """A new database on the test server (migrated to today's schema, else empty); its URL."""
    import psycopg
    name = f"atm_test_{secrets.token_hex(6)}"
    template = f" TEMPLATE {_migrated_template()}" if migrated else ""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}{template}")
    return _url_of(name)


def drop_postgres_database(url: str) -> None:
    import psycopg
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {urlsplit(url).path.strip('/')} WITH (FORCE)")


@pytest.fixture
def engine(request):
    if request.param == "postgresql":
        require_postgres()
    return request.param


@cache
def _sqlite_template() -> Path:
    """A SQLite file with today's migrations applied (one per run): a test's ledger starts as a copy of it, which
    takes a tenth of the time of migrating a new file (the same as PostgreSQL's template database)."""
    import tempfile

    from atm_web.ledger.accounts import LEDGER_STARTUP
    from atm_web.storage.sqlite import SQLiteDatabase
    path = Path(tempfile.mkdtemp(prefix="atm-test-template-")) / "template.db"
    template = SQLiteDatabase(str(path), 0, startup=LEDGER_STARTUP)
    aio.run(template.open())
    aio.run(template.close())  # the last connection closed: the WAL is checkpointed into the file
    return path


@pytest.fixture
def database(engine, tmp_path):
    """Where the test's ledger lives: a SQLite file's path (a migrated one), or a fresh PostgreSQL database's URL."""
    if engine == "sqlite":
        shutil.copyfile(_sqlite_template(), tmp_path / "atm.db")
        yield tmp_path / "atm.db"
        return
    url = new_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def db_path(engine, database):
    """The SQLite file of a test that is about the file (mark it sqlite_only)."""
    assert engine == "sqlite", "db_path is the SQLite file: mark the test sqlite_only or use `raw`"
    return database


class Raw:
    """SQL straight to the test's database, behind the app's back: to check what was written, or to tamper."""

    def __init__(self, database):
        self.is_postgres = str(database).startswith("postgresql://")
        self.database = database
        if self.is_postgres:
            import psycopg
            self.IntegrityError = psycopg.errors.IntegrityError
        else:
            self.IntegrityError = sqlite3.IntegrityError

    def _connect(self):
        if self.is_postgres:
            import psycopg
            return psycopg.connect(self.database, autocommit=True)
        conn = sqlite3.connect(self.database, isolation_level=None)
        return conn

    def _run(self, conn, sql: str, params):
        if not self.is_postgres:
            return conn.execute(sql, params)
        if not params:
            return conn.execute(sql)
        return conn.execute(sql.replace("%", "%%").replace("?", "%s"), params)

    def rows(self, sql: str, params=()) -> list[tuple]:
        conn = self._connect()
        try:
            return [tuple(row) for row in self._run(conn, sql, params).fetchall()]
        finally:
            conn.close()

    def scalar(self, sql: str, params=()):
        return self.rows(sql, params)[0][0]

    def execute(self, sql: str, params=()) -> None:
        conn = self._connect()
        try:
            self._run(conn, sql, params)
        finally:
            conn.close()

    def script(self, sqlite_sql: str, postgresql_sql: str) -> None:
        """Run the statement(s) written for this engine (tampering differs by dialect)."""
        conn = self._connect()
        try:
            if self.is_postgres:
                conn.execute(postgresql_sql)
            else:
                conn.executescript(sqlite_sql)
        finally:
            conn.close()

    def journal_count(self) -> int:
        """The customers' journal rows (each posting's other side, on the bank's own accounts, is not counted:
        test_double_entry checks it, refusals included)."""
        return self.scalar("SELECT COUNT(*) FROM journal WHERE account_number NOT LIKE '@%'")

    def all_rows_count(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM journal")

    def without_immutability(self, sql: str) -> None:
        """Run an UPDATE or DELETE on the journal as an intruder would: with its guarding triggers dropped."""
        if self.is_postgres:
            self.execute("ALTER TABLE journal DISABLE TRIGGER USER")
            try:
                self.execute(sql)
            finally:
                self.execute("ALTER TABLE journal ENABLE TRIGGER USER")
        else:
            self.script("DROP TRIGGER journal_no_update; DROP TRIGGER journal_no_delete; " + sql + ";",
                        "")


@pytest.fixture
def raw(database):
    return Raw(database)


# The app

def make_app(where, **overrides):
    """An app on `where`: a SQLite file's path, or a PostgreSQL database's URL."""
    location = str(where)
    config = {"SECRET_KEY": "test-secret", "PIN_KEY": "test-pin-key-0123456789", "TESTING": True,
              "WTF_CSRF_ENABLED": False, **overrides}
    if location.startswith("postgresql://"):
        config["DATABASE_URL"] = location
    else:
        config["DB_PATH"] = location
    return create_app(config)


def close_app(app):
    aio.run(app.extensions["atm_db"].close())


def add_teller(app, username, role="teller"):
    return aio.run(tellers.create_teller(app.extensions["atm_db"], username, password_hash(), role, "test",
                                       app.config["CLOCK"]()))


def open_drawer(app, teller, float_cents=10_000_000):
    """Cash for a teller's counter: the vault receives float_cents (one shipment) and the teller's drawer opens
    with all of it (in 100.00 notes and cents), so their cash deposits and withdrawals can be posted."""
    from atm_web.cash import drawers, vault
    db = app.extensions["atm_db"]
    admin = tellers.Teller(0, "vault-keeper", "admin", True, "")
    if float_cents:
        aio.run(vault.ship_cash(db, "in", float_cents, "test float", admin))
    return aio.run(drawers.open_drawer(db, teller, {10000: float_cents // 10000, 1: float_cents % 10000}))


def holder_fields(name="Holly Holder", document_number=None, **changes) -> dict:
    """The form fields of a new customer as the holder of an account a teller's form opens."""
    return {"holder": "new", "full_name": name, "date_of_birth": "1980-02-29", "document_type": "passport",
            "document_number": document_number or secrets.token_hex(5).upper(), "document_country": "US",
            "address": "1 Main Street, Springfield", "phone": "+1 555 0100", **changes}


def log_in(app, client, teller):
    session_id = aio.run(login_sessions.start_session(app.extensions["atm_db"], teller.id, app.config["CLOCK"]()))
    with client.session_transaction() as session:
        session["sid"] = session_id
    return client


def decide(client, response, approve=True, note="checked"):
    """As the approver logged in on client: approve (or decline) the request a teller's held form redirected to."""
    approval_id = int(response.location.rstrip("/").rsplit("/", 1)[1])
    return client.post(f"/approvals/{approval_id}", data={"note": note, ("approve" if approve else "decline"): "y"})


def add_token(app, name="test-script", read_only=False, admin=False):
    return aio.run(tokens.create_token(app.extensions["atm_db"], name, read_only, "test", app.config["CLOCK"](),
                                      admin))[1]


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def app(database, clock):
    app = make_app(database, CLOCK=clock)
    yield app
    close_app(app)


@pytest.fixture
def client(app):
    """Tina, a teller logged in with her drawer open (empty: no journal row yet), and an API token."""
    tina = add_teller(app, "tina")
    open_drawer(app, tina, 0)
    client = log_in(app, app.test_client(), tina)
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(app)}"
    return client


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    return app.extensions["atm_db"]


@pytest.fixture
def run():
    """Run a coroutine on the process loop, where the app's connections live."""
    return aio.run


ROOT = Path(__file__).resolve().parent.parent


def many_rows(run, db, accounts_count: int) -> None:
    """accounts_count accounts of two deposits each, written a thousand postings a transaction (the app's own
    statement: hash chains and balances as a teller's would be)."""
    at = posting_stamp(db, None)

    async def op(conn, start):
        for i in range(start, min(start + 500, accounts_count)):
            for cents in (100, 250):
                await append_pair(conn, f"M{i}", "deposit", cents, "@clearing", "", "t", at)

    for start in range(0, accounts_count, 500):
        run(db.write(lambda conn, start=start: op(conn, start)))


# An ATM and its customer

@pytest.fixture
def atm_bank(app, client, db, run, raw, clock):
    """Holly holds C1 (2,000.00) and C2 (500.00), a card for both (C1 the default); an ATM with 50s and 20s, 100
    each (7,000.00), loaded by ada and confirmed by sam. The card's number and PIN-setting code too."""
    for number, amount, fields in (("C1", "2000", holder_fields("Holly Holder", document_number="HH1")),
                                   ("C2", "500", None)):
        if fields is None:
            (customer_id,), = raw.rows("SELECT id FROM customers")
            fields = {"holder": str(customer_id)}
        answer = client.post("/teller/transactions", data={"account_number": number, "amount": amount,
                                                           "deposit": "Deposit", "form_key": uuid.uuid4().hex,
                                                           "confirm_open": "yes", **fields})
        assert answer.status_code == 303
    (customer_id,), = raw.rows("SELECT id FROM customers")
    ada, sam = add_teller(app, "ada", "admin"), add_teller(app, "sam", "supervisor")
    issued = run(cards.issue_card(db, customer_id, ["C1", "C2"], "C1", ada, clock()))
    assert run(vault.ship_cash(db, "in", 2_000_000, "CIT 1", ada))
    atm = run(atms.register_atm(db, "Lobby", "Main Street", [5000, 2000], ada, clock()))
    load_atm(db, run, atm, ada, sam, clock, Count({1: 0, 2: 0}, {}, {}), {1: 100, 2: 100})
    return {"card": issued.card, "number": issued.number, "code": issued.code, "atm": atm, "ada": ada, "sam": sam}


def load_atm(db, run, atm, ada, sam, clock, count, notes):
    """A replenishment of the ATM entered by ada and confirmed by sam."""
    held = run(replenishment.enter(db, atm.id, count, notes, ada, clock()))
    return run(decide_request(db, held.id, sam, True, "counted", now=clock()))
