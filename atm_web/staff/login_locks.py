"""Login throttling: each attempt is reserved before its password is checked, failures lock, admins unlock.

The policy: at most USERNAME_ATTEMPTS attempts per username and ADDRESS_ATTEMPTS per address within
WINDOW_S may reach the (slow) password check; the failure that reaches the limit locks the username or the
address for LOCK_S. A reservation is a row written in one write transaction that first counts the rows already
there, so however many logins arrive at once, from however many worker processes, no more than the policy's
number are let through: the writes are serialised by the database. A success releases its own reservation and
clears the username's earlier failures; attempts still being checked stay counted. A reservation whose process
died before its answer stays counted until the window passes: the safe side.

Times are Unix seconds from the app's clock, so tests can move time. Locks and attempts live in the database,
so they hold across workers, servers and restarts.
"""
from dataclasses import dataclass

from atm_web.core import audit
from atm_web.staff.refusals import LoginLocked, StaffRefused
from atm_web.storage import Database

WINDOW_S = 15 * 60
LOCK_S = 15 * 60
USERNAME_ATTEMPTS = 5
ADDRESS_ATTEMPTS = 20
LOCK_KINDS = ("username", "address")


@dataclass(frozen=True)
class Lock:
    kind: str
    subject: str
    locked_until: float


def normal_username(username: str | None) -> str:
    """The username as attempts count it: case-insensitive, bounded."""
    return (username or "").strip().lower()[:64]


def _limits(username: str, address: str):
    return (("username", username, USERNAME_ATTEMPTS), ("address", address, ADDRESS_ATTEMPTS))


async def reserve_attempt(db: Database, username: str, address: str, now: float) -> int:
    """Reserve one password check: the attempt's id, or LoginLocked when the username (checked first) or the
    address is locked or already has its number of attempts in the window, failed or still being checked."""
    username = normal_username(username)

    async def op(conn):
        async with conn.savepoint():
            locked = await conn.fetchall(
                "SELECT kind FROM login_locks WHERE locked_until > ? AND "
                "((kind = 'username' AND subject = ?) OR (kind = 'address' AND subject = ?)) ORDER BY kind DESC",
                (now, username, address))
            if locked:
                return locked[0][0]
            for kind, subject, limit in _limits(username, address):
                (count,), = await conn.fetchall(
                    f"SELECT COUNT(*) FROM login_attempts WHERE {kind} = ? AND at > ?", (subject, now - WINDOW_S))
                if count >= limit:
                    return kind
            (attempt_id,), = await conn.fetchall(
                "INSERT INTO login_attempts (username, address, at, pending) VALUES (?, ?, ?, 1) RETURNING id",
                (username, address, now))
            return attempt_id

    outcome = await db.write(op)
    if isinstance(outcome, str):
        raise LoginLocked(outcome)
    return outcome


async def attempt_failed(db: Database, attempt_id: int, now: float) -> str | None:
    """The reserved attempt's password was wrong: keep it as a failure; lock the username or the address when
    that failure reaches its limit. Returns what got locked ('username', 'address' or None)."""
    async def op(conn):
        async with conn.savepoint():
            rows = await conn.fetchall(
                "UPDATE login_attempts SET pending = 0 WHERE id = ? RETURNING username, address", (attempt_id,))
            if not rows:  # an administrator unlocked meanwhile
                return None
            locked = None
            for kind, subject, limit in _limits(*rows[0]):
                (count,), = await conn.fetchall(
                    f"SELECT COUNT(*) FROM login_attempts WHERE {kind} = ? AND at > ? AND pending = 0",
                    (subject, now - WINDOW_S))
                if count >= limit:
                    await conn.execute(
                        "INSERT INTO login_locks (kind, subject, locked_until) VALUES (?, ?, ?) "
                        "ON CONFLICT (kind, subject) DO UPDATE SET locked_until = excluded.locked_until",
                        (kind, subject, now + LOCK_S))
                    locked = locked or kind
            return locked

    return await db.write(op)


async def attempt_succeeded(db: Database, username: str, attempt_id: int) -> None:
    """Release the reservation and clear the username's earlier failures (not other attempts in flight)."""
    await db.write(lambda conn: conn.execute(
        "DELETE FROM login_attempts WHERE id = ? OR (username = ? AND pending = 0)",
        (attempt_id, normal_username(username))))


async def current_locks(db: Database, now: float) -> list[Lock]:
    rows = await db.read(lambda conn: conn.fetchall(
        "SELECT kind, subject, locked_until FROM login_locks WHERE locked_until > ? ORDER BY kind DESC, subject",
        (now,)))
    return [Lock(*row) for row in rows]


async def unlock(db: Database, kind: str, subject: str, actor: str, now: float) -> bool:
    """Lift a current lock and forget the failures behind it (audited). False when it was not locked."""
    if kind not in LOCK_KINDS:
        raise StaffRefused("Nothing to unlock: choose a username or an address.")

    async def op(conn):
        async with conn.savepoint():
            lifted = await conn.fetchall(
                "DELETE FROM login_locks WHERE kind = ? AND subject = ? AND locked_until > ? RETURNING subject",
                (kind, subject, now))
            if not lifted:
                return False
            await conn.execute(f"DELETE FROM login_attempts WHERE {kind} = ? AND pending = 0", (subject,))
            await audit.record(conn, now, actor, "login unlocked", f"{kind} {subject}")
            return True

    return await db.write(op)
