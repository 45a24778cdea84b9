"""Tellers: their records, roles and passwords, first-run setup, and the changes that take their access away."""
import hmac
from dataclasses import dataclass, field

from werkzeug.security import generate_password_hash

from atm_web.core import audit
from atm_web.core.clock import iso
from atm_web.core.rules import PASSWORD_MAX, PASSWORD_MIN, ROLES, USERNAME, USERNAME_RULE
from atm_web.staff import tokens
from atm_web.staff.refusals import NoLongerAuthorised, StaffRefused
from atm_web.storage import Database, IntegrityError


@dataclass(frozen=True)
class Teller:
    id: int
    username: str
    role: str
    active: bool
    created_at: str
    session_hash: str | None = field(default=None, compare=False)  # the staff session a request came with

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def can_approve(self) -> bool:
        """A supervisor or an administrator: may approve another's request (approvals.py)."""
        return self.role in ("supervisor", "admin")

    @property
    def actor(self) -> str:
        return f"teller:{self.username}"


def check_username(username: str) -> str:
    username = (username or "").strip().lower()
    if not USERNAME.fullmatch(username):
        raise StaffRefused(f"Username: {USERNAME_RULE}.")
    return username


def check_role(role: str) -> str:
    if role not in ROLES:
        raise StaffRefused(f"Role: one of {', '.join(ROLES)}.")
    return role


def check_password(password: str) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise StaffRefused(f"Password: {PASSWORD_MIN} to {PASSWORD_MAX} characters.")
    return password


def hash_password(password: str) -> str:
    """werkzeug's default (scrypt); slow on purpose: never call it on the event loop."""
    return generate_password_hash(check_password(password))


TELLER_COLUMNS = "id, username, role, active, created_at"


def teller_from_row(row) -> Teller:
    return Teller(row[0], row[1], row[2], bool(row[3]), row[4])


async def count_tellers(db: Database) -> int:
    (count,), = await db.read(lambda conn: conn.fetchall("SELECT COUNT(*) FROM tellers"))
    return count


async def create_teller(db: Database, username: str, password_hash: str, role: str, actor: str, now: float,
                        only_if_none: bool = False) -> Teller | None:
    """Add a teller (audited). only_if_none: add only when no teller exists yet (first-run setup)."""
    username = check_username(username)
    role = check_role(role)

    async def op(conn):
        async with conn.savepoint():
            if only_if_none and (await conn.fetchall("SELECT 1 FROM tellers LIMIT 1")):
                return None
            try:
                rows = await conn.fetchall(
                    f"INSERT INTO tellers (username, password_hash, role, created_at) VALUES (?, ?, ?, ?) "
                    f"RETURNING {TELLER_COLUMNS}", (username, password_hash, role, iso(now)))
            except IntegrityError as error:
                if error.constraint == "tellers_username_key":
                    raise StaffRefused(f"The username {username!r} is taken.") from None
                raise
            await audit.record(conn, now, actor, "teller added", username, f"role {role}")
            await conn.execute("DELETE FROM setup_code")  # a teller exists: the first-run code is done with
            return teller_from_row(rows[0])

    return await db.write(op)


async def setup_code(db: Database, new_code: str) -> str | None:
    """While no teller exists: the first-run setup code (new_code, unless one was made already, by this or any
    other server); None once a teller exists."""
    async def op(conn):
        async with conn.savepoint():
            if await conn.fetchall("SELECT 1 FROM tellers LIMIT 1"):
                return None
            await conn.execute("INSERT INTO setup_code (id, code) VALUES (1, ?) ON CONFLICT (id) DO NOTHING",
                               (new_code,))
            (code,), = await conn.fetchall("SELECT code FROM setup_code")
            return code

    return await db.write(op)


async def setup_code_matches(db: Database, code: str) -> bool:
    rows = await db.read(lambda conn: conn.fetchall("SELECT code FROM setup_code"))
    return bool(rows and code) and hmac.compare_digest(code.encode(), rows[0][0].encode())


async def find_teller(db: Database, username: str) -> tuple[Teller, str] | None:
    """The teller and their password hash, or None."""
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT {TELLER_COLUMNS}, password_hash FROM tellers WHERE username = ?", ((username or "").strip().lower(),)))
    return (teller_from_row(rows[0]), rows[0][5]) if rows else None


async def list_tellers(db: Database) -> list[Teller]:
    rows = await db.read(lambda conn: conn.fetchall(f"SELECT {TELLER_COLUMNS} FROM tellers ORDER BY username"))
    return [teller_from_row(row) for row in rows]


async def teller_in(conn, teller_id: int) -> Teller | None:
    rows = await conn.fetchall(f"SELECT {TELLER_COLUMNS} FROM tellers WHERE id = ?", (teller_id,))
    return teller_from_row(rows[0]) if rows else None


