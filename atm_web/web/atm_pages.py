"""Blueprint: Admin > ATMs (/admin/atms/...), for administrators: the ATMs with their expected cash and notes,
registering one, an ATM's page (its last replenishment and its electronic journal, with a CSV), and the blind count
and load of a replenishment, held for a second person's confirmation (on Approvals).

Each view validates its form and makes one call into cash/atms.py or cash/replenishment.py.
"""
from flask import Blueprint, Response, flash, g, redirect, render_template, url_for

from atm_web.cash import atm_journal, atm_screens, atms, replenishment
from atm_web.core.clock import now
from atm_web.core.money import format_cents
from atm_web.storage import get_db
from atm_web.web.errors import flash_refusal, show_refusals_on
from atm_web.web.forms.atms import register_form, replenish_form
from atm_web.web.guards import require_admin

bp = Blueprint("atms", __name__, url_prefix="/admin/atms")
bp.before_request(require_admin)


def _notes() -> tuple[int, ...]:
    return tuple(atms.note_denominations(get_db()))


@bp.get("/")
async def index(form=None, status=200):
    form = form or register_form(_notes())(formdata=None)
    return render_template("atms/index.html", atms=await atms.all_atms(get_db()), form=form), status


@bp.post("/")
async def register():
    form = register_form(_notes())()
    if not form.validate():
        return await index(form, 422)
    listed = await atms.all_atms(get_db())

    def refused(error, message, status):
        form.name.errors = [message]
        return render_template("atms/index.html", atms=listed, form=form), status
    show_refusals_on(refused)
    atm = await atms.register_atm(get_db(), form.name.data, form.location.data, form.denominations, g.teller, now(),
                                  form.dispenser.data)
    flash(f"{atm.label} registered: replenish it to load its cassettes.")
    return redirect(url_for("atms.show", atm_id=atm.id), 303)


async def _atm(atm_id):
    show_refusals_on(flash_refusal(None, "atms.index"))
    return await atms.get_atm(get_db(), atm_id)


@bp.get("/<id:atm_id>")
async def show(atm_id):
    db = get_db()
    atm = await _atm(atm_id)
    return render_template("atms/show.html", atm=atm, last=await replenishment.latest(db, atm_id),
                           events=await atm_journal.events(db, atm_id),
                           screens=await atm_screens.screens_of(db, atm_id))


@bp.post("/<id:atm_id>/pair")
async def pair(atm_id):
    """Pair a screen: a one-time link, shown once (10 minutes), to open in the kiosk's browser."""
    atm = await _atm(atm_id)
    code = await atm_screens.pairing_link(get_db(), atm.id, g.teller, now())
    link = url_for("screen.pair_page", code=code, _external=True)
    return render_template("atms/pair.html", atm=atm, link=link, minutes=atm_screens.PAIRING_SECONDS // 60)


@bp.post("/<id:atm_id>/screens/<id:screen_id>/unpair")
async def unpair(atm_id, screen_id):
    atm = await _atm(atm_id)
    show_refusals_on(flash_refusal("Not unpaired", "atms.show", atm_id=atm_id))
    await atm_screens.unpair(get_db(), atm.id, screen_id, g.teller, now())
    flash(f"Screen {screen_id} unpaired: it is no longer {atm.label}.")
    return redirect(url_for("atms.show", atm_id=atm.id), 303)


@bp.get("/<id:atm_id>/journal.csv")
async def journal_csv(atm_id):
    atm = await _atm(atm_id)
    text = atm_journal.to_csv(await atm_journal.events(get_db(), atm.id, limit=None))
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="atm-{atm.id}-journal.csv"'})


def _replenish_form(atm, posted: bool):
    form_class = replenish_form(tuple((c.position, c.denomination_cents) for c in atm.cassettes), _notes())
    return form_class() if posted else form_class(formdata=None)


@bp.get("/<id:atm_id>/replenish")
async def replenish_page(atm_id):
    atm = await _atm(atm_id)
    return render_template("atms/replenish.html", atm=atm, form=_replenish_form(atm, False))


@bp.post("/<id:atm_id>/replenish")
async def replenish(atm_id):
    """The blind count and the load: held for a second person's confirmation (Approvals)."""
    atm = await _atm(atm_id)
    form = _replenish_form(atm, True)
    if not form.validate():
        return render_template("atms/replenish.html", atm=atm, form=form), 422
    show_refusals_on(flash_refusal("Not entered", "atms.show", atm_id=atm_id))
    held = await replenishment.enter(get_db(), atm.id, form.count, form.loaded, g.teller, now())
    flash(f"Count entered: counted {format_cents(form.count.cents(dict(form.cassettes)))}. A supervisor or another "
          f"administrator confirms it on Approvals (request {held.reference}); nothing is moved until then.")
    return redirect(url_for("requests.page", approval_id=held.id), 303)
