"""The deploy files agree with each other and with the configuration they feed: Procfile, render.yaml, app.json."""
import json
import secrets
import subprocess

import yaml

from atm_web import config

from conftest import ROOT


def procfile() -> dict:
    return dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())


def test_render_and_heroku_run_the_same_commands():
    render = yaml.safe_load((ROOT / "render.yaml").read_text())
    web = render["services"][0]
    assert web["startCommand"] == procfile()["web"]
    assert web["preDeployCommand"] == procfile()["release"] == "flask --app atm_web init-db"
    assert web["healthCheckPath"] == "/health/ready"  # readiness: the database answers, with the code's schema
    assert (ROOT / "requirements.txt").read_text().splitlines()[-1] == "."  # installs pyproject's dependencies


def test_both_platforms_give_the_app_a_database_a_shared_secret_and_the_proxy():
    render = yaml.safe_load((ROOT / "render.yaml").read_text())
    env = {item["key"]: item for item in render["services"][0]["envVars"]}
    assert env["DATABASE_URL"]["fromDatabase"]["name"] == render["databases"][0]["name"]
    assert env["SECRET_KEY"]["generateValue"] is True and env["TRUST_PROXY_HEADERS"]["value"] == "1"
    assert env["PIN_KEY"]["generateValue"] is True  # required with DATABASE_URL, apart from SECRET_KEY
    heroku = json.loads((ROOT / "app.json").read_text())
    assert [addon["plan"].split(":")[0] for addon in heroku["addons"]] == ["heroku-postgresql"]
    assert heroku["env"]["SECRET_KEY"]["generator"] == "secret" and heroku["env"]["PIN_KEY"]["generator"] == "secret"
    assert heroku["env"]["TRUST_PROXY_HEADERS"]["value"] == "1"


def test_the_platform_variables_make_a_valid_configuration(tmp_path):
    heroku = json.loads((ROOT / "app.json").read_text())
    environ = {name: spec.get("value", secrets.token_hex(32)) for name, spec in heroku["env"].items()}  # generated
    environ.update(DYNO="web.1", DATABASE_URL="postgres://u:p@ec2.example:5432/d1", PORT="31000")
    loaded = config.load(environ, str(tmp_path))
    assert loaded["DATABASE_URL"].startswith("postgresql://") and loaded["TRUST_PROXY_HEADERS"] == 1
    assert loaded["DB_POOL_SIZE"] * loaded.get("WEB_CONCURRENCY", 2) * 2 + 1 <= 20  # 2 dynos on a 20-connection plan


def test_ci_runs_the_lint_then_the_whole_suite_and_its_script_parses():
    script = ROOT / ".ci" / "run"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    commands = [line.strip() for line in script.read_text().splitlines() if line.strip().startswith("make ")]
    assert commands == ["make lint", "make test"]
