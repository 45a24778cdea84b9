"""Text that comes in, checked once where it enters: no control character (NUL and the like) in any form field,
query parameter or JSON string, whatever the field; tab, newline and carriage return are text.

PostgreSQL refuses a NUL in a string (a 500 if it reached a statement) and SQLite's LIKE stops at one, so such
text never gets past the request's edge: a form or a query string is refused with 422 before any view runs
(register), a JSON body when it is read (json_body.py).
"""
import unicodedata

from flask import request

from atm_web.core.refusals import ControlCharacters

_ALLOWED = frozenset("\t\n\r")


def is_clean(text: str) -> bool:
    """No control character (Unicode category Cc, but tab, newline, carriage return) and no lone surrogate."""
    return all(c in _ALLOWED or unicodedata.category(c) not in ("Cc", "Cs") for c in text if not c.isprintable())


def check_value(value, where: str):
    """Every string inside a decoded JSON value (keys too), else ControlCharacters naming where."""
    if isinstance(value, str):
        if not is_clean(value):
            raise ControlCharacters(where)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_value(key, where)
            check_value(item, where)
    elif isinstance(value, list):
        for item in value:
            check_value(item, where)
    return value


def refuse_control_characters():
    """before_request of the whole app: the query string's and the form's names and values."""
    sources = [("The address", request.args)]
    if request.method != "GET" and not request.is_json:
        sources.append(("The form", request.form))
    for where, values in sources:
        for name, value in values.items(multi=True):
            if not (is_clean(name) and is_clean(value)):
                raise ControlCharacters(where)


def register(app) -> None:
    app.before_request(refuse_control_characters)
