"""The vault: the cash it holds, the movements between it and a drawer that a teller asks for and another person
confirms, and shipments into and out of the branch (against clearing). Each is one double-entry transaction with
its audit row; the cash in the branch, vault plus drawers, is the same at every step of a movement."""
from dataclasses import dataclass

from atm_web.cash.drawers import cash_entry, session_where
from atm_web.cash.refusals import DrawerRefused
from atm_web.core import audit
from atm_web.core.clock import or_system
from atm_web.core.refusals import check_amount
from atm_web.core.rules import CLEARING, REASON_MAX, VAULT
from atm_web.ledger.accounts import balance_in
from atm_web.ledger.idempotency import Once, Replay, at_most_once
from atm_web.ledger.journal import posting_stamp
from atm_web.staff.tellers import check_still_allowed_in, usernames_in
from atm_web.storage import Database

_MOVEMENTS = ("SELECT m.id, m.session_id, s.teller_id, m.direction, m.amount_cents, m.requested_by, m.requested_at, "
              "m.status, m.decided_by, m.decided_at "
              "FROM vault_movements m JOIN drawer_sessions s ON s.id = m.session_id")
DIRECTIONS = {"to_vault": "Cash to the vault", "to_drawer": "Cash from the vault"}

@dataclass(frozen=True)
class VaultMovement:
    id: int
    session_id: int
    username: str  # the drawer's teller
    direction: str  # to_vault, to_drawer
    amount_cents: int
    requested_by: str
    requested_at: str
    status: str  # pending, confirmed, rejected, cancelled (the drawer closed first)
    decided_by: str | None
    decided_at: str | None

    @property
    def label(self) -> str:
        return DIRECTIONS[self.direction]


async def _movements_in(conn, where: str, params=()) -> list[VaultMovement]:
    """The movements `where` selects (over vault_movements m), each with its drawer's teller's name."""
    rows = await conn.fetchall(f"{_MOVEMENTS} WHERE {where}", params)
    names = await usernames_in(conn, (row[2] for row in rows))
    return [VaultMovement(row[0], row[1], names.get(row[2], "?"), *row[3:]) for row in rows]


async def movements(db: Database, *, session_id: int | None = None) -> list[VaultMovement]:
    """A drawer session's movements, or every pending one."""
    where, params = ("m.session_id = ?", (session_id,)) if session_id is not None else ("m.status = 'pending'", ())
    return await db.read(lambda conn: _movements_in(conn, f"{where} ORDER BY m.id", params))


async def get_movement(db: Database, movement_id: int) -> VaultMovement:
    return (await db.read(lambda conn: _movements_in(conn, "m.id = ?", (movement_id,))))[0]


async def cash_held(db: Database, number: str = VAULT) -> int:
    """The notes and coins a cash account holds, in cents."""
    return -await db.read(lambda conn: balance_in(conn, number))


async def request_movement(db: Database, teller, direction: str, amount_cents: int, *,
                           now: float | None = None) -> VaultMovement:
    """A teller asks to send cash to the vault or for more from it: pending until an administrator confirms."""
    check_amount(amount_cents)
    if direction not in DIRECTIONS:
        raise ValueError(direction)
    at = posting_stamp(db, now)

    async def op(conn):
        session = await session_where(conn, "s.teller_id = ? AND s.status = 'open'", (teller.id,))
        if session is None:
            raise DrawerRefused("Your drawer is not open.")
        (movement_id,), = await conn.fetchall(
            "INSERT INTO vault_movements (session_id, direction, amount_cents, requested_by, requested_at, status) "
            "VALUES (?, ?, ?, ?, ?, 'pending') RETURNING id",
            (session.id, direction, amount_cents, teller.username, at.created_at))
        return movement_id

    movement_id = await db.write(op)
    return await get_movement(db, movement_id)


async def decide_movement(db: Database, movement_id: int, admin, confirm: bool, *,
                          now: float | None = None) -> VaultMovement:
    """Confirm (the cash moves, one transaction) or reject a pending vault movement; never one's own drawer's."""
    now = or_system(now)
    at = posting_stamp(db, now)

    async def op(conn):
        async with conn.savepoint():
            found = await _movements_in(conn, "m.id = ?", (movement_id,))
            movement = found[0] if found else None
            if movement is None or movement.status != "pending":
                raise DrawerRefused("That vault movement is not pending.")
            session = await session_where(conn, "s.id = ?", (movement.session_id,))
            if session.teller_id == admin.id:
                raise DrawerRefused("Another administrator must confirm a movement of your own drawer.")
            await check_still_allowed_in(conn, admin, lambda current: current.is_admin)
            entry_id = None
            if confirm:
                name, amount = f"drawer {session.id} ({session.username})", movement.amount_cents
                if movement.direction == "to_drawer":
                    rows = [(VAULT, "credit", amount, f"cash to {name}"),
                            (session.account_number, "debit", amount, "cash from the vault")]
                else:
                    rows = [(session.account_number, "credit", amount, "cash to the vault"),
                            (VAULT, "debit", amount, f"cash from {name}")]
                written = await cash_entry(conn, rows, admin.actor, at,
                                       "the vault" if movement.direction == "to_drawer" else "the drawer")
                entry_id = written[0].entry_id
            await conn.execute("UPDATE vault_movements SET status = ?, decided_by = ?, decided_at = ?, entry_id = ? "
                               "WHERE id = ?", ("confirmed" if confirm else "rejected", admin.username,
                                                at.created_at, entry_id, movement_id))
            await audit.record(conn, now, admin.actor, "vault movement " + ("confirmed" if confirm else "rejected"),
                               f"drawer {session.id}", f"{movement.direction} {movement.amount_cents} cents")

    await db.write(op)
    return await get_movement(db, movement_id)


async def ship_cash(db: Database, direction: str, amount_cents: int, reference: str, admin, once: Once | None = None,
                    *, now: float | None = None) -> bool:
    """The vault receives a shipment ('in', from clearing) or sends cash out of the branch ('out', to clearing),
    with the shipment's reference, at most once per `once`: False if that request was made already."""
    check_amount(amount_cents)
    reference = (reference or "").strip() if isinstance(reference, str) else ""
    if not 1 <= len(reference) <= REASON_MAX:
        raise DrawerRefused(f"A shipment needs a reference of 1 to {REASON_MAX} characters.")
    now = or_system(now)
    at = posting_stamp(db, now)
    memo = f"shipment {'in' if direction == 'in' else 'out'}: {reference}"
    rows = ([(CLEARING, "credit", amount_cents, memo), (VAULT, "debit", amount_cents, memo)] if direction == "in"
            else [(VAULT, "credit", amount_cents, memo), (CLEARING, "debit", amount_cents, memo)])

    async def apply(conn):
        async with conn.savepoint():
            written = await cash_entry(conn, rows, admin.actor, at, "the vault")
            await audit.record(conn, now, admin.actor, "cash received" if direction == "in" else "cash sent",
                               "vault", f"{amount_cents} cents: {reference}")
        return written[0]

    return not isinstance(await db.write(lambda conn: at_most_once(conn, once, lambda: apply(conn))), Replay)
