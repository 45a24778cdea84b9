"""Tellers, their sessions, API tokens and the audit log, in the database (login throttling: login_locks.py).

Over 300 lines: tellers, sessions, tokens and their cache, and the audit log; issue 11 splits it by job.

Times passed in as `now` are Unix seconds from the app's clock, so tests can move time. Secrets (session ids,
tokens) are stored only as SHA-256 hashes: they are long random strings, so a fast hash is the right one.
Password hashing is not done here: it is slow, and callers run it off the event loop.
"""
import hashlib
import hmac
import logging
import re
import secrets
import weakref
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from .storage import Database, IntegrityError
from .storage.common import Authorisation, authorisation

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")
PASSWORD_MIN, PASSWORD_MAX = 12, 128
TOKEN_PREFIX = "atm_"
TOUCH_EVERY_S = 60  # last-seen / last-used times are refreshed at most this often (fewer writes)
TOKEN_CACHE_S = 60  # a verified token is trusted from memory at most this long (see TokenCache)
log = logging.getLogger(__name__)


class StaffError(Exception):
    """A refusal about tellers or tokens, with a message fit to show an admin."""


@dataclass(frozen=True)
class Teller:
    id: int
    username: str
    role: str
    active: bool
    created_at: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> str:
        return f"teller:{self.username}"


@dataclass(frozen=True)
class Token:
    id: int
    name: str
    scope: str
    created_at: str
    created_by: str
    last_used_at: str | None
    revoked_at: str | None
    creator_id: int | None  # the teller who made it; None for the CLI's
    revoked_reason: str

    @property
    def actor(self) -> str:
        return f"token:{self.name}"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    target: str
    detail: str


def iso(now: float) -> str:
    return datetime.fromtimestamp(now, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_username(username: str) -> str:
    username = (username or "").strip().lower()
    if not USERNAME.fullmatch(username):
        raise StaffError("Username: 2 to 32 lowercase letters, digits, '.', '_' or '-', starting with a letter "
                         "or digit.")
    return username


def check_password(password: str) -> str:
    if not isinstance(password, str) or not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise StaffError(f"Password: {PASSWORD_MIN} to {PASSWORD_MAX} characters.")
    return password


async def audit(conn, now: float, actor: str, action: str, target: str, detail: str = "") -> None:
    await conn.execute("INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                       (iso(now), actor, action, target, detail))


_TELLER = "id, username, role, active, created_at"


def _teller(row) -> Teller:
    return Teller(row[0], row[1], row[2], bool(row[3]), row[4])


# Tellers

async def count_tellers(db: Database) -> int:
    (count,), = await db.read(lambda conn: conn.fetchall("SELECT COUNT(*) FROM tellers"))
    return count


async def create_teller(db: Database, username: str, password_hash: str, role: str, actor: str, now: float,
                        only_if_none: bool = False) -> Teller | None:
    """Add a teller (audited). only_if_none: add only when no teller exists yet (first-run setup)."""
    username = check_username(username)

    async def op(conn):
        async with conn.savepoint():
            if only_if_none and (await conn.fetchall("SELECT 1 FROM tellers LIMIT 1")):
                return None
            try:
                rows = await conn.fetchall(
                    f"INSERT INTO tellers (username, password_hash, role, created_at) VALUES (?, ?, ?, ?) "
                    f"RETURNING {_TELLER}", (username, password_hash, role, iso(now)))
            except IntegrityError as error:
                if error.constraint == "tellers_username_key":
                    raise StaffError(f"The username {username!r} is taken.") from None
                raise
            await audit(conn, now, actor, "teller added", username, f"role {role}")
            await conn.execute("DELETE FROM setup_code")  # a teller exists: the first-run code is done with
            return _teller(rows[0])

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
        f"SELECT {_TELLER}, password_hash FROM tellers WHERE username = ?", ((username or "").strip().lower(),)))
    return (_teller(rows[0]), rows[0][5]) if rows else None


async def list_tellers(db: Database) -> list[Teller]:
    rows = await db.read(lambda conn: conn.fetchall(f"SELECT {_TELLER} FROM tellers ORDER BY username"))
    return [_teller(row) for row in rows]


async def get_teller(db: Database, teller_id: int) -> Teller | None:
    rows = await db.read(lambda conn: conn.fetchall(f"SELECT {_TELLER} FROM tellers WHERE id = ?",
                                                            (teller_id,)))
    return _teller(rows[0]) if rows else None


async def _change_teller(db, teller_id, sql, params, action, actor, now, loses_access: str = "") -> Teller:
    """Apply an update to one teller, end their open sessions, and audit it. A change that takes access away
    (loses_access: what happened, e.g. 'was deactivated') also revokes every token the teller made, in the same
    transaction: a leaver keeps no keys. Every such change must come through here with loses_access set."""
    async def op(conn):
        async with conn.savepoint():
            rows = await conn.fetchall(f"UPDATE tellers SET {sql} WHERE id = ? RETURNING {_TELLER}",
                                               (*params, teller_id))
            if not rows:
                raise StaffError("No such teller.")
            await conn.execute("UPDATE sessions SET ended_at = ? WHERE teller_id = ? AND ended_at IS NULL",
                               (now, teller_id))
            teller = _teller(rows[0])
            await audit(conn, now, actor, action, teller.username)
            revoked = []
            if loses_access:
                revoked = await _revoke_tokens(conn, "creator_id = ?", (teller.id,),
                                               f"its maker {teller.username} {loses_access}", actor, now)
            return teller, revoked

    teller, revoked = await db.write(op)
    if revoked:
        _announce_revocation(db)
    return teller


