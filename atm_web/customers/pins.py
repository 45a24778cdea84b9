"""What stands for a card's secrets in the database: keyed digests of card numbers and PIN-setting codes, slow
salted hashes of keyed PINs, and the rules a new PIN must meet.

Every digest and hash is keyed with PIN_KEY, a secret the database does not hold (the configuration's, kept apart
like SECRET_KEY): a stolen copy of the database cannot find a card by its number, nor try the 10,000 four-digit PINs
against a hash offline. The PIN's hash is werkzeug's default (scrypt, salted, slow on purpose) over an HMAC of the
PIN with the key: never computed on the event loop (cards.py runs it in a thread).
"""
import hashlib
import hmac
import secrets
from itertools import pairwise

from werkzeug.security import check_password_hash, generate_password_hash

PIN_MIN, PIN_MAX = 4, 6
PIN_RULE = (f"{PIN_MIN} to {PIN_MAX} digits, not all the same digit and not a run such as 1234 or 9876")
CODE_DIGITS = 8  # the one-time PIN-setting code of a new card's PIN letter


def keyed(key: bytes, purpose: str, text: str) -> str:
    if not key:
        raise RuntimeError("PIN_KEY is not configured")  # the app always gives one (config.load)
    return hmac.new(key, f"{purpose}:{text}".encode(), hashlib.sha256).hexdigest()


def number_digest(key: bytes, number: str) -> str:
    """What finds a card by its full number."""
    return keyed(key, "card-number", number)


def code_digest(key: bytes, number_digest_: str, code: str) -> str:
    """A card's PIN-setting code, bound to that card."""
    return keyed(key, "pin-code", f"{number_digest_}:{code}")


def new_code() -> str:
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_pin(key: bytes, pin: str) -> str:
    """Slow: call it off the event loop."""
    return generate_password_hash(keyed(key, "pin", pin))


def pin_matches(key: bytes, pin_hash: str, pin: str) -> bool:
    """Slow: call it off the event loop."""
    return check_password_hash(pin_hash, keyed(key, "pin", pin))


def _is_run(pin: str) -> bool:
    steps = {int(b) - int(a) for a, b in pairwise(pin)}
    return steps in ({1}, {-1})


def pin_problem(pin) -> str | None:
    """Why a new PIN cannot be taken (PIN_RULE), or None."""
    if not (isinstance(pin, str) and PIN_MIN <= len(pin) <= PIN_MAX and pin.isascii() and pin.isdigit()):
        return f"A PIN is {PIN_MIN} to {PIN_MAX} digits."
    if len(set(pin)) == 1:
        return "A PIN cannot be one digit repeated."
    if _is_run(pin):
        return "A PIN cannot be a run of digits such as 1234 or 9876."
    return None
