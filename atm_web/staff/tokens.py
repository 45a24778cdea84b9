"""API tokens: made by an admin or the CLI, stored hashed, scoped, cached per process, revoked at once everywhere."""
import logging
import secrets
import weakref
from dataclasses import dataclass, replace

from atm_web.core import audit
from atm_web.core.clock import iso
from atm_web.core.rules import TOKEN_NAME_MAX
from atm_web.staff.common import TOUCH_EVERY_S, sha256
from atm_web.staff.refusals import StaffRefused
from atm_web.storage import Database
from atm_web.storage.common import Authorisation, authorisation

TOKEN_PREFIX = "atm_"
TOKEN_CACHE_S = 60  # a verified token is trusted from memory at most this long (see TokenCache)
log = logging.getLogger(__name__)


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



TOKEN_COLUMNS = "id, name, scope, created_at, created_by, last_used_at, revoked_at, creator_id, revoked_reason"


async def create_token(db: Database, name: str, read_only: bool, actor: str, now: float,
                       admin: bool = False) -> tuple[Token, str]:
    """A new token (audited): (its record, the secret to show once). Scopes: read, write, admin."""
    if read_only and admin:
        raise StaffRefused("A token is read-only or admin, not both.")
    name = (name or "").strip()
    if not 1 <= len(name) <= TOKEN_NAME_MAX or not name.isprintable():
        raise StaffRefused(f"Token name: 1 to {TOKEN_NAME_MAX} printable characters.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    scope = "read" if read_only else "admin" if admin else "write"

    async def op(conn):
        async with conn.savepoint():
            rows = await conn.fetchall(  # the maker, when the actor is a teller (not the CLI)
                "INSERT INTO api_tokens (name, token_hash, scope, created_at, created_by, creator_id) "
                "VALUES (?, ?, ?, ?, ?, (SELECT id FROM tellers WHERE 'teller:' || username = ?)) "
                f"RETURNING {TOKEN_COLUMNS}", (name, sha256(secret), scope, iso(now), actor, actor))
            await audit.record(conn, now, actor, "token created", name, f"scope {scope}")
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
            f"SELECT {', '.join('k.' + c for c in TOKEN_COLUMNS.split(', '))} FROM api_tokens k "
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
    rows = await db.read(lambda conn: conn.fetchall(f"SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id"))
    return [Token(*row) for row in rows]


async def revoke_matching(conn, where: str, params: tuple, reason: str, actor: str, now: float) -> list[Token]:
    """Revoke the unrevoked tokens matching `where`, each audited with the reason, in the caller's transaction;
    the caller announces the revocation (announce_revocation) once that transaction has committed."""
    rows = await conn.fetchall(
        f"UPDATE api_tokens SET revoked_at = ?, revoked_reason = ? WHERE ({where}) AND revoked_at IS NULL "
        f"RETURNING {TOKEN_COLUMNS}", (iso(now), reason, *params))
    tokens = sorted((Token(*row) for row in rows), key=lambda t: t.id)
    for token in tokens:
        await audit.record(conn, now, actor, "token revoked", token.name, reason)
    if tokens:  # every server's cached tokens are stale from this commit on (TokenCache)
        await conn.execute("UPDATE token_revocations SET generation = generation + 1")
    return tokens


def announce_revocation(db: Database) -> None:
    """After the revocation's commit: tell the engine's other processes (TokenCache)."""
    try:
        db.revocation_signal.announce()
    except OSError:  # the revocation stands; processes that cached the token drop it within TOKEN_CACHE_S
        log.exception("could not replace the token generation file after a revocation")


async def revoke_token(db: Database, token_id: int, actor: str, now: float) -> Token:
    async def op(conn):
        async with conn.savepoint():
            revoked = await revoke_matching(conn, "id = ?", (token_id,), f"revoked by {actor}", actor, now)
            if not revoked:
                raise StaffRefused("No such token, or it is already revoked.")
            return revoked[0]

    token = await db.write(op)
    announce_revocation(db)
    return token


async def live_tokens_made_by(db: Database, teller_id: int) -> list[Token]:
    """The unrevoked tokens a teller made: what deactivating them would revoke."""
    rows = await db.read(lambda conn: conn.fetchall(
        f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE creator_id = ? AND revoked_at IS NULL ORDER BY id",
        (teller_id,)))
    return [Token(*row) for row in rows]