async def set_active(db: Database, teller_id: int, active: bool, actor: str, now: float) -> Teller:
    """Deactivate (ending their sessions and revoking their tokens) or reactivate a teller; a reactivated teller
    may log in again, but tokens revoked on deactivation stay revoked."""
    return await _change_teller(db, teller_id, "active = ?", (int(active),),
                                "teller reactivated" if active else "teller deactivated", actor, now,
                                loses_access="" if active else "was deactivated")


async def set_password(db: Database, teller_id: int, password_hash: str, actor: str, now: float) -> Teller:
    return await _change_teller(db, teller_id, "password_hash = ?", (password_hash,), "password reset", actor, now)


# Sessions

async def start_session(db: Database, teller_id: int, now: float) -> str:
    """A new session id for the teller (the cookie holds it; the database only its hash)."""
    session_id = secrets.token_urlsafe(32)
    await db.write(lambda conn: conn.execute(
        "INSERT INTO sessions (id_hash, teller_id, started_at, last_seen_at) VALUES (?, ?, ?, ?)",
        (sha256(session_id), teller_id, now, now)))
    return session_id


async def session_teller(db: Database, session_id: str, now: float, idle_s: float, max_s: float) -> Teller | None:
    """The active teller of an open, unexpired session, or None; refreshes its last-seen time now and then."""
    if not session_id or not isinstance(session_id, str):
        return None
    id_hash = sha256(session_id)
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT s.started_at, s.last_seen_at, s.ended_at, {', '.join('t.' + c for c in _TELLER.split(', '))} "
        "FROM sessions s JOIN tellers t ON t.id = s.teller_id WHERE s.id_hash = ?", (id_hash,)))
    if not rows:
        return None
    started, last_seen, ended, *teller_row = rows[0]
    teller = _teller(teller_row)
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


# API tokens

_TOKEN = "id, name, scope, created_at, created_by, last_used_at, revoked_at, creator_id, revoked_reason"


