"""Reading JSON request bodies exactly: numbers as Decimal (never float), nothing ambiguous accepted, no control
character in any string (the one reader of every JSON body: the API's and the ATM device interface's)."""
import json
from decimal import Decimal, InvalidOperation

from flask import current_app, request
from flask.json.provider import DefaultJSONProvider

from atm_web.web.errors import ApiError
from atm_web.web.text_input import check_value


class UnclearBody(ValueError):
    """Valid JSON by the grammar that still cannot be read one way only: a duplicate key, a number out of range."""


def _refuse_constant(name):
    raise ValueError(f"{name} is not a number")


def _decimal(text: str) -> Decimal:
    """A JSON number with a fraction or exponent, exactly; one past Decimal's exponent range is refused."""
    try:
        return Decimal(text)
    except InvalidOperation:  # an ArithmeticError, which Flask's own JSON error handling would not catch
        raise UnclearBody(f"the number {text[:24]} is out of range") from None


def _object_without_duplicate_keys(pairs):
    """{"amount": 1, "amount": 1000}: parsers differ on which wins, so neither does."""
    body = dict(pairs)
    if len(body) != len(pairs):
        seen = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise UnclearBody(f"duplicate key {duplicate!r}")
    return body


class LedgerJSONProvider(DefaultJSONProvider):
    """Flask's JSON, reading numbers as Decimal and refusing NaN, Infinity and unclear bodies (ValueError)."""

    def loads(self, s, **kwargs):
        kwargs.setdefault("parse_float", _decimal)
        kwargs.setdefault("parse_constant", _refuse_constant)
        kwargs.setdefault("object_pairs_hook", _object_without_duplicate_keys)
        return json.loads(s, **kwargs)


def json_object(optional: bool = False, example: str = '{"amount": 12.5}') -> dict:
    """The request's JSON object (ApiError 422 otherwise, `example` showing its shape); {} for no body at all where
    the body is optional."""
    if optional and not request.get_data(cache=True):
        return {}
    if not request.is_json:
        raise ApiError(422, "Content-Type must be application/json")
    try:
        body = current_app.json.loads(request.get_data(cache=True))
    except UnclearBody as error:
        raise ApiError(422, f"request body is not valid JSON: {error}") from None
    except ValueError:  # json.JSONDecodeError, UnicodeDecodeError, NaN
        raise ApiError(422, "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, f"request body must be a JSON object like {example}")
    return check_value(body, "the request body")
