"""What every form shares: the one-time key of a money form, an amount field, a button form, the one line of a
form's errors, and the filters and checks several forms use."""
import re
import uuid

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import InputRequired, Regexp, ValidationError

from atm_web.core.money import InvalidAmount, to_cents
from atm_web.core.rules import (
    ACCOUNT_NUMBER_RULE,
    is_account_number,
)

FORM_KEY = re.compile(r"[0-9a-f]{32}\Z")  # a money form's one-time key (new_form_key)


EXPIRED = "This form has expired: reload the page."


def error_text(form) -> str:
    """Every error of a form, in one line (for a flash)."""
    return " ".join(message for messages in form.errors.values() for message in messages)


def new_form_key() -> str:
    """A money form's one-time key: a posting made with it moves money at most once."""
    return uuid.uuid4().hex


def _account_number(form, field):
    field.data = (field.data or "").strip()
    if not is_account_number(field.data):
        raise ValidationError(f"Use {ACCOUNT_NUMBER_RULE}, no spaces.")


class AmountForm(FlaskForm):
    amount = StringField("Amount", validators=[InputRequired()],
                         render_kw={"inputmode": "decimal", "autocomplete": "off", "placeholder": "0.00"})
    amount_cents: int | None = None

    def validate_amount(self, field):
        try:
            self.amount_cents = to_cents(field.data, maximum_cents=current_app.config["MAX_AMOUNT_CENTS"])
        except InvalidAmount as error:
            raise ValidationError(str(error).capitalize() + ".") from None


class MoneyForm(AmountForm):
    """A form that moves money: an amount, and a one-time key so that it moves money at most once."""
    form_key = HiddenField(validators=[InputRequired(EXPIRED), Regexp(FORM_KEY, message=EXPIRED)])


class ButtonForm(FlaskForm):
    """A form that is only a button: its CSRF token is what it carries."""
    submit = SubmitField()


def _stripped(value):
    return " ".join(value.split()) if isinstance(value, str) else value
