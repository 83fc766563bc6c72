# The two commands: `make run` (the whole product locally) and `make test` (the whole suite);
# `make check` is the fast inner loop. All create the virtual environment first; only
# Python 3.11+ and make are needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check lint format bench screenshots clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(PY) main.py serve

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

# Lint, types and the tests that need neither a database nor a browser (nor minutes):
# tests/conftest.py marks every test that uses PostgreSQL as `database`.
check: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -q -m "not database and not browser and not slow"

# Refresh the README's dashboard screenshots (docs/*.png) from the browser test.
screenshots: $(STAMP)
	ANALYTICS_UPDATE_SCREENSHOTS=1 $(PY) -m pytest tests/test_dashboard_browser.py -k demo -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

# Quick sizes of every benchmark; each script's --help gives the issue-sized flags.
bench: $(STAMP)
	$(PY) bench/bench_rate_limiter.py
	$(PY) bench/bench_reader.py --count 20000
	$(PY) bench/bench_enqueue.py --local-count 20000 --emulator-count 10000
	$(PY) bench/bench_pipeline.py --count 2000 --rpm 1200
	$(PY) bench/bench_api.py --analyses 200000
	$(PY) bench/bench_chaos.py --count 300
	$(PY) bench/bench_redaction.py
	$(PY) bench/bench_late_arrivals.py --count 20000

clean:
	rm -rf $(VENV) .venv-* .local test-artifacts .pytest_cache .ruff_cache
