import subprocess
import sys
from pathlib import Path

import pytest

from atm_web import config

from conftest import ROOT

PIN_KEY = "a-pin-key-of-some-length"


def test_defaults(tmp_path):
    loaded = config.load({}, str(tmp_path))
    assert loaded["MAX_DEBT_CENTS"] == 100000
    assert loaded["MAX_AMOUNT_CENTS"] == 100000000
    assert loaded["PORT"] == 8000
    assert loaded["DB_PATH"] == "atm.db"


@pytest.mark.parametrize("name, value", [
    ("MAX_DEBT", "abc"), ("MAX_DEBT", "-5"), ("MAX_DEBT", "1.001"), ("MAX_AMOUNT", "0"),
    ("PORT", "0"), ("PORT", "70000"), ("PORT", "eighty"), ("DB_PATH", ""),
    ("DATABASE_URL", "mysql://db.example/atm"), ("DATABASE_URL", "postgresql://"),
    ("DATABASE_URL", "postgresql://db.example"), ("DATABASE_URL", "postgres://u:p@db.example:port/atm"),
    ("DB_POOL_SIZE", "1"), ("DB_POOL_SIZE", "51"), ("DB_PREPARED_STATEMENTS", "yes"),
    ("ALLOW_EPHEMERAL_SQLITE", "true"),
    ("BRANCH_TIMEZONE", "Mars/Olympus_Mons"), ("BRANCH_TIMEZONE", ""), ("BRANCH_TIMEZONE", "../../etc/passwd"),
    ("BRANCH_TIMEZONE", "EST5EDT,M3.2.0,M11.1.0"),
    ("DENOMINATIONS", ""), ("DENOMINATIONS", "20,10,abc"), ("DENOMINATIONS", "20,20,10"), ("DENOMINATIONS", "0,1"),
    ("DENOMINATIONS", "0.001"), ("DENOMINATIONS", ",".join(str(n) for n in range(1, 40))),
    ("VARIANCE_TOLERANCE", "-1"), ("VARIANCE_TOLERANCE", "five"),
    ("APPROVAL_CASH_LIMIT", "-5"), ("APPROVAL_CASH_LIMIT", "5000.001"), ("APPROVAL_CASH_LIMIT", "lots"),
    ("CTR_THRESHOLD", "0"), ("CTR_THRESHOLD", "ten thousand"), ("CTR_THRESHOLD", "NaN"),
    ("PIN_KEY", "short"), ("PIN_KEY", "k"), ("CARD_PREFIX", "12345"), ("CARD_PREFIX", "1234567"),
    ("CARD_PREFIX", "12345a"), ("CARD_PREFIX", "١٢٣٤٥٦"), ("CARD_YEARS", "0"), ("CARD_YEARS", "11"),
])
def test_bad_values_name_the_variable(tmp_path, name, value):
    with pytest.raises(config.ConfigError, match=f"^{name}[= ]"):
        config.load({name: value, "SECRET_KEY": "k"}, str(tmp_path))


def test_a_bad_database_url_never_shows_its_password(tmp_path):
    with pytest.raises(config.ConfigError) as raised:
        config.load({"DATABASE_URL": "postgres://bank:s3cret@db.example/", "SECRET_KEY": "k", "PIN_KEY": PIN_KEY},
                    str(tmp_path))
    assert "s3cret" not in str(raised.value) and "bank:***@db.example" in str(raised.value)


def test_heroku_and_render_urls_are_taken_as_given(tmp_path):
    loaded = config.load({"DATABASE_URL": "postgres://u:p@db.example:5432/d1?sslmode=require", "SECRET_KEY": "k",
                          "PIN_KEY": PIN_KEY},
                         str(tmp_path))
    assert loaded["DATABASE_URL"] == "postgresql://u:p@db.example:5432/d1?sslmode=require"
    assert (loaded["DB_POOL_SIZE"], loaded["DB_PREPARED_STATEMENTS"]) == (3, True)


def test_postgresql_needs_a_shared_secret_key(tmp_path):
    with pytest.raises(config.ConfigError, match=r"^SECRET_KEY is not set: with DATABASE_URL"):
        config.load({"DATABASE_URL": "postgresql://db.example/atm"}, str(tmp_path))
    assert not (tmp_path / "secret_key").exists()


def test_postgresql_needs_a_pin_key_of_its_own(tmp_path):
    with pytest.raises(config.ConfigError, match=r"^PIN_KEY is not set: with DATABASE_URL"):
        config.load({"DATABASE_URL": "postgresql://db.example/atm", "SECRET_KEY": "k"}, str(tmp_path))
    assert not (tmp_path / "pin_key").exists()
    with pytest.raises(config.ConfigError, match=r"^PIN_KEY is not valid: .* other than SECRET_KEY's"):
        config.load({"SECRET_KEY": PIN_KEY, "PIN_KEY": PIN_KEY}, str(tmp_path))


