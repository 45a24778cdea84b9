"""The login and first-run setup forms (auth_pages.py)."""
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import InputRequired

from atm_web.web.forms.admin import NewTellerForm


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[InputRequired()],
                           render_kw={"autocomplete": "username", "autocapitalize": "none", "autofocus": True})
    password = PasswordField("Password", validators=[InputRequired()],
                             render_kw={"autocomplete": "current-password"})
    submit = SubmitField("Log in")


class SetupForm(NewTellerForm):
    code = HiddenField()
    role = None  # the first teller is an administrator
    submit = SubmitField("Create administrator")
