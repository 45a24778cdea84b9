"""FlaskForm classes for the teller pages."""
import re

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import AnyOf, EqualTo, InputRequired, Length, Regexp, ValidationError

from .money import InvalidAmount, to_cents
from .rules import (
    ACCOUNT_NUMBER_RULE,
    LIMIT_MAX_CENTS,
    PASSWORD_MAX,
    PASSWORD_MIN,
    REASON_MAX,
    TOKEN_NAME_MAX,
    is_account_number,
)

FORM_KEY = re.compile(r"[0-9a-f]{32}\Z")  # a money form's one-time key (teller.new_form_key)
EXPIRED = "This form has expired: reload the page."


def _account_number(form, field):
    field.data = (field.data or "").strip()
    if not is_account_number(field.data):
        raise ValidationError(f"Use {ACCOUNT_NUMBER_RULE}, no spaces.")


class LookupForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    account_number = StringField("Account number", validators=[InputRequired(), _account_number],
                                 render_kw={"autocomplete": "off", "autofocus": True})
    submit = SubmitField("Look up")


class MoneyForm(FlaskForm):
    """A form that moves money: an amount, and a one-time key so that it moves money at most once."""
    amount = StringField("Amount", validators=[InputRequired()],
                         render_kw={"inputmode": "decimal", "autocomplete": "off", "placeholder": "0.00"})
    form_key = HiddenField(validators=[InputRequired(EXPIRED), Regexp(FORM_KEY, message=EXPIRED)])
    amount_cents: int | None = None

    def validate_amount(self, field):
        try:
            self.amount_cents = to_cents(field.data, maximum_cents=current_app.config["MAX_AMOUNT_CENTS"])
        except InvalidAmount as error:
            raise ValidationError(str(error).capitalize() + ".") from None


class TransactionForm(MoneyForm):
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
    submit = SubmitField("Transfer")

    def validate_to_account(self, field):
        if field.data == (self.from_account.data or "").strip():
            raise ValidationError("Choose two different accounts.")


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[InputRequired()],
                           render_kw={"autocomplete": "username", "autocapitalize": "none", "autofocus": True})
    password = PasswordField("Password", validators=[InputRequired()],
                             render_kw={"autocomplete": "current-password"})
    submit = SubmitField("Log in")


class NewTellerForm(FlaskForm):
    username = StringField("Username", validators=[InputRequired()],
                           render_kw={"autocomplete": "off", "autocapitalize": "none"})
    password = PasswordField("Password", validators=[InputRequired(), Length(min=PASSWORD_MIN, max=PASSWORD_MAX)],
                             render_kw={"autocomplete": "new-password"})
    confirm = PasswordField("Repeat password",
                            validators=[InputRequired(), EqualTo("password", "The passwords differ.")],
                            render_kw={"autocomplete": "new-password"})
    admin = BooleanField("Administrator")
    submit = SubmitField("Add teller")


class SetupForm(NewTellerForm):
    code = HiddenField()
    submit = SubmitField("Create administrator")


class PasswordResetForm(FlaskForm):
    password = PasswordField("New password", validators=[InputRequired(), Length(min=PASSWORD_MIN, max=PASSWORD_MAX)],
                             render_kw={"autocomplete": "new-password"})
    submit = SubmitField("Reset password")


class NewTokenForm(FlaskForm):
    name = StringField("Token name", validators=[InputRequired(), Length(max=TOKEN_NAME_MAX)],
                       render_kw={"autocomplete": "off"})
    read_only = BooleanField("Read-only")
    admin = BooleanField("Admin scope (may also set overdraft limits)")
    submit = SubmitField("Create token")


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


class ReversalForm(FlaskForm):
    reason = StringField("Reason for the reversal", validators=[InputRequired(), Length(max=REASON_MAX)],
                         render_kw={"autocomplete": "off"})
    submit = SubmitField("Reverse")


class DeactivationForm(FlaskForm):
    """Deactivate or reactivate; confirm=yes once the admin has seen which tokens a deactivation revokes."""
    confirm = HiddenField()


class UnlockForm(FlaskForm):
    kind = HiddenField(validators=[InputRequired(), AnyOf(["username", "address"])])
    subject = HiddenField(validators=[InputRequired(), Length(max=64)])
    submit = SubmitField("Unlock")


class ButtonForm(FlaskForm):
    """A form that is only a button: its CSRF token is what it carries."""
    submit = SubmitField()
