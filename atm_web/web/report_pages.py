"""Blueprint: the end of the day, for administrators: the day's report (printable), its CSV, and Close the day.

The JSON of the same report is the API's (api.end_of_day_report).
"""
from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from atm_web.cash import end_of_day
from atm_web.cash.day_chart import chart
from atm_web.core.clock import now
from atm_web.storage import get_db
from atm_web.web.errors import show_refusals_on
from atm_web.web.filters import actor_name
from atm_web.web.forms.common import ButtonForm
from atm_web.web.guards import require_admin

bp = Blueprint("reports", __name__, url_prefix="/admin/end-of-day")
bp.before_request(require_admin)


async def _date() -> str:
    """The date asked for (?date=YYYY-MM-DD), else the current business date."""
    asked = request.args.get("date")
    if asked is None:
        return await end_of_day.current_business_date(get_db(), now=now())
    return end_of_day.check_date(asked)


def _names(actors) -> dict[str, str]:
    return {actor: actor_name(actor) for actor in actors}


@bp.get("/")
async def index():
    show_refusals_on(_bad_date)
    day = await end_of_day.report(get_db(), await _date())
    current = await end_of_day.current_business_date(get_db(), now=now())
    return render_template("reports/end_of_day.html", report=day, chart=chart(day.per_hour, _names(day.per_hour)),
                           names=_names(day.by_teller), current=current, button=ButtonForm(formdata=None))


@bp.get("/report.csv")
async def csv_file():
    show_refusals_on(_bad_date)
    day = await end_of_day.report(get_db(), await _date())
    body = end_of_day.to_csv(day, current_app.config["BRANCH_TIMEZONE"])
    return body, 200, {"Content-Type": "text/csv; charset=utf-8",
                       "Content-Disposition": f'attachment; filename="end-of-day-{day.business_date}.csv"'}


@bp.post("/close")
async def close():
    if ButtonForm().validate():
        show_refusals_on(_refused_close)
        closed, digest = await end_of_day.close_day(get_db(), g.teller, now=now())
        flash(f"{closed} closed. Its CSV's SHA-256, recorded in the audit log: {digest}")
        return redirect(url_for("reports.index", date=closed), 303)
    return redirect(url_for("reports.index"), 303)


def _refused_close(error, message, status):
    flash(f"The day was not closed: {message}")
    return redirect(url_for("reports.index"), 303)


def _bad_date(error, message, status):
    flash(f"Report: {message}")
    return redirect(url_for("reports.index"), 303)
