"""Reads the environment (and .env), validates it, and fails fast with one clear line naming the variable."""
import os
import secrets
from pathlib import Path

from .accounts import AMOUNT_MAX_CENTS, LIMIT_MAX_CENTS
from .money import InvalidAmount, to_cents

DEFAULTS = {
    "DB_PATH": "atm.db",
    "DATABASE_URL": "",
    "MAX_DEBT": "1000",
    "MAX_AMOUNT": "1000000.00",
    "PORT": "8000",
    "SECRET_KEY": "",
    "SESSION_IDLE_MINUTES": "15",
    "SESSION_MAX_HOURS": "12",
    "TRUST_PROXY_HEADERS": "0",
}


class ConfigError(Exception):
    """A configuration variable has a value the app cannot run with."""


def _cents(name: str, text: str, allow_zero: bool, maximum_cents: int) -> int:
    try:
        return to_cents(text, allow_zero=allow_zero, maximum_cents=maximum_cents)
    except InvalidAmount as error:
        raise ConfigError(f"{name}={text!r} is not valid: {error}") from None


def _whole(name: str, text: str, low: int, high: int) -> int:
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise ConfigError(f"{name}={text!r} is not valid: use a whole number from {low} to {high}")
    return int(text)


def _secret_key(text: str, instance_path: str) -> str:
    """The configured key, else one generated once and kept in the instance folder so restarts keep sessions."""
    if text:
        return text
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def load(environ, instance_path: str) -> dict:
    """Flask config values from environment-style strings (environ wins over DEFAULTS)."""
    raw = {name: str(environ.get(name, default)).strip() for name, default in DEFAULTS.items()}
    if raw["DATABASE_URL"]:
        raise ConfigError("DATABASE_URL is set, but PostgreSQL is not supported yet: unset it to use SQLite "
                          "(DB_PATH)")
    if not raw["DB_PATH"]:
        raise ConfigError("DB_PATH is empty: name the SQLite file, e.g. DB_PATH=atm.db")
    return {
        "DB_PATH": raw["DB_PATH"],
        "MAX_DEBT_CENTS": _cents("MAX_DEBT", raw["MAX_DEBT"], allow_zero=True, maximum_cents=LIMIT_MAX_CENTS),
        "MAX_AMOUNT_CENTS": _cents("MAX_AMOUNT", raw["MAX_AMOUNT"], allow_zero=False,
                                   maximum_cents=AMOUNT_MAX_CENTS),
        "PORT": _whole("PORT", raw["PORT"], 1, 65535),
        "SESSION_IDLE_MINUTES": _whole("SESSION_IDLE_MINUTES", raw["SESSION_IDLE_MINUTES"], 1, 24 * 60),
        "SESSION_MAX_HOURS": _whole("SESSION_MAX_HOURS", raw["SESSION_MAX_HOURS"], 1, 24 * 7),
        "TRUST_PROXY_HEADERS": _whole("TRUST_PROXY_HEADERS", raw["TRUST_PROXY_HEADERS"], 0, 5),
        "SECRET_KEY": _secret_key(raw["SECRET_KEY"], instance_path),
    }
