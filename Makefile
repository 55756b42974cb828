# Otto. `make run` starts the whole system on its embedded default; `make test` runs the
# tests against PostgreSQL and Redis on 127.0.0.1.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The oldest Python >= 3.12 found (the version CI runs): on PATH by name, then under pyenv.
ifndef PYTHON
PYTHON := $(shell for c in python3.12 python3.13 python3.14 python3 \
	$$(ls -d $$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V); do \
	  if command -v $$c >/dev/null 2>&1 && $$c -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; \
	  then command -v $$c; break; fi; done)
endif
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8080
SANDBOX_PORT ?= 8001

# Seconds `make token` keeps retrying while the sandbox starts (Procfile.dev passes 30).
WAIT ?= 0

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/14
# pytest-xdist processes for `make test`; each takes its own databases (tests/conftest.py).
TEST_WORKERS ?= 2

.PHONY: help install run demo sms token test lint format clean

help:
	@echo "make run    - set up and start web + worker + provider sandbox on SQLite (port $(PORT))"
	@echo "make demo   - beside \`make run\`: the sandbox's CallRail places 8 demo calls"
	@echo "make sms    - beside \`make run\`: a text thread, STOP, and a send refused after it"
	@echo "make token  - beside \`make run\`: a manager's API token and a curl that uses it"
	@echo "make test   - run the test suite against PostgreSQL and Redis"
	@echo "make lint   - ruff, makemigrations --check, manage.py check"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "Otto needs Python >= 3.12; none found on PATH or under pyenv." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

# The environment of `make run`, carried by the commands run beside it so that they reach
# the same database, sandbox and web port.
run demo sms token: export ENVIRONMENT ?= development
run demo sms token: export SANDBOX ?= 1
run demo sms token: export SANDBOX_URL ?= http://127.0.0.1:$(SANDBOX_PORT)
run demo sms token: export PUBLIC_BASE_URL ?= http://127.0.0.1:$(PORT)
# Their own output, without the HTTP client's request log.
demo sms token: export LOG_LEVEL ?= WARNING
run: install
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py setup_demo
	@echo
	@echo "  Otto is starting on http://127.0.0.1:$(PORT)"
	@echo "    admin     http://127.0.0.1:$(PORT)/admin/   (login printed above)"
	@echo "    API docs  http://127.0.0.1:$(PORT)/api/docs/"
	@echo "    health    http://127.0.0.1:$(PORT)/health/ready  and  /health/workers"
	@echo "    sandbox   $$SANDBOX_URL  (simulated providers; see docs/sandbox.md)"
	@echo
	@echo "  In another terminal, here:"
	@echo "    make demo     8 simulated calls (one per scenario) to the demo company, through signed CallRail webhooks"
	@echo "    make sms      a customer texts, the office replies, STOP, and the next send is refused"
	@echo "    make token    a manager's API token, and a curl for /api/v1/me/ that uses it"
	@echo
	PORT=$(PORT) $(BIN)/honcho start -f Procfile.dev

demo: install
	@$(BIN)/python manage.py sandbox_calls --company demo --count 8

sms: install
	@$(BIN)/python manage.py sandbox_sms --company demo --demo

token: install
	@$(BIN)/python manage.py sandbox_token --company demo --role manager --curl --wait $(WAIT)

test: export DATABASE_URL ?= $(TEST_DATABASE_URL)
test: export REDIS_URL ?= $(TEST_REDIS_URL)
test: install
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: export ENVIRONMENT ?= development
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/lint-imports
	$(BIN)/python manage.py check

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var media staticfiles
