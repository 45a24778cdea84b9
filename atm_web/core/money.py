"""Parsing and formatting amounts: Decimal in, integer cents out, and back."""
from decimal import Decimal, InvalidOperation

CENT = Decimal("0.01")


class InvalidAmount(ValueError):
    """An amount that is not a positive number of cents within the allowed maximum."""


def to_cents(value, *, maximum_cents: int | None = None, allow_zero: bool = False) -> int:
    """Parse a JSON number (int or Decimal) or decimal text into integer cents, or raise InvalidAmount."""
    if value is None:
        raise InvalidAmount("amount is required")
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        raise InvalidAmount("amount must be a number")
    if isinstance(value, str):
        text = value.strip()
        if not text or not all(c in "0123456789.-+eE" for c in text):
            raise InvalidAmount("amount must be a number like 12.50")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise InvalidAmount("amount must be a number like 12.50") from None
    amount = Decimal(value)
    if not amount.is_finite():
        raise InvalidAmount("amount must be a finite number")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidAmount("amount must be greater than zero" if not allow_zero else "amount must not be negative")
    if maximum_cents is not None and amount > Decimal(maximum_cents) / 100:
        raise InvalidAmount(f"amount must not exceed {format_cents(maximum_cents)}")
    if amount.adjusted() > 20:
        raise InvalidAmount("amount is too large")
    if amount != amount.quantize(CENT):
        raise InvalidAmount("amount must have at most 2 decimal places")
    return int(amount * 100)


def format_cents(cents: int) -> str:
    """Cents as text for people: 150050 -> '1,500.50', -4950 -> '-49.50'."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{frac:02d}"


def json_number(cents: int) -> float:
    """Cents as the JSON number the API writes (150050 -> 1500.5).

    JSON has no decimal type; a number with at most 15 significant digits survives the float round trip
    exactly (repr gives the shortest text that reads back to it), which the assertion holds us to.
    """
    exact = Decimal(cents) / 100
    number = float(exact)
    if Decimal(repr(number)) != exact:
        raise OverflowError(f"{cents} cents cannot be written exactly as a JSON number")
    return number
