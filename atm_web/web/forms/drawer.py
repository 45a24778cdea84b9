"""The drawer's forms: a count of cash by denomination, a request to the vault (drawer_pages.py, and the vault's
close for a teller)."""
import functools

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import ValidationError

from atm_web.core.money import format_cents
from atm_web.web.forms.common import AmountForm

COUNT_MAX = 1_000_000  # notes or coins of one denomination in one count


def _whole_count(form, field):
    text = (field.data or "").strip()
    if text == "":
        field.data = "0"  # left blank: none of that denomination
    elif not (text.isascii() and text.isdigit()) or int(text) > COUNT_MAX:
        raise ValidationError(f"Enter a whole number from 0 to {COUNT_MAX:,}.")
    else:
        field.data = str(int(text))


class _CountForm(FlaskForm):
    """A count of cash, one field per denomination (count_<cents>, labelled 'Count of 20.00')."""
    denominations: tuple[int, ...] = ()

    @property
    def count_fields(self):
        return [self[f"count_{cents}"] for cents in self.denominations]

    @property
    def counts(self) -> dict[int, int]:
        return {cents: int(self[f"count_{cents}"].data or 0) for cents in self.denominations}


@functools.lru_cache(maxsize=4)
def count_form(denominations: tuple[int, ...], button: str):
    """The count form class for these denominations (config DENOMINATIONS), its button named `button`."""
    fields = {f"count_{cents}": StringField(f"Count of {format_cents(cents)}", validators=[_whole_count],
                                            render_kw={"inputmode": "numeric", "autocomplete": "off",
                                                       "placeholder": "0"})
              for cents in denominations}
    return type("CountForm", (_CountForm,), {**fields, "denominations": denominations,
                                             "submit": SubmitField(button)})


class MovementForm(AmountForm):
    """A teller's request to the vault: send cash to it, or ask for more (a request: it moves nothing yet)."""
    to_vault = SubmitField("Send to the vault")
    to_drawer = SubmitField("Ask for cash")

    @property
    def direction(self) -> str | None:
        return "to_vault" if self.to_vault.data else "to_drawer" if self.to_drawer.data else None


def _count_form(button: str, posted: bool):
    """The count form (one field per DENOMINATIONS), empty, or with what was posted."""
    form_class = count_form(current_app.config["DENOMINATIONS"], button)
    return form_class() if posted else form_class(formdata=None)


def open_form(posted: bool = False):
    """Open drawer's count (the drawer's page)."""
    return _count_form("Open drawer", posted)


def close_form(posted: bool = False):
    """The blind count of Close drawer (the drawer's page, and the vault's close of a drawer for its teller)."""
    return _count_form("Close drawer", posted)
