"""Blueprint: the Large cash worklist for administrators: each customer's day of cash above CTR_THRESHOLD (cash in,
cash out, the transactions, the identity checks), its CSV, and marking an entry filed."""
from flask import Blueprint, Response, flash, g, redirect, render_template, url_for

from atm_web.core.clock import now
from atm_web.customers import large_cash
from atm_web.storage import get_db
from atm_web.web.errors import flash_refusal, show_refusals_on
from atm_web.web.forms.common import ButtonForm
from atm_web.web.guards import require_admin

bp = Blueprint("large_cash", __name__, url_prefix="/admin/large-cash")
bp.before_request(require_admin)


@bp.get("/")
async def index():
    return render_template("large_cash/index.html", reports=await large_cash.worklist(get_db(), g.teller.actor, now()),
                           button=ButtonForm(formdata=None), filed_shown=large_cash.FILED_SHOWN)


@bp.get("/report.csv")
async def report_csv():
    text = large_cash.to_csv(await large_cash.worklist(get_db(), g.teller.actor, now()))
    return Response(text, mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="large-cash.csv"'})


@bp.post("/<id:report_id>/filed")
async def filed(report_id):
    if ButtonForm().validate_on_submit():
        show_refusals_on(flash_refusal("Not marked", "large_cash.index"))
        await large_cash.mark_filed(get_db(), report_id, g.teller, now())
        flash("Marked filed.")
    return redirect(url_for("large_cash.index"), 303)
