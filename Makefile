# newswatch: `make run` starts the daemon on config/, `make test` runs the default tier of the
# tests (about a minute and a half), `make test-all` every test (slow, chromium, postgres too).
# Both create .venv on first use; only Python 3.11+ with pip and venv is needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: help run once check test test-all lint fuzz bench bench-archive bench-config bench-extract bench-ingest bench-matching bench-soak bench-workers bench-latency bench-desk bench-dbcopy bench-scale clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else \
		"newswatch needs Python 3.11 or newer; set PYTHON=python3.x")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run  ## set up, then run the daemon on config/ (Ctrl-C stops it)
	$(BIN)/newswatch --config config run

once: $(VENV)/.installed-run  ## set up, then make one pass over every source
	$(BIN)/newswatch --config config once

check: $(VENV)/.installed-run  ## validate config/
	$(BIN)/newswatch --config config check

# pytest-xdist spreads the tests over the cores (most of their time is spent waiting on
# local servers and child processes). The slow tier runs after, one test at a time: the
# crash and soak-like tests race real daemons against the clock, and must not share the
# cores with the rest of the suite. PYTEST_FLAGS adds options to every run.
TIERS        := not slow and not chromium and not postgres
XDIST        ?= -n auto
PYTEST_FLAGS ?=

test: $(VENV)/.installed-test  ## set up, then run the default tier (not slow, chromium or postgres)
	$(BIN)/python -m pytest -m "$(TIERS)" $(XDIST) $(PYTEST_FLAGS)

test-all: $(VENV)/.installed-test  ## set up, then run every test: the rest in parallel, then the slow tier
	$(BIN)/python -m pytest -m "not slow" $(XDIST) $(PYTEST_FLAGS)
	$(BIN)/python -m pytest -m slow $(PYTEST_FLAGS)

fuzz: $(VENV)/.installed-test  ## a long fuzz run over the parsers of remote input (FUZZ_EXAMPLES=5000)
	NEWSWATCH_FUZZ_EXAMPLES=$(or $(FUZZ_EXAMPLES),5000) $(BIN)/python -m pytest -p no:cacheprovider tests/test_fuzz.py

lint: $(VENV)/.installed-test  ## ruff, mypy and the import layer rule
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: bench-extract bench-matching bench-archive bench-ingest bench-config bench-workers bench-latency bench-desk  ## run every benchmark in benchmarks/ (not the soak, nor bench-scale: it needs PostgreSQL)

bench-extract: $(VENV)/.installed-test  ## full-text extraction vs plain tag stripping
	$(BIN)/python benchmarks/bench_extract.py

bench-matching: $(VENV)/.installed-run  ## matching throughput vs a normalisation floor and per-term regexes (~12 min)
	$(BIN)/python -m benchmarks.matching

bench-soak: $(VENV)/.installed-test  ## the daemon against 500 changing local feeds for 10 minutes (not in CI)
	$(BIN)/python benchmarks/soak.py

bench-archive: $(VENV)/.installed-test  ## ingest 20,000 generated articles (10,000 watch items) with stories and search on, beside a sqlite3 floor (not in CI)
	$(BIN)/python -m benchmarks.archive

bench-config: $(VENV)/.installed-test  ## read a 10,000-item watchlist: libyaml's nodes vs the round-trip loader, beside a libyaml floor (not in CI)
	$(BIN)/python -m benchmarks.config_load

bench-ingest: $(VENV)/.installed-test  ## newswatch once over 10 local feeds x 600 items, 10,000 watch items, beside a feedparser+sqlite3 floor; time per stage (not in CI)
	$(BIN)/python -m benchmarks.ingest

bench-workers: $(VENV)/.installed-run  ## newswatch once with 2 worker processes against in process, 10 feeds x 600 items, 10,000 watch items (~5 min; not in CI)
	$(BIN)/python -m benchmarks.workers

bench-latency: $(VENV)/.installed-test  ## one new item in a 30-item feed, 10,000 watch items: response to outbox commit (not in CI)
	$(BIN)/python -m benchmarks.latency

bench-desk: $(VENV)/.installed-test  ## the desk's stories list and search at 200,000 stored articles, idle and while a writer ingests: p50/p95 (~10 min; not in CI)
	$(BIN)/python -m benchmarks.desk

bench-dbcopy: $(VENV)/.installed-test  ## db copy of 20,000 generated articles SQLite -> PostgreSQL (127.0.0.1:5432) -> SQLite: seconds, rows/s (~2 min; not in CI)
	$(BIN)/python -m benchmarks.dbcopy

bench-scale: $(VENV)/.installed-test  ## 1, 2 and 4 daemons on one PostgreSQL database against 2,000 local feeds, beside SQLite; needs a server (NEWSWATCH_TEST_POSTGRES) (~10 min; not in CI)
	$(BIN)/python -m benchmarks.scale

clean:  ## remove the virtualenv and caches (not data/)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
