"""One source for every rule: each is written once (rules.py, money.py, clock.py) and imported everywhere else.

A grep over the package and the templates, so a rule restated somewhere fails here."""
import re

import pytest

from conftest import ROOT

SOURCES = [*ROOT.joinpath("atm_web").rglob("*.py"), *ROOT.joinpath("templates").rglob("*.html")]


def where(pattern: str) -> list[str]:
    found = []
    for path in SOURCES:
        for line in path.read_text().splitlines():
            if re.search(pattern, line.split("#")[0] if path.suffix == ".py" else line):
                found.append(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("what, pattern, home", [
    ("the account-number pattern", r"A-Za-z0-9\]\{1,34\}", ["atm_web/core/rules.py"]),
    ("the account-number wording", r"1 to 34", ["atm_web/core/rules.py"]),
    ("the largest limit", r"10\s*\*\*\s*10\b|100000000\b|100,000,000", ["atm_web/core/rules.py"]),
    ("the largest amount", r"10\s*\*\*\s*11\b", ["atm_web/core/rules.py"]),
    ("the largest balance", r"10\s*\*\*\s*15\b", ["atm_web/core/rules.py"]),
    ("the password lengths", r"\b12\b.*\b128\b|min=12|minlength=\"12|least 12", ["atm_web/core/rules.py"]),
    ("the reason length", r"REASON_MAX = |200 char|max=200|Length\": 200|<= 200", ["atm_web/core/rules.py"]),
    ("the transaction kinds' labels", r"\"Reversal \(credit\)\"", ["atm_web/core/rules.py"]),
    ("the busy-ledger wording", r"ledger is busy", ["atm_web/core/rules.py"]),
    ("the system clock", r"time\.time\(|datetime\.now\(|datetime\.utcnow\(", ["atm_web/core/clock.py"]),
    ("money formatting", r"/ ?100\b|:\.2f|,\.2f|\{:,", ["atm_web/core/money.py", "atm_web/core/money.py"]),
])
def test_each_rule_is_written_once(what, pattern, home):
    assert where(pattern) == home, f"{what} is restated outside {home[0]}"


def test_views_await_the_ledger_except_where_their_docstring_says_why():
    """One calling convention: async views await; aio.run only in the sync auth views and guards (their docstrings
    say why), the CLI, the app factory and the server glue."""
    assert sorted(set(where(r"aio\.run\("))) == ["atm_web/__init__.py", "atm_web/cli.py", "atm_web/serving/aio.py",
                                                  "atm_web/serving/serve.py", "atm_web/web/auth_pages.py",
                                                  "atm_web/web/guards.py"]
    for sync in ("atm_web/web/auth_pages.py", "atm_web/web/guards.py"):
        assert "aio.run" in ROOT.joinpath(sync).read_text().split('"""')[1]
