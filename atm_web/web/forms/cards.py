"""A customer's cards (customer_pages.py): issuing one, reporting it lost, asking a supervisor to unblock it."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, SelectMultipleField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, Regexp
from wtforms.widgets import CheckboxInput, ListWidget

from atm_web.core.rules import REASON_MAX
from atm_web.web.forms.common import EXPIRED, FORM_KEY, _stripped


class IssueCardForm(FlaskForm):
    """The accounts (choices: the customer's) and the default one; a one-time key, so a card is issued once."""
    accounts = SelectMultipleField("Accounts the card reaches", choices=[], widget=ListWidget(prefix_label=False),
                                   option_widget=CheckboxInput(),
                                   validators=[InputRequired("Choose at least one account.")])
    default = RadioField("Default account (the one an ATM shows first)", choices=[],
                         validators=[InputRequired("Choose the default account.")])
    form_key = HiddenField(validators=[InputRequired(EXPIRED), Regexp(FORM_KEY, message=EXPIRED)])
    submit = SubmitField("Issue the card")

    def with_accounts(self, numbers):
        self.accounts.choices = [(number, number) for number in numbers]
        self.default.choices = [(number, number) for number in numbers]
        return self


class LostForm(FlaskForm):
    confirm = BooleanField("The customer says this card is lost or stolen: block it for good",
                           validators=[InputRequired("Tick the box to confirm: a lost card is never used again.")])
    submit = SubmitField("Report lost")


class UnblockForm(FlaskForm):
    reason = StringField("Reason", filters=[_stripped], validators=[InputRequired(), Length(max=REASON_MAX)],
                         render_kw={"autocomplete": "off"})
    submit = SubmitField("Ask to unblock")