async def get_teller(db: Database, teller_id: int) -> Teller | None:
    return await db.read(lambda conn: teller_in(conn, teller_id))


async def usernames_in(conn, teller_ids) -> dict[int, str]:
    """{teller id: username} of these tellers (in the caller's transaction or snapshot): what other packages show
    beside the ids they keep."""
    ids = sorted(set(teller_ids))
    if not ids:
        return {}
    return dict(await conn.fetchall(f"SELECT id, username FROM tellers WHERE id IN ({','.join('?' * len(ids))})",
                                    ids))


async def _change_teller(db, teller_id, sql, params, action, actor, now, loses_access: str = "", also=None) -> Teller:
    """Apply an update to one teller, end their open sessions, and audit it. A change that takes access away
    (loses_access: what happened, e.g. 'was deactivated') also revokes every token the teller made, in the same
    transaction: a leaver keeps no keys. Every such change must come through here with loses_access set.
    also(conn, teller), if given, runs in the same transaction (a higher layer's part of the change)."""
    async def op(conn):
        async with conn.savepoint():
            rows = await conn.fetchall(f"UPDATE tellers SET {sql} WHERE id = ? RETURNING {TELLER_COLUMNS}",
                                       (*params, teller_id))
            if not rows:
                raise StaffRefused("No such teller.")
            await conn.execute("UPDATE sessions SET ended_at = ? WHERE teller_id = ? AND ended_at IS NULL",
                               (now, teller_id))
            teller = teller_from_row(rows[0])
            await audit.record(conn, now, actor, action, teller.username)
            revoked = []
            if also is not None:
                await also(conn, teller)
            if loses_access:
                revoked = await tokens.revoke_matching(conn, "creator_id = ?", (teller.id,),
                                                       f"its maker {teller.username} {loses_access}", actor, now)
            return teller, revoked

    teller, revoked = await db.write(op)
    if revoked:
        tokens.announce_revocation(db)
    return teller


def _by(who: "Teller | str") -> tuple[str, int | None]:
    """(the actor, the teller's id) of whoever makes a change: a teller, or an actor's name (the CLI, a test)."""
    return (who.actor, who.id) if isinstance(who, Teller) else (who, None)


async def set_active(db: Database, teller_id: int, active: bool, by: "Teller | str", now: float,
                     also=None) -> Teller:
    """Deactivate (ending their sessions and revoking their tokens) or reactivate a teller; a reactivated teller
    may log in again, but tokens revoked on deactivation stay revoked. Nobody deactivates themselves. also: as
    _change_teller's."""
    actor, by_id = _by(by)
    if by_id == teller_id and not active:
        raise StaffRefused("You cannot deactivate yourself.")
    return await _change_teller(db, teller_id, "active = ?", (int(active),),
                                "teller reactivated" if active else "teller deactivated", actor, now,
                                loses_access="" if active else "was deactivated", also=also)


async def check_still_allowed_in(conn, teller: Teller, allowed) -> Teller:
    """Inside a decision's own write: the teller as the database has them now, refused (NoLongerAuthorised) unless
    still active, still allowed(teller) by their current role, and (for a request made in a staff session) that
    session still open. A role change or a deactivation ends the teller's sessions in its transaction, and writes
    take turns, so a decision committed after either is refused."""
    rows = await conn.fetchall(f"SELECT {TELLER_COLUMNS} FROM tellers WHERE id = ?", (teller.id,))
    current = teller_from_row(rows[0]) if rows else None
    if current is None or not current.active or not allowed(current):
        raise NoLongerAuthorised()
    if teller.session_hash is not None and not await conn.fetchall(
            "SELECT 1 FROM sessions WHERE id_hash = ? AND teller_id = ? AND ended_at IS NULL",
            (teller.session_hash, teller.id)):
        raise NoLongerAuthorised()
    return current


async def set_password(db: Database, teller_id: int, password_hash: str, actor: str, now: float) -> Teller:
    return await _change_teller(db, teller_id, "password_hash = ?", (password_hash,), "password reset", actor, now)


async def set_role(db: Database, teller_id: int, role: str, by: "Teller | str", now: float) -> Teller:
    """Give a teller another role (audited); their sessions end, so the new role applies at once. An administrator
    who is made a teller or supervisor loses the admin scope: the API tokens they made are revoked. Nobody changes
    their own role."""
    actor, by_id = _by(by)
    if by_id == teller_id:
        raise StaffRefused("You cannot change your own role.")
    role = check_role(role)  # only administrators make tokens: any other role keeps none
    return await _change_teller(db, teller_id, "role = ?", (role,), f"role set to {role}", actor, now,
                                loses_access="" if role == "admin" else "is no longer an administrator")
