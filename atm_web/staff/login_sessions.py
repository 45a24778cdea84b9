"""Teller sessions: a random id in the cookie, its hash in the database, ended at logout or by idle and age."""
import secrets
from dataclasses import replace

from atm_web.staff.common import TOUCH_EVERY_S, sha256
from atm_web.staff.tellers import TELLER_COLUMNS, Teller, teller_from_row
from atm_web.storage import Database


async def start_session(db: Database, teller_id: int, now: float) -> str:
    """A new session id for the teller (the cookie holds it; the database only its hash)."""
    session_id = secrets.token_urlsafe(32)
    await db.write(lambda conn: conn.execute(
        "INSERT INTO sessions (id_hash, teller_id, started_at, last_seen_at) VALUES (?, ?, ?, ?)",
        (sha256(session_id), teller_id, now, now)))
    return session_id


async def session_teller(db: Database, session_id: str, now: float, idle_s: float,
                         max_s: float) -> Teller | None:
    """The active teller of an open, unexpired session, or None; refreshes its last-seen time now and then."""
    if not session_id or not isinstance(session_id, str):
        return None
    id_hash = sha256(session_id)
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT s.started_at, s.last_seen_at, s.ended_at, {', '.join('t.' + c for c in TELLER_COLUMNS.split(', '))} "
        "FROM sessions s JOIN tellers t ON t.id = s.teller_id WHERE s.id_hash = ?", (id_hash,)))
    if not rows:
        return None
    started, last_seen, ended, *teller_row = rows[0]
    teller = replace(teller_from_row(teller_row), session_hash=id_hash)
    if ended is not None or not teller.active or now - last_seen > idle_s or now - started > max_s:
        return None
    if now - last_seen >= TOUCH_EVERY_S:
        await db.write(lambda conn: conn.execute(
            "UPDATE sessions SET last_seen_at = ? WHERE id_hash = ? AND ended_at IS NULL", (now, id_hash)))
    return teller


async def end_session(db: Database, session_id: str, now: float) -> None:
    if session_id:
        await db.write(lambda conn: conn.execute(
            "UPDATE sessions SET ended_at = ? WHERE id_hash = ? AND ended_at IS NULL", (now, sha256(session_id))))

