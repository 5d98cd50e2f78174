# AuthGate IAM. `make run` serves on http://localhost:5000 (`make run PORT=5201`: on 5201); `make test` runs the suite.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
FLASK  := $(BIN)/flask --app wsgi
HOST   ?= 127.0.0.1
AUTHGATE_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
# Measured (bench/README.md, issue 17): 8 blocking threads served more than 4 on one core in every scenario.
AUTHGATE_THREADS ?= 8

.PHONY: run serve test lint format install install-dev clean

run: PORT ?= 5000
# AUTHGATE_PORT: without AUTHGATE_ISSUER, the development issuer is http://localhost:$(PORT).
run: $(VENV)/.installed  ## Install, migrate, bootstrap and serve on http://localhost:$(PORT) (development server)
	AUTHGATE_PORT=$(PORT) $(FLASK) init
	AUTHGATE_PORT=$(PORT) $(FLASK) run --host 127.0.0.1 --port $(PORT)

# Production serving: granian's WSGI mode, the fastest of the servers compared in bench/README.md.
# One process per core by default; every AUTHGATE_* variable in the environment applies.
serve: PORT ?= 8000
serve: $(VENV)/.installed  ## Migrate and serve with granian on $(HOST):$(PORT), $(AUTHGATE_WORKERS) workers
	AUTHGATE_PORT=$(PORT) AUTHGATE_DB_WAIT_SECONDS=$${AUTHGATE_DB_WAIT_SECONDS:-30} $(FLASK) init
	AUTHGATE_PORT=$(PORT) AUTHGATE_WORKERS=$(AUTHGATE_WORKERS) $(BIN)/granian --interface wsgi --host $(HOST) --port $(PORT) --workers $(AUTHGATE_WORKERS) \
		--blocking-threads $(AUTHGATE_THREADS) --backlog 2048 --log-level warning wsgi:app

# Everything, the benchmark smoke test included (it skips without wrk). For a quicker local run:
# .venv/bin/pytest -m "not bench"
test: $(VENV)/.installed-dev  ## Run the test suite (SQLite; PostgreSQL too with AUTHGATE_TEST_DATABASE_URL)
	$(BIN)/pytest

lint: $(VENV)/.installed-dev  ## Check style with ruff, then types in app/ with mypy (configured in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache

include bench/bench.mk
