"""Replenishing an ATM: a blind exchange with four eyes. The person at the ATM enters the count of what was left
(each cassette's notes, the deposit bin's and the retract bin's by denomination) and the notes loaded into each
cassette, without seeing what the books expect; a request is held for a second person (a supervisor or an
administrator, not the same: approvals), whose approval carries it out, in one transaction (confirm_in): the
counted cash back to the vault, the variance (counted minus expected) to cash over or cash short, the loaded cash
from the vault into the ATM (refused when the vault holds less), the cassettes' expected notes set to the loaded
ones. A variance beyond VARIANCE_TOLERANCE then waits for a sign-off (a second request), as a drawer's close does.

One replenishment of an ATM is open at a time (a unique index); one whose request was declined or expired is
cancelled (at the decline, or when the next one is entered).
"""
import json
from dataclasses import dataclass, field

from atm_web.approvals import requests as approvals
from atm_web.cash.atm_journal import record_in
from atm_web.cash.atm_withdrawals import HOLD_SECONDS, expire_due_in
from atm_web.cash.atms import atm_in, note_denominations
from atm_web.cash.drawers import cash_entry, counts_total
from atm_web.cash.refusals import AtmRefused
from atm_web.core import audit
from atm_web.core.money import format_cents
from atm_web.core.rules import CASH_OVER, CASH_SHORT, VAULT
from atm_web.ledger.accounts import balance_in
from atm_web.ledger.journal import posting_stamp
from atm_web.storage import Database

NOTES_MAX = 10_000  # notes in one cassette or bin, at most
_COLUMNS = ("id, atm_id, status, counted, loaded, counted_cents, loaded_cents, entered_by, entered_at, confirmed_by, "
            "confirmed_at, expected_cents, expected_notes, variance_cents, entry_id, signed_off_by, signoff_note")


@dataclass(frozen=True)
class Count:
    """What was found in an ATM: each cassette's notes {position: notes}, and the deposit and retract bins' notes
    by denomination {cents: notes}."""
    cassettes: dict[int, int]
    deposit_bin: dict[int, int] = field(default_factory=dict)
    retract_bin: dict[int, int] = field(default_factory=dict)

    def cents(self, denominations: dict[int, int]) -> int:
        """The cash counted, given each cassette's denomination {position: cents}."""
        return (sum(notes * denominations[position] for position, notes in self.cassettes.items())
                + counts_total(self.deposit_bin) + counts_total(self.retract_bin))

    def as_json(self) -> str:
        return json.dumps({"cassettes": {str(p): n for p, n in sorted(self.cassettes.items())},
                           "deposit_bin": {str(c): n for c, n in sorted(self.deposit_bin.items()) if n},
                           "retract_bin": {str(c): n for c, n in sorted(self.retract_bin.items()) if n}})

    @classmethod
    def from_json(cls, text: str) -> "Count":
        data = json.loads(text)
        return cls(*({int(key): number for key, number in data[part].items()}
                     for part in ("cassettes", "deposit_bin", "retract_bin")))


@dataclass(frozen=True)
class Replenishment:
    id: int
    atm_id: int
    status: str  # pending (waiting for confirmation), pending_signoff, done, cancelled
    counted_text: str
    loaded_text: str
    counted_cents: int
    loaded_cents: int
    entered_by: str
    entered_at: str
    confirmed_by: str | None
    confirmed_at: str | None
    expected_cents: int | None
    expected_notes_text: str | None
    variance_cents: int | None
    entry_id: int | None
    signed_off_by: str | None
    signoff_note: str | None

    @property
    def counted(self) -> Count:
        return Count.from_json(self.counted_text)

    @property
    def loaded(self) -> dict[int, int]:
        return {int(position): notes for position, notes in json.loads(self.loaded_text).items()}

    @property
    def expected_notes(self) -> dict[int, int]:
        return {int(p): n for p, n in json.loads(self.expected_notes_text or "{}").items()}


async def _replenishments_in(conn, where: str, params=()) -> list[Replenishment]:
    rows = await conn.fetchall(f"SELECT {_COLUMNS} FROM atm_replenishments WHERE {where}", params)
    return [Replenishment(*row) for row in rows]


async def latest(db: Database, atm_id: int) -> Replenishment | None:
    found = await db.read(lambda conn: _replenishments_in(conn, "atm_id = ? ORDER BY id DESC LIMIT 1", (atm_id,)))
    return found[0] if found else None


