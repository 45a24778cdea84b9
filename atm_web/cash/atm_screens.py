"""ATM screens: a browser paired with an ATM, and the customer's session at it.

Pairing: an administrator makes a one-time link for an ATM (its code good for PAIRING_SECONDS, kept as a digest
keyed with PIN_KEY); the kiosk's browser opens it and is given a device cookie ("<screen id>.<secret>", the secret
kept as a keyed digest: the database alone cannot make a cookie that works). Unpairing (audited) ends the screen's
cookie for good.

The customer's session lives on the screen's row, one at a time: a random token its pages carry (a page of an ended
session finds a different token, or none, and shows Welcome), the step, the card (the keyed digest of its number,
never the number; its id once the PIN is accepted), the account chosen, the withdrawal under way (its trace
number), and the time of the last touch (the idle timeout). Every change is one conditional write, so a form sent
twice or by two tabs finds the session moved on and changes nothing.
"""
import json
import secrets
from dataclasses import dataclass

from atm_web.cash.atm_journal import record_in
from atm_web.cash.atms import Atm, atm_in
from atm_web.cash.refusals import AtmRefused
from atm_web.core import audit
from atm_web.core.clock import journal_time
from atm_web.core.settings import settings_of
from atm_web.customers import pins
from atm_web.storage import Database

PAIRING_SECONDS = 600
CARD_ATTEMPTS_WINDOW = 60.0  # seconds: ATM_CARD_ATTEMPTS_PER_MINUTE counts the attempts within it
_COLUMNS = ("id, atm_id, paired_at, unpaired_at, session_token, session_step, card_digest, card_id, account_number, "
            "trace, seen_at")


@dataclass(frozen=True)
class Screen:
    id: int
    atm_id: int
    paired_at: str | None
    unpaired_at: str | None
    session_token: str | None
    step: str | None  # None: Welcome
    card_digest: str | None
    card_id: int | None
    account_number: str | None
    trace: int | None
    seen_at: float | None
    atm: Atm | None = None


def _digest(db: Database, purpose: str, secret: str) -> str:
    return pins.keyed(settings_of(db).pin_key, purpose, secret)


async def _screen_in(conn, where: str, params) -> Screen | None:
    rows = await conn.fetchall(f"SELECT {_COLUMNS} FROM atm_screens WHERE {where}", params)
    if not rows:
        return None
    screen = Screen(*rows[0])
    return Screen(*rows[0], atm=await atm_in(conn, screen.atm_id))


async def pairing_link(db: Database, atm_id: int, admin, now: float) -> str:
    """A new one-time pairing code for the ATM (good for PAIRING_SECONDS), audited and journaled; the code, shown
    once to the administrator as a link."""
    code = secrets.token_urlsafe(24)
    at = journal_time(now)

    async def op(conn):
        atm = await atm_in(conn, atm_id)
        await conn.execute("INSERT INTO atm_screens (atm_id, code_digest, code_expires, created_at, created_by) "
                           "VALUES (?, ?, ?, ?, ?)", (atm.id, _digest(db, "atm-pairing", code),
                                                      journal_time(now + PAIRING_SECONDS), at, admin.actor))
        await record_in(conn, atm.id, at, "pairing link made", f"good for {PAIRING_SECONDS // 60} minutes",
                        admin.actor)
        await audit.record(conn, now, admin.actor, "atm pairing link", f"atm {atm.id}", "")
    await db.write(op)
    return code


async def pairing_atm(db: Database, code: str, now: float) -> Atm | None:
    """The ATM a pairing code (not used, not expired) pairs with, or None."""
    screen = await db.read(lambda conn: _screen_in(conn, "code_digest = ? AND code_expires > ?",
                                                   (_digest(db, "atm-pairing", code or ""), journal_time(now))))
    return None if screen is None else screen.atm


async def pair(db: Database, code: str, now: float) -> tuple[Screen, str]:
    """Use the pairing code: the screen, and its device cookie's value (AtmRefused for a code used, expired or
    unknown: the same words for each)."""
    secret = secrets.token_urlsafe(32)
    at = journal_time(now)

    async def op(conn):
        rows = await conn.fetchall(
            "UPDATE atm_screens SET code_digest = NULL, code_expires = NULL, device_digest = ?, paired_at = ? "
            "WHERE code_digest = ? AND code_expires > ? RETURNING id, atm_id",
            (_digest(db, "atm-device", secret), at, _digest(db, "atm-pairing", code or ""), at))
        if not rows:
            raise AtmRefused("This pairing link is not valid (used, expired or mistyped): make a new one on the "
                             "ATM's page.")
        screen_id, atm_id = rows[0]
        await record_in(conn, atm_id, at, "screen paired", f"screen {screen_id}", "atm-screen")
        await audit.record(conn, now, "atm-screen", "atm screen paired", f"atm {atm_id}", f"screen {screen_id}")
        return await _screen_in(conn, "id = ?", (screen_id,))
    screen = await db.write(op)
    return screen, f"{screen.id}.{secret}"


