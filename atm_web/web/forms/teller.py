"""The teller pages' forms: the lookup and the search, a deposit or withdrawal, a transfer, an overdraft limit, a
reversal, the large-cash identity check, and the holder of an account (teller_pages.py)."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, InputRequired, Length, Regexp, ValidationError

from atm_web.core.money import InvalidAmount, to_cents
from atm_web.core.rules import (
    LIMIT_MAX_CENTS,
    REASON_MAX,
)
from atm_web.web.forms.common import MoneyForm, _account_number, _stripped
from atm_web.web.forms.customers import CustomerForm


class LookupForm(FlaskForm):
    """The lookup of an account by its number in a link (GET /?account_number=...); the page's own field searches
    names too (SearchForm)."""
    class Meta:
        csrf = False  # a GET lookup changes nothing

    account_number = StringField("Account number", validators=[InputRequired(), _account_number],
                                 render_kw={"autocomplete": "off", "autofocus": True})
    submit = SubmitField("Look up")


class IdCheckFields:
    """The large-cash identity check a teller records on a form that moves cash: who is present, and the box."""
    id_checked = BooleanField("I checked this identity document of the person present")
    present_customer = HiddenField(validators=[Regexp(r"([0-9]{1,18})?\Z", message="Choose the person present.")])


class TransactionForm(IdCheckFields, MoneyForm):
    account_number = StringField("Account number", validators=[InputRequired(), _account_number],
                                 render_kw={"autocomplete": "off"})
    confirm_open = HiddenField()
    deposit = SubmitField("Deposit")
    withdraw = SubmitField("Withdraw")

    @property
    def kind(self) -> str | None:
        return "withdrawal" if self.withdraw.data else "deposit" if self.deposit.data else None


class TransferForm(MoneyForm):
    from_account = StringField("From account", validators=[InputRequired(), _account_number],
                               render_kw={"autocomplete": "off"})
    to_account = StringField("To account", validators=[InputRequired(), _account_number],
                             render_kw={"autocomplete": "off"})
    confirm_open = HiddenField()
    submit = SubmitField("Transfer")

    def validate_to_account(self, field):
        if field.data == (self.from_account.data or "").strip():
            raise ValidationError("Choose two different accounts.")


class OverdraftLimitForm(FlaskForm):
    limit = StringField("Own overdraft limit", render_kw={"inputmode": "decimal", "autocomplete": "off"})
    set_limit = SubmitField("Set limit")
    use_default = SubmitField("Use the default limit")
    limit_cents: int | None = None

    def validate_limit(self, field):
        if self.use_default.data:
            return
        try:
            self.limit_cents = to_cents(field.data, allow_zero=True, maximum_cents=LIMIT_MAX_CENTS)
        except InvalidAmount as error:
            raise ValidationError(str(error).replace("amount", "limit").capitalize() + ".") from None


class ReversalForm(IdCheckFields, FlaskForm):
    reason = StringField("Reason for the reversal", validators=[InputRequired(), Length(max=REASON_MAX)],
                         render_kw={"autocomplete": "off"})
    form_key = HiddenField()
    submit = SubmitField("Ask for the reversal")


class ReleaseHoldForm(FlaskForm):
    """A supervisor's release of a customer's hold, with the reason (audited)."""
    note = StringField("Reason for the release", filters=[_stripped],
                       validators=[DataRequired("Give the reason."), Length(max=REASON_MAX)],
                       render_kw={"autocomplete": "off"})
    submit = SubmitField("Release")


class HolderForm(CustomerForm):
    """Who holds an account: an existing customer (holder = their id), or a new one (holder = 'new')."""
    holder = StringField("Holder", validators=[InputRequired("Choose the holder: a customer found, or a new one."),
                                               Regexp(r"(new|[0-9]{1,18})\Z", message="Choose the holder.")])
    id_checked = BooleanField("I checked the identity document of this holder, who is present")
    submit = SubmitField("Add holder")

    @property
    def customer_id(self) -> int | None:
        return None if self.holder.data == "new" else int(self.holder.data)

    def validate(self, extra_validators=None):
        if (self.holder.data or "") != "new":  # an existing customer: their record's fields are not asked for
            return self.holder.validate(self) and (not self.meta.csrf or self.csrf_token.validate(self))
        return super().validate(extra_validators)


class SearchForm(FlaskForm):
    """A search by account number, part of a name or a document number: posted, so a name is never in a URL."""
    query = StringField("Account number or holder's name", filters=[_stripped],
                        validators=[InputRequired(), Length(max=100)],
                        render_kw={"autocomplete": "off", "autofocus": True})
    search = SubmitField("Look up")
