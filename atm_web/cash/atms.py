"""ATMs: cash devices of the branch, registered by an administrator with 1 to 4 cassettes of one denomination each.

Each ATM has a cash account of its own ('@atm-<id>', of the kind of a drawer's: never below zero, counted in the
day's proof), so its expected cash is that account's balance, negated (cash stands at minus the notes held), and
its expected notes per cassette are kept (atm_cassettes.notes, never below zero: a CHECK) by the transactions that
move its cash: a replenishment (replenishment.py) and, at the ATM, a dispense.
"""
from dataclasses import dataclass

from atm_web.cash.atm_journal import record_in
from atm_web.cash.refusals import AtmNotFound, AtmRefused
from atm_web.core import audit
from atm_web.core.money import format_cents
from atm_web.core.rules import ATM_PREFIX
from atm_web.core.settings import settings_of
from atm_web.ledger.accounts import balances_in, open_bank_account_in
from atm_web.ledger.journal import posting_stamp
from atm_web.storage import Database, IntegrityError

CASSETTES_MAX = 4
NAME_MAX, LOCATION_MAX = 60, 120
NOTE_MIN_CENTS = 100  # a cassette holds notes: 1.00 and up


@dataclass(frozen=True)
class Cassette:
    position: int
    denomination_cents: int
    notes: int  # expected: loaded less paid out
    reserved: int = 0  # of them, for withdrawals under way (atm_withdrawals.py)

    @property
    def cents(self) -> int:
        return self.notes * self.denomination_cents


@dataclass(frozen=True)
class Atm:
    id: int
    name: str
    location: str
    account_number: str
    created_at: str
    created_by: str
    dispenser: str = "screen"  # or "device": a real dispenser's agent reports the cash (atm_device_api.py)
    cassettes: tuple[Cassette, ...] = ()
    cash_cents: int = 0  # expected: its cash account's balance, negated

    @property
    def label(self) -> str:
        return f"ATM {self.id} ({self.name})"


async def _atms_in(conn, where: str, params=()) -> list[Atm]:
    rows = await conn.fetchall("SELECT id, name, location, account_number, created_at, created_by, dispenser "
                               f"FROM atms WHERE {where} ORDER BY id", params)
    if not rows:
        return []
    ids = [row[0] for row in rows]
    cassettes: dict[int, list[Cassette]] = {atm_id: [] for atm_id in ids}
    for atm_id, position, cents, notes, reserved in await conn.fetchall(
            "SELECT atm_id, position, denomination_cents, notes, reserved FROM atm_cassettes WHERE atm_id IN "
            f"({','.join('?' * len(ids))}) ORDER BY atm_id, position", ids):
        cassettes[atm_id].append(Cassette(position, cents, notes, reserved))
    balances = await balances_in(conn, [row[3] for row in rows])
    return [Atm(*row, tuple(cassettes[row[0]]), -balances[row[3]]) for row in rows]


async def atm_in(conn, atm_id: int) -> Atm:
    """The ATM (AtmNotFound when there is none), in the caller's transaction."""
    found = await _atms_in(conn, "id = ?", (atm_id,))
    if not found:
        raise AtmNotFound()
    return found[0]


async def get_atm(db: Database, atm_id: int) -> Atm:
    return await db.read(lambda conn: atm_in(conn, atm_id), snapshot=True)


async def all_atms(db: Database) -> list[Atm]:
    return await db.read(lambda conn: _atms_in(conn, "true"), snapshot=True)


def note_denominations(db: Database) -> list[int]:
    """The branch's notes (DENOMINATIONS of 1.00 and up): what a cassette or a bin holds."""
    return [cents for cents in settings_of(db).denominations if cents >= NOTE_MIN_CENTS]


def _text(value, what: str, most: int) -> str:
    text = " ".join(value.split()) if isinstance(value, str) else ""
    if not 1 <= len(text) <= most:
        raise AtmRefused(f"{what}: 1 to {most} characters.")
    return text


DISPENSERS = {"screen": "None: the screen reports (I have taken my cash)", "device": "A dispenser's agent reports"}


async def register_atm(db: Database, name: str, location: str, denominations, admin, now: float,
                       dispenser: str = "screen") -> Atm:
    """A new ATM with its cassettes (a denomination each, notes of DENOMINATIONS, 1.00 and up), its cash account and
    its dispenser (DISPENSERS), audited and in its journal. Its cassettes start empty: a replenishment loads them."""
    if dispenser not in DISPENSERS:
        raise AtmRefused("The dispenser is the screen's or a device's.")
    name, location = _text(name, "Name", NAME_MAX), _text(location, "Location", LOCATION_MAX)
    denominations = list(denominations or ())
    allowed = note_denominations(db)
    if not 1 <= len(denominations) <= CASSETTES_MAX:
        raise AtmRefused(f"An ATM has 1 to {CASSETTES_MAX} cassettes.")
    if any(cents not in allowed for cents in denominations):
        raise AtmRefused("Each cassette holds notes of one of the branch's denominations: "
                         + ", ".join(format_cents(cents) for cents in allowed) + ".")
    at = posting_stamp(db, now)

    async def op(conn):
        async with conn.savepoint():
            if await conn.fetchall("SELECT 1 FROM atms WHERE name = ?", (name,)):
                raise AtmRefused(f"An ATM named {name} is registered already.")
            (atm_id,), = await conn.fetchall("SELECT coalesce(max(id), 0) + 1 FROM atms")
            number = f"{ATM_PREFIX}{atm_id}"
            await open_bank_account_in(conn, number, "drawer", at.created_at)
            try:
                async with conn.refusable():
                    await conn.execute("INSERT INTO atms (id, name, location, account_number, created_at, created_by, "
                                       "dispenser) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                       (atm_id, name, location, number, at.created_at, admin.actor, dispenser))
            except IntegrityError:
                raise AtmRefused(f"An ATM named {name} is registered already.") from None
            for position, cents in enumerate(denominations, start=1):
                await conn.execute("INSERT INTO atm_cassettes (atm_id, position, denomination_cents) VALUES (?, ?, ?)",
                                   (atm_id, position, cents))
            detail = ("cassettes " + ", ".join(format_cents(cents) for cents in denominations)
                      + f"; dispenser: {dispenser}")
            await record_in(conn, atm_id, at.created_at, "registered", f"{name}, {location}; {detail}", admin.actor)
            await audit.record(conn, now, admin.actor, "atm registered", f"atm {atm_id}", f"{name}; {detail}")
            return await atm_in(conn, atm_id)

    return await db.write(op)
