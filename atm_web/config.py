"""Reads the environment (and .env), validates it, and fails fast with one clear line naming the variable."""
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from atm_web.core.money import InvalidAmount, to_cents
from atm_web.core.rules import AMOUNT_MAX_CENTS, LIMIT_MAX_CENTS

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
    "DB_POOL_SIZE": "3",
    "DB_PREPARED_STATEMENTS": "1",
    "ALLOW_EPHEMERAL_SQLITE": "0",
    "DYNO": "",
    "BRANCH_TIMEZONE": "UTC",
    "DENOMINATIONS": "100,50,20,10,5,2,1,0.25,0.10,0.05,0.01",
    "VARIANCE_TOLERANCE": "5.00",
    "APPROVAL_CASH_LIMIT": "5000.00",
    "CTR_THRESHOLD": "10000.00",
    "BACKUP_DIR": "",
    "BACKUP_EVERY_MINUTES": "0",
    "BACKUP_KEEP": "24",
    "LOG_FORMAT": "text",
    "HOLD_SECONDS": "600",
    "HOLD_MAX_SECONDS": "604800",
    "PIN_KEY": "",
    "CARD_PREFIX": "999999",
    "CARD_YEARS": "4",
    "ATM_DAILY_LIMIT": "1000.00",
    "ATM_FAST_CASH": "20,40,60,100,200",
    "ATM_MAX_NOTES": "40",
    "ATM_TAKE_CASH_SECONDS": "30",
    "ATM_IDLE_SECONDS": "30",
    "ATM_CARD_ATTEMPTS_PER_MINUTE": "10",
}
PIN_KEY_MIN = 16  # characters of a configured PIN_KEY
DENOMINATIONS_MAX = 30
FAST_CASH_MAX = 8  # amounts on the ATM's Fast cash screen


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


def _secret_key(text: str, instance_path: str, file_name: str = "secret_key") -> str:
    """The configured key, else one generated once and kept in the instance folder so restarts keep it."""
    if text:
        return text
    path = Path(instance_path) / file_name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def database_url(text: str) -> str:
    """A PostgreSQL URL as Heroku and Render give it (postgres:// or postgresql://, ?sslmode=... kept)."""
    parts = urlsplit(text)
    shown = text if parts.password is None else text.replace(f":{parts.password}@", ":***@", 1)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"DATABASE_URL={shown!r} is not valid: use postgresql://user:password@host:5432/dbname")
    try:
        parts.port  # noqa: B018 (parsing it is the check)
    except ValueError:
        raise ConfigError(f"DATABASE_URL={shown!r} is not valid: its port is not a number") from None
    if not parts.hostname or not parts.path.strip("/"):
        raise ConfigError(f"DATABASE_URL={shown!r} is not valid: it needs a host and a database name, "
                          "e.g. postgresql://user:password@host:5432/dbname")
    return "postgresql" + text[len(parts.scheme):]


def branch_timezone(text: str) -> str:
    """An IANA time zone name the system (or the tzdata package) knows: how every page shows times."""
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"BRANCH_TIMEZONE={text!r} is not valid: use an IANA time zone name, e.g. Europe/Paris "
                          "or America/New_York") from None
    return text


def _amounts(name: str, text: str, most: int, example: str) -> list[int]:
    """A list of 1 to `most` different amounts, comma separated, in cents, in the order given."""
    values = []
    for part in text.split(","):
        try:
            values.append(to_cents(part.strip(), maximum_cents=AMOUNT_MAX_CENTS))
        except InvalidAmount as error:
            raise ConfigError(f"{name}={text!r} is not valid: {part.strip()!r}: {error}") from None
    if len(set(values)) != len(values) or not 1 <= len(values) <= most:
        raise ConfigError(f"{name}={text!r} is not valid: list 1 to {most} different amounts, comma separated, "
                          f"e.g. {example}")
    return values


def denominations(text: str) -> tuple[int, ...]:
    """The notes and coins a drawer is counted in, largest first, in cents: '100,50,20,...,0.01'."""
    return tuple(sorted(_amounts("DENOMINATIONS", text, DENOMINATIONS_MAX, "100,50,20,10,5,1,0.25,0.10,0.05,0.01"),
                        reverse=True))