def _checked(numbers: dict, keys, what: str) -> dict[int, int]:
    if set(numbers) - set(keys):
        raise AtmRefused(f"{what}: count only what the ATM holds.")
    for number in numbers.values():
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= NOTES_MAX:
            raise AtmRefused(f"{what}: a whole number of notes from 0 to {NOTES_MAX:,}.")
    return {key: numbers.get(key, 0) for key in keys}


async def _cancel_stale_in(conn, atm_id: int, now: float) -> None:
    """A replenishment still 'pending' whose confirmation request was declined or expired is cancelled."""
    await conn.execute(
        "UPDATE atm_replenishments SET status = 'cancelled' WHERE atm_id = ? AND status = 'pending' AND NOT EXISTS "
        "(SELECT 1 FROM approvals a WHERE a.replenishment_id = atm_replenishments.id "
        "AND a.kind = 'atm_replenishment' AND a.status = 'pending' AND a.expires_at > ?)", (atm_id, now))


async def enter(db: Database, atm_id: int, counted: Count, loaded: dict[int, int], teller, now: float):
    """The count of what was left and the notes loaded, held for a second person's confirmation: the request."""
    at = posting_stamp(db, now)
    notes = note_denominations(db)

    async def op(conn):
        async with conn.savepoint():
            atm = await atm_in(conn, atm_id)
            positions = {cassette.position: cassette.denomination_cents for cassette in atm.cassettes}
            count = Count(_checked(counted.cassettes, positions, "Cassettes"),
                          _checked(counted.deposit_bin, notes, "Deposit bin"),
                          _checked(counted.retract_bin, notes, "Retract bin"))
            load = _checked(loaded, positions, "Notes loaded")
            await _cancel_stale_in(conn, atm_id, now)
            if await _replenishments_in(conn, "atm_id = ? AND status IN ('pending', 'pending_signoff')", (atm_id,)):
                raise AtmRefused(f"{atm.label} has a replenishment waiting already: it must be confirmed (or "
                                 "declined, or signed off) first.")
            counted_cents = count.cents(positions)
            loaded_cents = sum(n * positions[p] for p, n in load.items())
            (replenishment_id,), = await conn.fetchall(
                "INSERT INTO atm_replenishments (atm_id, status, counted, loaded, counted_cents, loaded_cents, "
                "entered_by, entered_at) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?) RETURNING id",
                (atm_id, count.as_json(), json.dumps({str(p): n for p, n in sorted(load.items())}), counted_cents,
                 loaded_cents, teller.username, at.created_at))
            what = f"counted {format_cents(counted_cents)}, loading {format_cents(loaded_cents)}"
            await record_in(conn, atm_id, at.created_at, "replenishment entered", f"R{replenishment_id}: {what}",
                            teller.actor)
            return await approvals.hold_in(conn, "atm_replenishment", teller, now, replenishment_id=replenishment_id,
                                           detail=f"{atm.label}: {what}")

    return await db.write(op)


