from decimal import Decimal

import pytest

from atm_web.core.money import InvalidAmount, format_cents, json_number, to_cents


@pytest.mark.parametrize("value, cents", [
    (1, 100), (Decimal("0.1"), 10), (Decimal("150.50"), 15050), ("12.5", 1250), (" 7 ", 700),
    (Decimal("1.500"), 150), (Decimal("1E+2"), 10000), (Decimal("1000000.00"), 100000000), ("0.01", 1),
])
def test_to_cents_accepts(value, cents):
    assert to_cents(value, maximum_cents=100000000) == cents


@pytest.mark.parametrize("value", [
    None, True, False, 0, Decimal("0"), -1, Decimal("-0.01"), "abc", "", "1,000", Decimal("NaN"), "NaN",
    Decimal("Infinity"), "-Infinity", Decimal("0.001"), "1.005", 1.5, [1], {"a": 1}, Decimal("1000000.01"),
    "1e999999",
])
def test_to_cents_refuses(value):
    with pytest.raises(InvalidAmount):
        to_cents(value, maximum_cents=100000000)


def test_zero_allowed_only_when_asked():
    assert to_cents("0", allow_zero=True) == 0


def test_ten_dimes_are_exactly_one():
    assert sum(to_cents(Decimal("0.1")) for _ in range(10)) == 100


@pytest.mark.parametrize("cents, text", [(0, "0.00"), (15050, "150.50"), (-4950, "-49.50"),
                                         (123456789, "1,234,567.89")])
def test_format_cents(cents, text):
    assert format_cents(cents) == text


@pytest.mark.parametrize("cents, text", [(15050, "150.5"), (-4950, "-49.5"), (30, "0.3"), (0, "0.0"),
                                         (99999999999999, "999999999999.99")])
def test_json_number_is_exact(cents, text):
    assert repr(json_number(cents)) == text
