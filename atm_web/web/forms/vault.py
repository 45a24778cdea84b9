"""The vault's forms: a sign-off, a shipment (vault_pages.py)."""
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import InputRequired, Length

from atm_web.core.rules import (
    REASON_MAX,
)
from atm_web.web.forms.common import MoneyForm


class SignOffForm(FlaskForm):
    note = StringField("Sign-off note", validators=[InputRequired(), Length(max=REASON_MAX)],
                       render_kw={"autocomplete": "off"})
    submit = SubmitField("Sign off")


class ShipmentForm(MoneyForm):
    reference = StringField("Shipment reference", validators=[InputRequired(), Length(max=REASON_MAX)],
                            render_kw={"autocomplete": "off"})
    receive = SubmitField("Receive cash")
    send = SubmitField("Send cash")

    @property
    def direction(self) -> str | None:
        return "in" if self.receive.data else "out" if self.send.data else None