async def screen_of(db: Database, cookie: str | None) -> Screen | None:
    """The paired screen whose device cookie this is, or None (no cookie, a forged or unpaired one)."""
    screen_id, _, secret = (cookie or "").partition(".")
    if not (screen_id.isascii() and screen_id.isdigit() and len(screen_id) < 19 and secret):
        return None
    return await db.read(lambda conn: _screen_in(
        conn, "id = ? AND device_digest = ? AND unpaired_at IS NULL",
        (int(screen_id), _digest(db, "atm-device", secret))))


async def screens_of(db: Database, atm_id: int) -> list[tuple[int, str, str | None]]:
    """The ATM's paired screens: (id, paired at, unpaired at), newest first."""
    return [tuple(row) for row in await db.read(lambda conn: conn.fetchall(
        "SELECT id, paired_at, unpaired_at FROM atm_screens WHERE atm_id = ? AND paired_at IS NOT NULL "
        "ORDER BY id DESC", (atm_id,)))]


async def unpair(db: Database, atm_id: int, screen_id: int, admin, now: float) -> None:
    """End a screen's pairing for good (its device cookie works no more), audited and journaled."""
    at = journal_time(now)

    async def op(conn):
        rows = await conn.fetchall(
            "UPDATE atm_screens SET unpaired_at = ?, unpaired_by = ?, device_digest = NULL, session_token = NULL, "
            "session_step = NULL, card_digest = NULL, card_id = NULL, account_number = NULL "
            "WHERE id = ? AND atm_id = ? AND paired_at IS NOT NULL AND unpaired_at IS NULL RETURNING id",
            (at, admin.actor, screen_id, atm_id))
        if not rows:
            raise AtmRefused("This screen is not paired with this ATM.")
        await record_in(conn, atm_id, at, "screen unpaired", f"screen {screen_id}", admin.actor)
        await audit.record(conn, now, admin.actor, "atm screen unpaired", f"atm {atm_id}", f"screen {screen_id}")
    await db.write(op)


# The customer's session

async def note_card_attempt(db: Database, screen: Screen, now: float) -> bool:
    """Count a card attempt at the screen's ATM: False when ATM_CARD_ATTEMPTS_PER_MINUTE were made within the last
    minute at that ATM, whichever of its screens took them (each screen keeps its own; writes are one at a time)."""
    most = settings_of(db).atm_card_attempts_per_minute

    async def op(conn):
        mine, others = [], 0
        for screen_id, text in await conn.fetchall("SELECT id, card_attempts FROM atm_screens WHERE atm_id = ? "
                                                   "AND device_digest IS NOT NULL", (screen.atm_id,)):
            recent = [t for t in json.loads(text) if t > now - CARD_ATTEMPTS_WINDOW]
            if screen_id == screen.id:
                mine = recent
            else:
                others += len(recent)
        if len(mine) + others >= most:
            return False
        await conn.execute("UPDATE atm_screens SET card_attempts = ? WHERE id = ?",
                           (json.dumps([*mine, now]), screen.id))
        return True
    return await db.write(op)


async def move(db: Database, screen: Screen, token: str | None, now: float, **changes) -> Screen | None:
    """Move the customer's session on (one conditional write): only if its token is still `token` (None: no
    session); the screen as it is now, or None when the session had moved on (a form sent twice, an old page)."""
    columns = {"session_token": "session_token", "step": "session_step", "card_digest": "card_digest",
               "card_id": "card_id", "account_number": "account_number", "trace": "trace"}
    sets, params = ["seen_at = ?"], [now]
    for name, value in changes.items():
        sets.append(f"{columns[name]} = ?")
        params.append(value)
    where = "session_token IS NULL" if token is None else "session_token = ?"

    async def op(conn):
        rows = await conn.fetchall(f"UPDATE atm_screens SET {', '.join(sets)} WHERE id = ? AND unpaired_at IS NULL "
                                   f"AND {where} RETURNING id", (*params, screen.id, *([] if token is None else
                                                                                       [token])))
        return await _screen_in(conn, "id = ?", (screen.id,)) if rows else None
    return await db.write(op)


ENDED = {"session_token": None, "step": None, "card_digest": None, "card_id": None, "account_number": None,
         "trace": None}
