"""FlaskForm classes for the teller pages."""
import functools
import re
import uuid

from flask import current_app
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import AnyOf, EqualTo, InputRequired, Length, Regexp, ValidationError

from .money import InvalidAmount, format_cents, to_cents
from .rules import (
    ACCOUNT_NUMBER_RULE,
    LIMIT_MAX_CENTS,
    PASSWORD_MAX,
    PASSWORD_MIN,
    REASON_MAX,
    ROLES,
    TOKEN_NAME_MAX,
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


class LookupForm(FlaskForm):
    """The lookup of an account by its number in a link (GET /?account_number=...); the page's own field searches
    names too (SearchForm)."""
    class Meta:
        csrf = False  # a GET lookup changes nothing

    account_number = StringField("Account number", validators=[InputRequired(), _account_number],
                                 render_kw={"autocomplete": "off", "autofocus": True})
    submit = SubmitField("Look up")


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
    role = SelectField("Role", choices={role: role.capitalize() for role in ROLES}, default="teller")
    submit = SubmitField("Add teller")


class SetupForm(NewTellerForm):
    code = HiddenField()
    role = None  # the first teller is an administrator
    submit = SubmitField("Create administrator")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices={role: role.capitalize() for role in ROLES})
    submit = SubmitField("Set role")


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


class ReversalForm(IdCheckFields, FlaskForm):
    reason = StringField("Reason for the reversal", validators=[InputRequired(), Length(max=REASON_MAX)],
                         render_kw={"autocomplete": "off"})
    form_key = HiddenField()
    submit = SubmitField("Ask for the reversal")


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