async def confirm_in(conn, replenishment_id: int, requester, approver, now: float, tolerance_cents: int,
                     at) -> int:
    """Carry out an approved replenishment (in the decision's transaction): the return of the counted cash, its
    variance, the load; the cassettes' notes; a sign-off request beyond the tolerance. The return's transaction id."""
    found = await _replenishments_in(conn, "id = ? AND status = 'pending'", (replenishment_id,))
    if not found:
        raise AtmRefused("This replenishment is not waiting for confirmation: nothing was done.")
    done = found[0]
    await expire_due_in(conn, done.atm_id, at.created_at, approver.actor)  # a result that never came: counted now
    if await conn.fetchall("SELECT 1 FROM atm_withdrawals WHERE atm_id = ? AND status = 'pending'", (done.atm_id,)):
        raise AtmRefused("A customer's withdrawal is under way at this ATM: confirm the replenishment once it ends "
                         f"(within {HOLD_SECONDS // 60} minutes).")
    atm = await atm_in(conn, done.atm_id)
    expected = -await balance_in(conn, atm.account_number)
    variance, name = done.counted_cents - expected, f"{atm.label}, replenishment R{done.id}"
    back = await cash_entry(conn, [
        (atm.account_number, "credit", expected, f"replenishment R{done.id}: cash taken out"),
        (VAULT, "debit", done.counted_cents, f"counted out of {name}"),
        (CASH_SHORT, "debit", max(0, -variance), f"short at {name}"),
        (CASH_OVER, "credit", max(0, variance), f"over at {name}")], requester.actor, at, "the vault")
    await cash_entry(conn, [(VAULT, "credit", done.loaded_cents, f"loaded into {name}"),
                            (atm.account_number, "debit", done.loaded_cents, f"replenishment R{done.id}: loaded")],
                     requester.actor, at, "the vault")
    for position, notes in done.loaded.items():
        await conn.execute("UPDATE atm_cassettes SET notes = ? WHERE atm_id = ? AND position = ?",
                           (notes, atm.id, position))
    status = "pending_signoff" if abs(variance) > tolerance_cents else "done"
    expected_notes = json.dumps({str(c.position): c.notes for c in atm.cassettes})
    entry_id = back[0].entry_id if back else None
    await conn.execute(
        "UPDATE atm_replenishments SET status = ?, confirmed_by = ?, confirmed_at = ?, expected_cents = ?, "
        "expected_notes = ?, variance_cents = ?, entry_id = ? WHERE id = ?",
        (status, approver.username, at.created_at, expected, expected_notes, variance, entry_id, done.id))
    detail = (f"R{done.id}: counted {format_cents(done.counted_cents)}, expected {format_cents(expected)}, variance "
              f"{format_cents(variance)}, loaded {format_cents(done.loaded_cents)}; entered by {done.entered_by}, "
              f"confirmed by {approver.username}")
    await record_in(conn, atm.id, at.created_at, "replenished", detail, approver.actor)
    await audit.record(conn, now, approver.actor, "atm replenished", f"atm {atm.id}", detail
                       + ("; pending sign-off" if status != "done" else ""))
    if status != "done":  # four eyes on the variance, as a drawer's close
        await approvals.hold_in(conn, "atm_signoff", requester, now, replenishment_id=done.id,
                                detail=f"{atm.label}, R{done.id}: variance {format_cents(variance)}")
    return entry_id


async def cancel_in(conn, replenishment_id: int, actor: str, at) -> None:
    """A declined confirmation cancels its replenishment (nothing was moved), in the decision's transaction."""
    rows = await conn.fetchall("UPDATE atm_replenishments SET status = 'cancelled' WHERE id = ? AND status = 'pending' "
                               "RETURNING atm_id", (replenishment_id,))
    if rows:
        await record_in(conn, rows[0][0], at.created_at, "replenishment cancelled", f"R{replenishment_id}", actor)


async def sign_off_in(conn, replenishment_id: int, approver, note: str, now: float, at) -> None:
    """Sign off a replenishment's variance beyond tolerance (another person than who entered or confirmed it)."""
    found = await _replenishments_in(conn, "id = ? AND status = 'pending_signoff'", (replenishment_id,))
    if not found:
        raise AtmRefused("This replenishment is not waiting for a sign-off.")
    done = found[0]
    if approver.username in (done.entered_by, done.confirmed_by):
        raise AtmRefused("Another supervisor must sign off a replenishment you entered or confirmed.")
    await conn.execute("UPDATE atm_replenishments SET status = 'done', signed_off_by = ?, signoff_note = ? "
                       "WHERE id = ?", (approver.username, note, replenishment_id))
    await record_in(conn, done.atm_id, at.created_at, "variance signed off", f"R{done.id}: {note}", approver.actor)
    await audit.record(conn, now, approver.actor, "atm replenishment signed off", f"atm {done.atm_id}",
                       f"R{done.id}: {note}")


async def waiting_in(conn, now: float) -> list[int]:
    """The ATMs whose replenishment waits (for its confirmation, in time, or for a sign-off): Close the day waits."""
    rows = await conn.fetchall(
        "SELECT r.atm_id FROM atm_replenishments r WHERE r.status = 'pending_signoff' OR (r.status = 'pending' AND "
        "EXISTS (SELECT 1 FROM approvals a WHERE a.replenishment_id = r.id AND a.kind = 'atm_replenishment' "
        "AND a.status = 'pending' AND a.expires_at > ?)) ORDER BY r.atm_id", (now,))
    return [atm_id for atm_id, in rows]