def fast_cash(text: str) -> tuple[int, ...]:
    """The ATM's Fast cash amounts, in cents, in the order given: '20,40,60,100,200'."""
    return tuple(_amounts("ATM_FAST_CASH", text, FAST_CASH_MAX, "20,40,60,100,200"))


def _flag(name: str, text: str) -> bool:
    if text not in ("0", "1"):
        raise ConfigError(f"{name}={text!r} is not valid: use 1 or 0")
    return text == "1"


def load(environ, instance_path: str) -> dict:
    """Flask config values from environment-style strings (environ wins over DEFAULTS)."""
    raw = {name: str(environ.get(name, default)).strip() for name, default in DEFAULTS.items()}
    url = database_url(raw["DATABASE_URL"]) if raw["DATABASE_URL"] else ""
    if not url and not raw["DB_PATH"]:
        raise ConfigError("DB_PATH is empty: name the SQLite file, e.g. DB_PATH=atm.db")
    if url and not raw["SECRET_KEY"]:  # each server would make its own: sessions would not cross them
        raise ConfigError("SECRET_KEY is not set: with DATABASE_URL, every server must share one; set it to a "
                          "long random text (e.g. python -c 'import secrets; print(secrets.token_hex(32))')")
    if url and not raw["PIN_KEY"]:  # the key of every card's number and PIN: one for all servers, not in the database
        raise ConfigError("PIN_KEY is not set: with DATABASE_URL, every server must share one, kept apart from the "
                          "database; set it to a long random text (e.g. python -c 'import secrets; "
                          "print(secrets.token_hex(32))'), and never change it: the cards' PINs depend on it")
    if raw["PIN_KEY"] and (len(raw["PIN_KEY"]) < PIN_KEY_MIN or raw["PIN_KEY"] == raw["SECRET_KEY"]):
        raise ConfigError(f"PIN_KEY is not valid: use {PIN_KEY_MIN} characters or more, other than SECRET_KEY's")
    if not (len(raw["CARD_PREFIX"]) == 6 and raw["CARD_PREFIX"].isascii() and raw["CARD_PREFIX"].isdigit()):
        raise ConfigError(f"CARD_PREFIX={raw['CARD_PREFIX']!r} is not valid: use six digits, e.g. 999999")
    allow_ephemeral = _flag("ALLOW_EPHEMERAL_SQLITE", raw["ALLOW_EPHEMERAL_SQLITE"])
    if raw["DYNO"] and not url and not allow_ephemeral:
        raise ConfigError("DATABASE_URL is not set on Heroku (DYNO is set): the SQLite file would be lost at every "
                          "restart; add the heroku-postgresql add-on (it sets DATABASE_URL), or set "
                          "ALLOW_EPHEMERAL_SQLITE=1 for a demo whose data may vanish")
    backup_every = _whole("BACKUP_EVERY_MINUTES", raw["BACKUP_EVERY_MINUTES"], 0, 7 * 24 * 60)
    if backup_every and not raw["BACKUP_DIR"]:
        raise ConfigError("BACKUP_EVERY_MINUTES is set but BACKUP_DIR is not: name the folder backups go to")
    if backup_every and url:
        raise ConfigError("BACKUP_EVERY_MINUTES is for a SQLite ledger; with DATABASE_URL use the platform's "
                          "backups or pg_dump (README, Backups)")
    hold_max = _whole("HOLD_MAX_SECONDS", raw["HOLD_MAX_SECONDS"], 1, 366 * 24 * 3600)
    hold_seconds = _whole("HOLD_SECONDS", raw["HOLD_SECONDS"], 1, 366 * 24 * 3600)
    if hold_seconds > hold_max:
        raise ConfigError(f"HOLD_SECONDS={hold_seconds} is longer than HOLD_MAX_SECONDS={hold_max}")
    if raw["LOG_FORMAT"] not in ("text", "json"):
        raise ConfigError(f"LOG_FORMAT={raw['LOG_FORMAT']!r} is not valid: use text or json")
    return {
        "DB_PATH": raw["DB_PATH"],
        "BACKUP_DIR": raw["BACKUP_DIR"],
        "BACKUP_EVERY_MINUTES": backup_every,
        "BACKUP_KEEP": _whole("BACKUP_KEEP", raw["BACKUP_KEEP"], 1, 10_000),
        "LOG_FORMAT": raw["LOG_FORMAT"],
        "HOLD_SECONDS": hold_seconds,
        "HOLD_MAX_SECONDS": hold_max,
        "DATABASE_URL": url,
        "DB_POOL_SIZE": _whole("DB_POOL_SIZE", raw["DB_POOL_SIZE"], 2, 50),
        "DB_PREPARED_STATEMENTS": _flag("DB_PREPARED_STATEMENTS", raw["DB_PREPARED_STATEMENTS"]),
        "MAX_DEBT_CENTS": _cents("MAX_DEBT", raw["MAX_DEBT"], allow_zero=True, maximum_cents=LIMIT_MAX_CENTS),
        "MAX_AMOUNT_CENTS": _cents("MAX_AMOUNT", raw["MAX_AMOUNT"], allow_zero=False,
                                   maximum_cents=AMOUNT_MAX_CENTS),
        "PORT": _whole("PORT", raw["PORT"], 1, 65535),
        "SESSION_IDLE_MINUTES": _whole("SESSION_IDLE_MINUTES", raw["SESSION_IDLE_MINUTES"], 1, 24 * 60),
        "SESSION_MAX_HOURS": _whole("SESSION_MAX_HOURS", raw["SESSION_MAX_HOURS"], 1, 24 * 7),
        "TRUST_PROXY_HEADERS": _whole("TRUST_PROXY_HEADERS", raw["TRUST_PROXY_HEADERS"], 0, 5),
        "SECRET_KEY": _secret_key(raw["SECRET_KEY"], instance_path),
        "PIN_KEY": _secret_key(raw["PIN_KEY"], instance_path, "pin_key"),
        "CARD_PREFIX": raw["CARD_PREFIX"],
        "CARD_YEARS": _whole("CARD_YEARS", raw["CARD_YEARS"], 1, 10),
        "ATM_DAILY_LIMIT_CENTS": _cents("ATM_DAILY_LIMIT", raw["ATM_DAILY_LIMIT"], allow_zero=False,
                                        maximum_cents=AMOUNT_MAX_CENTS),
        "ATM_FAST_CASH": fast_cash(raw["ATM_FAST_CASH"]),
        "ATM_MAX_NOTES": _whole("ATM_MAX_NOTES", raw["ATM_MAX_NOTES"], 1, 200),
        "ATM_TAKE_CASH_SECONDS": _whole("ATM_TAKE_CASH_SECONDS", raw["ATM_TAKE_CASH_SECONDS"], 5, 300),
        "ATM_IDLE_SECONDS": _whole("ATM_IDLE_SECONDS", raw["ATM_IDLE_SECONDS"], 15, 600),
        "ATM_CARD_ATTEMPTS_PER_MINUTE": _whole("ATM_CARD_ATTEMPTS_PER_MINUTE", raw["ATM_CARD_ATTEMPTS_PER_MINUTE"], 1,
                                               1000),
        "BRANCH_TIMEZONE": branch_timezone(raw["BRANCH_TIMEZONE"]),
        "DENOMINATIONS": denominations(raw["DENOMINATIONS"]),
        "VARIANCE_TOLERANCE_CENTS": _cents("VARIANCE_TOLERANCE", raw["VARIANCE_TOLERANCE"], allow_zero=True,
                                           maximum_cents=LIMIT_MAX_CENTS),
        "APPROVAL_CASH_LIMIT_CENTS": _cents("APPROVAL_CASH_LIMIT", raw["APPROVAL_CASH_LIMIT"], allow_zero=True,
                                            maximum_cents=AMOUNT_MAX_CENTS),
        "CTR_THRESHOLD_CENTS": _cents("CTR_THRESHOLD", raw["CTR_THRESHOLD"], allow_zero=False,
                                      maximum_cents=AMOUNT_MAX_CENTS),
    }
