"""A customer's record (customer_pages.py; a new holder on the teller pages records one too)."""
import datetime
import re

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, Regexp, ValidationError

from atm_web.core.rules import (
    REASON_MAX,
)
from atm_web.customers.records import DETAIL_FIELDS, Details
from atm_web.web.forms.common import _stripped

DOCUMENT_TYPES = {"passport": "Passport", "national_id": "National identity card",
                  "driving_licence": "Driving licence", "residence_permit": "Residence permit"}


_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{4,28}[0-9]\Z")


_DOCUMENT_NUMBER = re.compile(r"[A-Z0-9][A-Z0-9 -]{0,38}[A-Z0-9]?\Z")


def _date_of_birth(form, field):
    text = (field.data or "").strip()
    try:
        day = datetime.date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        day = None
    if day is None or not datetime.date(1900, 1, 1) <= day <= datetime.date.today():
        raise ValidationError("Enter the date of birth as YYYY-MM-DD (a past date).")
    field.data = text


class CustomerForm(FlaskForm):
    """A customer's record (customers.Details)."""
    full_name = StringField("Full name", filters=[_stripped], validators=[InputRequired(), Length(max=100)],
                            render_kw={"autocomplete": "off"})
    date_of_birth = StringField("Date of birth (YYYY-MM-DD)", validators=[InputRequired(), _date_of_birth],
                                render_kw={"autocomplete": "off", "placeholder": "1980-01-31"})
    document_type = SelectField("Identity document", choices=DOCUMENT_TYPES)
    document_number = StringField("Document number", filters=[lambda v: _stripped(v).upper() if v else v],
                                  validators=[InputRequired(), Regexp(_DOCUMENT_NUMBER, message=(
                                      "Letters, digits, spaces and '-', up to 40."))],
                                  render_kw={"autocomplete": "off"})
    document_country = StringField("Issuing country (2 letters, e.g. US)",
                                   filters=[lambda v: v.strip().upper() if v else v],
                                   validators=[InputRequired(), Regexp(r"[A-Z]{2}\Z", message="Two letters, e.g. US.")],
                                   render_kw={"autocomplete": "off", "maxlength": 2})
    address = StringField("Address", filters=[_stripped], validators=[InputRequired(), Length(max=REASON_MAX)],
                          render_kw={"autocomplete": "off"})
    phone = StringField("Phone", filters=[_stripped], validators=[InputRequired(), Regexp(_PHONE, message=(
        "Digits, spaces, '+', '(', ')' and '-', 6 to 30."))], render_kw={"autocomplete": "off", "inputmode": "tel"})
    submit = SubmitField("Save customer")

    @property
    def details(self) -> Details:
        return Details(**{name: self[name].data for name in DETAIL_FIELDS})
