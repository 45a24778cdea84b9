"""Blueprint: the ATM's device interface (/atm/device/...), JSON, for a real dispenser's agent beside the kiosk: it
reports what the dispenser did with a withdrawal's cash, by its trace number (presented, taken, partial with the
notes paid from each cassette, failed, retracted). Each report is idempotent by trace number: the same result again
answers the withdrawal as it ended, with "replayed": true (cash/atm_withdrawals.py).

The credential is the agent's own: it pairs with the ATM as a screen does, with a one-time link's code from the
ATM's admin page (`POST /atm/device/pair`, answered once with the credential), and sends it as `Authorization:
Device <credential>`, never a staff token. A request without that header is refused (401): a page cannot make the
kiosk's browser report for it (no CSRF by cookie).
"""
from flask import Blueprint, request

from atm_web.cash import atm_screens, atm_withdrawals
from atm_web.cash.refusals import AtmRefused
from atm_web.core.clock import now
from atm_web.core.money import json_number
from atm_web.storage import get_db
from atm_web.web.errors import ApiError
from atm_web.web.json_body import json_object

bp = Blueprint("device", __name__, url_prefix="/atm/device")
OUTCOMES = ("presented", "taken", "partial", "failed", "retracted")


async def _screen():
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    screen = await atm_screens.screen_of(get_db(), credential.strip()) if scheme == "Device" else None
    if screen is None:
        raise ApiError(401, "A paired ATM's credential is required: send 'Authorization: Device <credential>'",
                       {"WWW-Authenticate": 'Device realm="atm-web"'})
    return screen


def _paid_notes() -> dict | None:
    notes = json_object(optional=True, example='{"paid_notes": {"<cassette>": notes}} (for partial)').get("paid_notes")
    if notes is None:
        return None
    if not isinstance(notes, dict) or not all(isinstance(k, str) and k.isascii() and k.isdigit() and len(k) < 3
                                              for k in notes):
        raise ApiError(422, "paid_notes: {\"<cassette position>\": notes paid from it}")
    return {int(k): v for k, v in notes.items()}


@bp.post("/pair")
async def pair():
    """{"code": the pairing link's code} -> 201 {"atm_id", "credential"}: the agent's credential, shown this once."""
    code = json_object(example='{"code": "<the pairing link\'s code>"}').get("code")
    if not isinstance(code, str) or not 1 <= len(code) <= 100:
        raise ApiError(422, "The body is {\"code\": the pairing link's code}")
    try:
        screen, credential = await atm_screens.pair(get_db(), code, now())
    except AtmRefused as refused:
        raise ApiError(404, str(refused)) from None
    return {"atm_id": screen.atm_id, "credential": credential}, 201


@bp.post("/withdrawals/<id:trace>/<outcome>")
async def report(trace, outcome):
    """The dispenser's result for the withdrawal `trace` of this ATM."""
    if outcome not in OUTCOMES:
        raise ApiError(404, f"The outcomes are {', '.join(OUTCOMES)}")
    screen = await _screen()
    w = await atm_withdrawals.report(get_db(), screen.atm_id, trace, outcome, f"dispenser:{screen.id}",
                                     paid_notes=_paid_notes(), now=now())
    return {"trace": w.trace, "status": w.status, "amount": json_number(w.amount_cents),
            "paid": json_number(w.paid_cents or 0), "replayed": w.replayed}
