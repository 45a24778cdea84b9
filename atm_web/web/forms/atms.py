"""Admin > ATMs' forms (atm_pages.py): registering an ATM with its cassettes, and a replenishment's blind count and
load (one field per cassette, and per note for the deposit and retract bins)."""
import functools

from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import InputRequired, Length

from atm_web.cash.atms import CASSETTES_MAX, DISPENSERS, LOCATION_MAX, NAME_MAX
from atm_web.cash.replenishment import Count
from atm_web.core.money import format_cents
from atm_web.web.forms.common import _stripped
from atm_web.web.forms.drawer import _whole_count


class RegisterAtmForm(FlaskForm):
    name = StringField("Name", filters=[_stripped], validators=[InputRequired(), Length(max=NAME_MAX)],
                       render_kw={"autocomplete": "off"})
    location = StringField("Location", filters=[_stripped], validators=[InputRequired(), Length(max=LOCATION_MAX)],
                           render_kw={"autocomplete": "off"})
    dispenser = SelectField("Dispenser", choices=DISPENSERS, default="screen")  # absent: the screen
    submit = SubmitField("Register ATM")

    @property
    def denominations(self) -> list[int]:
        return [int(self[f"cassette_{p}"].data) for p in range(1, CASSETTES_MAX + 1) if self[f"cassette_{p}"].data]


@functools.lru_cache(maxsize=8)
def register_form(notes: tuple[int, ...]):
    """The form class for the branch's notes (DENOMINATIONS of 1.00 and up)."""
    choices = {str(cents): format_cents(cents) for cents in notes}
    fields = {f"cassette_{p}": SelectField(f"Cassette {p}", choices=choices if p == 1 else {"": "None", **choices},
                                           validators=[InputRequired()] if p == 1 else [], default="")
              for p in range(1, CASSETTES_MAX + 1)}
    return type("RegisterForm", (RegisterAtmForm,), fields)


class _ReplenishForm(FlaskForm):
    cassettes: tuple[tuple[int, int], ...] = ()  # (position, cents)
    notes: tuple[int, ...] = ()

    def fields_of(self, prefix: str, keys):
        return [self[f"{prefix}_{key}"] for key in keys]

    @property
    def left_fields(self):
        return self.fields_of("left", (p for p, _ in self.cassettes))

    @property
    def deposit_fields(self):
        return self.fields_of("deposit", self.notes)

    @property
    def retract_fields(self):
        return self.fields_of("retract", self.notes)

    @property
    def load_fields(self):
        return self.fields_of("load", (p for p, _ in self.cassettes))

    def _numbers(self, prefix, keys) -> dict[int, int]:
        return {key: int(self[f"{prefix}_{key}"].data or 0) for key in keys}

    @property
    def count(self) -> Count:
        positions = [p for p, _ in self.cassettes]
        return Count(self._numbers("left", positions), self._numbers("deposit", self.notes),
                     self._numbers("retract", self.notes))

    @property
    def loaded(self) -> dict[int, int]:
        return self._numbers("load", [p for p, _ in self.cassettes])


@functools.lru_cache(maxsize=32)
def replenish_form(cassettes: tuple[tuple[int, int], ...], notes: tuple[int, ...]):
    """The blind count and load form of an ATM with these cassettes ((position, cents)...)."""
    def count_field(label):
        return StringField(label, validators=[_whole_count],
                           render_kw={"inputmode": "numeric", "autocomplete": "off", "placeholder": "0"})
    fields = {}
    for position, cents in cassettes:
        fields[f"left_{position}"] = count_field(f"Notes left in cassette {position} ({format_cents(cents)})")
        fields[f"load_{position}"] = count_field(f"Notes loaded into cassette {position} ({format_cents(cents)})")
    for cents in notes:
        fields[f"deposit_{cents}"] = count_field(f"Deposit bin: count of {format_cents(cents)}")
        fields[f"retract_{cents}"] = count_field(f"Retract bin: count of {format_cents(cents)}")
    return type("ReplenishForm", (_ReplenishForm,), {**fields, "cassettes": cassettes, "notes": notes,
                                                     "submit": SubmitField("Enter the count")})