async def create_token(db: Database, name: str, read_only: bool, actor: str, now: float,
                       admin: bool = False) -> tuple[Token, str]:
    """A new token (audited): (its record, the secret to show once). Scopes: read, write, admin."""
    if read_only and admin:
        raise StaffError("A token is read-only or admin, not both.")
    name = (name or "").strip()
    if not 1 <= len(name) <= 64 or not name.isprintable():
        raise StaffError("Token name: 1 to 64 printable characters.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    scope = "read" if read_only else "admin" if admin else "write"

    async def op(conn):
        async with conn.savepoint():
            rows = await conn.fetchall(  # the maker, when the actor is a teller (not the CLI)
                "INSERT INTO api_tokens (name, token_hash, scope, created_at, created_by, creator_id) "
                "VALUES (?, ?, ?, ?, ?, (SELECT id FROM tellers WHERE 'teller:' || username = ?)) "
                f"RETURNING {_TOKEN}", (name, sha256(secret), scope, iso(now), actor, actor))
            await audit(conn, now, actor, "token created", name, f"scope {scope}")
            return Token(*rows[0])

    return await db.write(op), secret


class TokenCache:
    """The verified tokens of one process, so authenticating a request costs no lookup of its token.

    Every check first asks the engine's revocation signal for the current generation: SQLite's is a file beside
    the database that a revocation replaces after its commit (read from disk, no round trip); PostgreSQL's is
    the token_revocations row that a revocation bumps in its own transaction, read by a query that began after
    the request did (one read shared by the requests that arrive together). An entry stamped with another
    generation is looked up again, so a revoked token is refused at once by every process and every server.
    On an engine that `checks_authorisation` (PostgreSQL), a write request skips that read: token_for's
    on_condition makes its writes carry the entry's generation instead, tested in their own transactions.
    An entry also expires after TOKEN_CACHE_S: on SQLite, the bound for a revocation whose process died between
    its commit and replacing the file.
    """

    def __init__(self):
        self.entries: dict[str, tuple[str, float, Token]] = {}  # token hash -> (generation, cached at, token)

    def unexpired(self, token_hash: str, now: float) -> tuple[str, float, Token] | None:
        entry = self.entries.get(token_hash)
        return entry if entry and 0 <= now - entry[1] < TOKEN_CACHE_S else None

    def fresh(self, token_hash: str, generation: str, now: float) -> tuple[str, float, Token] | None:
        entry = self.unexpired(token_hash, now)
        return entry if entry and entry[0] == generation else None


_token_caches: "weakref.WeakKeyDictionary[Database, TokenCache]" = weakref.WeakKeyDictionary()


def _token_cache(db: Database) -> TokenCache:
    if db not in _token_caches:
        _token_caches[db] = TokenCache()
    return _token_caches[db]


async def token_for(db: Database, secret: str, now: float, on_condition: bool = False) -> Token | None:
    """The unrevoked token with this secret, or None; refreshes its last-used time now and then.

    on_condition (a write request, on an engine that `checks_authorisation`): a token found in the cache is
    trusted without reading the revocation generation, and `authorisation` is set to the generation it was
    verified at, so each of the request's writes is made only if no token was revoked since. The caller must
    check it (confirm()) before answering when no write did. Every call sets `authorisation` for the request:
    None unless it trusted a token on condition."""
    authorisation.set(None)
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    token_hash = sha256(secret)
    cache = _token_cache(db)
    if on_condition and db.checks_authorisation:
        entry = cache.unexpired(token_hash, now)
        if entry and not _needs_touch(entry[2], now):
            authorisation.set(Authorisation(entry[0]))
            return entry[2]
    generation = await db.revocation_signal.generation()  # before the lookup: a revocation after this read changes it
    entry = cache.fresh(token_hash, generation, now)
    if entry is None:  # unrevoked, and its maker (if a teller) still active: belt and braces for the revocation
        rows = await db.read(lambda conn: conn.fetchall(
            f"SELECT {', '.join('k.' + c for c in _TOKEN.split(', '))} FROM api_tokens k "
            "LEFT JOIN tellers t ON t.id = k.creator_id "
            "WHERE k.token_hash = ? AND k.revoked_at IS NULL AND coalesce(t.active, 1) = 1", (token_hash,)))
        if not rows:
            cache.entries.pop(token_hash, None)
            return None
        entry = (generation, now, Token(*rows[0]))
    _, cached_at, token = entry
    if _needs_touch(token, now):
        await db.write(lambda conn: conn.execute(
            "UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ?", (iso(now), token_hash)))
        token = replace(token, last_used_at=iso(now))
    cache.entries[token_hash] = (generation, cached_at, token)
    return token


def _needs_touch(token: Token, now: float) -> bool:
    return token.last_used_at is None or token.last_used_at < iso(now - TOUCH_EVERY_S)


async def confirm(db: Database, secret: str, now: float) -> bool:
    """For a request whose token was trusted on condition and that wrote nothing: is its token still unrevoked?
    True at once if one of its writes found the generation unmoved."""
    granted = authorisation.get()
    if granted is None or granted.checked:
        return True
    return await token_for(db, secret, now) is not None


async def list_tokens(db: Database) -> list[Token]:
    rows = await db.read(lambda conn: conn.fetchall(f"SELECT {_TOKEN} FROM api_tokens ORDER BY id"))
    return [Token(*row) for row in rows]


async def _revoke_tokens(conn, where: str, params: tuple, reason: str, actor: str, now: float) -> list[Token]:
    """Revoke the unrevoked tokens matching `where`, each audited with the reason, in the caller's transaction;
    the caller announces the revocation (_announce_revocation) once that transaction has committed."""
    rows = await conn.fetchall(
        f"UPDATE api_tokens SET revoked_at = ?, revoked_reason = ? WHERE ({where}) AND revoked_at IS NULL "
        f"RETURNING {_TOKEN}", (iso(now), reason, *params))
    tokens = sorted((Token(*row) for row in rows), key=lambda t: t.id)
    for token in tokens:
        await audit(conn, now, actor, "token revoked", token.name, reason)
    if tokens:  # every server's cached tokens are stale from this commit on (TokenCache)
        await conn.execute("UPDATE token_revocations SET generation = generation + 1")
    return tokens


def _announce_revocation(db: Database) -> None:
    """After the revocation's commit: tell the engine's other processes (TokenCache)."""
    try:
        db.revocation_signal.announce()
    except OSError:  # the revocation stands; processes that cached the token drop it within TOKEN_CACHE_S
        log.exception("could not replace the token generation file after a revocation")


async def revoke_token(db: Database, token_id: int, actor: str, now: float) -> Token:
    async def op(conn):
        async with conn.savepoint():
            revoked = await _revoke_tokens(conn, "id = ?", (token_id,), f"revoked by {actor}", actor, now)
            if not revoked:
                raise StaffError("No such token, or it is already revoked.")
            return revoked[0]

    token = await db.write(op)
    _announce_revocation(db)
    return token


async def live_tokens_made_by(db: Database, teller_id: int) -> list[Token]:
    """The unrevoked tokens a teller made: what deactivating them would revoke."""
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT {_TOKEN} FROM api_tokens WHERE creator_id = ? AND revoked_at IS NULL ORDER BY id", (teller_id,)))
    return [Token(*row) for row in rows]


# Audit log

async def audit_entries(db: Database, limit: int = 200) -> list[AuditEntry]:
    rows = await db.read(lambda conn: conn.fetchall(
        "SELECT id, at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)))
    return [AuditEntry(*row) for row in rows]