def test_on_heroku_sqlite_is_refused_unless_a_demo_says_so(tmp_path):
    with pytest.raises(config.ConfigError, match=r"^DATABASE_URL is not set on Heroku") as raised:
        config.load({"DYNO": "web.1"}, str(tmp_path))
    assert "heroku-postgresql" in str(raised.value) and "ALLOW_EPHEMERAL_SQLITE=1" in str(raised.value)
    assert config.load({"DYNO": "web.1", "ALLOW_EPHEMERAL_SQLITE": "1"}, str(tmp_path))["DB_PATH"] == "atm.db"
    assert config.load({"DYNO": "web.1", "DATABASE_URL": "postgres://h/d", "SECRET_KEY": "k", "PIN_KEY": PIN_KEY},
                       str(tmp_path))


def test_secret_key_generated_once_and_kept(tmp_path):
    first = config.load({}, str(tmp_path / "instance"))["SECRET_KEY"]
    second = config.load({}, str(tmp_path / "instance"))["SECRET_KEY"]
    assert first == second and len(first) == 64
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o077 == 0
    assert config.load({"SECRET_KEY": "given"}, str(tmp_path))["SECRET_KEY"] == "given"


def test_pin_key_generated_once_and_kept_apart_from_the_secret_key(tmp_path):
    first = config.load({}, str(tmp_path / "instance"))
    second = config.load({}, str(tmp_path / "instance"))
    assert first["PIN_KEY"] == second["PIN_KEY"] and len(first["PIN_KEY"]) == 64
    assert first["PIN_KEY"] != first["SECRET_KEY"]
    assert (tmp_path / "instance" / "pin_key").stat().st_mode & 0o077 == 0
    assert config.load({"PIN_KEY": PIN_KEY}, str(tmp_path))["PIN_KEY"] == PIN_KEY
    assert (first["CARD_PREFIX"], first["CARD_YEARS"]) == ("999999", 4)


@pytest.mark.parametrize("name, value", [("MAX_DEBT", "abc"), ("MAX_DEBT", "-1"), ("PORT", "0"),
                                         ("BRANCH_TIMEZONE", "Europe/Atlantis")])
def test_bad_value_stops_server_start_with_one_line(tmp_path, name, value):
    env = {"PATH": str(Path(sys.executable).parent), "DB_PATH": str(tmp_path / "a.db"), "SECRET_KEY": "x",
           name: value, "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], proc.stderr
    assert not (tmp_path / "a.db").exists()


@pytest.mark.parametrize("name, value", [
    ("MAX_AMOUNT", "92233720368547758.07"), ("MAX_AMOUNT", "1000000000.01"),
    ("MAX_DEBT", "92233720368547758.07"), ("MAX_DEBT", "100000000.01"), ("MAX_DEBT", "1e30"),
])
def test_amounts_whose_sums_could_overflow_are_refused_at_start(tmp_path, name, value):
    with pytest.raises(config.ConfigError, match=name):
        config.load({name: value}, str(tmp_path))


def test_the_largest_allowed_amounts_load(tmp_path):
    loaded = config.load({"MAX_AMOUNT": "1000000000", "MAX_DEBT": "100000000"}, str(tmp_path))
    assert (loaded["MAX_AMOUNT_CENTS"], loaded["MAX_DEBT_CENTS"]) == (10**11, 10**10)


def test_denominations_and_the_variance_tolerance_have_defaults_and_take_amounts(tmp_path):
    loaded = config.load({}, str(tmp_path))
    assert loaded["DENOMINATIONS"] == (10000, 5000, 2000, 1000, 500, 200, 100, 25, 10, 5, 1)
    assert loaded["VARIANCE_TOLERANCE_CENTS"] == 500
    loaded = config.load({"DENOMINATIONS": "0.50, 200,5", "VARIANCE_TOLERANCE": "0"}, str(tmp_path))
    assert loaded["DENOMINATIONS"] == (20000, 500, 50) and loaded["VARIANCE_TOLERANCE_CENTS"] == 0


def test_the_approval_limit_and_the_large_cash_threshold_have_defaults_and_take_amounts(tmp_path):
    loaded = config.load({}, str(tmp_path))
    assert (loaded["APPROVAL_CASH_LIMIT_CENTS"], loaded["CTR_THRESHOLD_CENTS"]) == (500000, 1000000)
    loaded = config.load({"APPROVAL_CASH_LIMIT": "0", "CTR_THRESHOLD": "3000.50"}, str(tmp_path))
    assert (loaded["APPROVAL_CASH_LIMIT_CENTS"], loaded["CTR_THRESHOLD_CENTS"]) == (0, 300050)


def test_the_branch_time_zone_defaults_to_utc_and_takes_iana_names(tmp_path):
    assert config.load({}, str(tmp_path))["BRANCH_TIMEZONE"] == "UTC"
    assert config.load({"BRANCH_TIMEZONE": " America/New_York "}, str(tmp_path))["BRANCH_TIMEZONE"] == \
        "America/New_York"
