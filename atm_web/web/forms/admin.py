"""The administrators' forms: tellers, roles, passwords, tokens, deactivation, unlocking (admin_pages.py)."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import AnyOf, EqualTo, InputRequired, Length

from atm_web.core.rules import (
    PASSWORD_MAX,
    PASSWORD_MIN,
    ROLES,
    TOKEN_NAME_MAX,
)


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


class DeactivationForm(FlaskForm):
    """Deactivate or reactivate; confirm=yes once the admin has seen which tokens a deactivation revokes."""
    confirm = HiddenField()


class UnlockForm(FlaskForm):
    kind = HiddenField(validators=[InputRequired(), AnyOf(["username", "address"])])
    subject = HiddenField(validators=[InputRequired(), Length(max=64)])
    submit = SubmitField("Unlock")
