"""The app's one clock: Unix seconds from app.config["CLOCK"] (time.time unless a test sets its own), and the
text forms the ledger and the staff records store.

Views read it once per request and pass it down (`now=`), so a test that moves the clock moves journal times,
session expiry and login locks alike. A caller outside a request (a test, a script) that passes no time gets the
system's.
"""
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import current_app


def now() -> float:
    """The app's current time (needs an app context: a request or a CLI command)."""
    return current_app.config["CLOCK"]()


def system() -> float:
    """The system's time: the app's CLOCK unless a test sets its own."""
    return time.time()


def or_system(seconds: float | None) -> float:
    """The time a caller passed, else the system's (for callers outside a request: tests, scripts)."""
    return system() if seconds is None else seconds


def _iso(seconds: float, timespec: str) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso(seconds: float) -> str:
    """Staff records' time: 2026-12-01T16:31:29Z."""
    return _iso(seconds, "seconds")


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local(moment: str | float, zone: str) -> str:
    """A stored time (ISO 8601 UTC text, or Unix seconds) as the branch reads it, in its zone (config
    BRANCH_TIMEZONE) with the zone's abbreviation: '2026-12-01 11:31:29 EST'."""
    if isinstance(moment, str):
        at = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    else:
        at = datetime.fromtimestamp(moment, UTC)
    return at.astimezone(_zone(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


@dataclass(frozen=True)
class Stamp:
    """When a journal row is written: its time (journal_time) and the branch's local date then (a posting's
    business date, unless that day is closed already)."""
    created_at: str
    today: str
    seconds: float = 0.0  # the app clock's time, for the audit rows written with the journal's


def stamp(seconds: float | None, zone: str) -> Stamp:
    seconds = or_system(seconds)
    return Stamp(journal_time(seconds), datetime.fromtimestamp(seconds, _zone(zone)).date().isoformat(), seconds)


def file_stamp(seconds: float | None = None) -> str:
    """A time in a file's name, sorting as it reads: 20261204T101500123456Z (UTC, to the microsecond)."""
    return datetime.fromtimestamp(or_system(seconds), UTC).strftime("%Y%m%dT%H%M%S%fZ")


def log_time(seconds: float | None = None) -> str:
    """A log line's time: 2026-12-04T10:15:00.123Z."""
    return _iso(or_system(seconds), "milliseconds")


def journal_time(seconds: float | None) -> str:
    """A journal row's time, to the microsecond: the given time, else the system's."""
    return _iso(or_system(seconds), "microseconds")
