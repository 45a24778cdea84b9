# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test check lint bench bench-scale screenshots clean

$(VENV)/.run-installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.run-installed
	$(PY) -m pip install -q -e ".[test]"
	touch $@

run: $(VENV)/.run-installed
	@echo "Serving http://127.0.0.1:$(PORT) (the ledger: DATABASE_URL if set, else SQLite at $${DB_PATH:-atm.db}); Ctrl+C stops."
	PORT=$(PORT) $(PY) -m atm_web.serving.serve --bind 127.0.0.1:$(PORT) --workers $${WEB_CONCURRENCY:-2}

test: $(VENV)/.test-installed
	$(PY) -m pytest $(PYTEST_ARGS)

# The linters (rules and contracts in pyproject.toml): ruff, then import-linter (imports only point down, no import
# circle, no blueprint importing another); .ci/run runs them before the tests.
lint: $(VENV)/.test-installed
	$(PY) -m ruff check atm_web tests wsgi.py
	$(VENV)/bin/lint-imports

# The fast loop while working: the lint, then the in-process tests on SQLite (no server processes, no browser, no
# slow soak), spread over every core (pytest-xdist). `make test` runs everything, on both engines, one at a time.
check: lint
	$(PY) -m pytest -q -n auto -m "not e2e and not browser and not slow" -k "not postgresql" $(PYTEST_ARGS)

screenshots: $(VENV)/.test-installed
	$(PY) -m pytest tests/e2e/test_browser.py -k screens
	@echo "PNG files in screenshots/"

bench: $(VENV)/.test-installed
	$(PY) tests/bench/bench.py

# The ledger at two sizes, built through the app's own statements, each cost of issue 22 measured at both (README,
# "The ledger at scale"): a few minutes at the default sizes; SCALE_SMALL, SCALE_LARGE, SCALE_DAY, SCALE_ENGINES.
bench-scale: $(VENV)/.test-installed
	$(PY) tests/bench/scale.py

clean:
	rm -rf $(VENV) .pytest_cache
