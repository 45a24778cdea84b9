"""A supervisor's decision (approval_pages.py)."""
from flask_wtf import FlaskForm
from wtforms import StringField, SubmitField
from wtforms.validators import InputRequired, Length

from atm_web.core.rules import (
    REASON_MAX,
)
from atm_web.web.forms.common import _stripped


class DecisionForm(FlaskForm):
    note = StringField("Note", filters=[_stripped], validators=[InputRequired(), Length(max=REASON_MAX)],
                       render_kw={"autocomplete": "off"})
    approve = SubmitField("Approve")
    decline = SubmitField("Decline")
