"""The audit log: who did what to whom, written in the transaction of the change it records; never edited."""
from dataclasses import dataclass

from atm_web.core.clock import iso
from atm_web.storage import Database


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str
    action: str
    target: str
    detail: str



async def record(conn, now: float, actor: str, action: str, target: str, detail: str = "") -> None:
    """One audit row, in the caller's transaction (conn)."""
    await conn.execute("INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                       (iso(now), actor, action, target, detail))


async def entries(db: Database, limit: int = 200) -> list[AuditEntry]:
    rows = await db.read(lambda conn: conn.fetchall(
        "SELECT id, at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)))
    return [AuditEntry(*row) for row in rows]
