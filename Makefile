# Synthex: `make run` serves the whole product on http://127.0.0.1:8000; `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test check venv venv-dev system-deps lint typecheck pytest test-integration bench clean

# The virtualenv is rebuilt only when the requirements change (a stamp per requirements hash).
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)

$(VENV)/.runtime-$(REQ_HASH):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e client
	touch $@

$(VENV)/.dev-$(REQ_HASH): $(VENV)/.runtime-$(REQ_HASH)
	$(PY) -m pip install -q -r requirements-dev.txt
	# anonymeter pins numpy<1.27 while SDV needs numpy 2: it is only a reference in tests, installed without deps.
	$(PY) -m pip install -q --no-deps anonymeter==1.1.0
	touch $@

venv: $(VENV)/.runtime-$(REQ_HASH)
venv-dev: $(VENV)/.dev-$(REQ_HASH)

run: venv
	PORT=$(PORT) bash scripts/run.sh

system-deps:
	bash scripts/system-deps.sh

lint: venv-dev
	$(VENV)/bin/ruff check marketplace exchange client tests bench scripts
	$(VENV)/bin/ruff format --check marketplace exchange client tests bench scripts
	$(VENV)/bin/lint-imports

typecheck: venv-dev
	$(VENV)/bin/mypy marketplace exchange client/synthex_client

# Two pytest-xdist workers (one per core): each has its own var dir (marketplace/settings/test.py).
pytest: venv-dev
	$(VENV)/bin/pytest -n 2

# The integration subset again on real PostgreSQL + Redis + S3 (moto_server), started on unusual loopback
# ports by scripts/services.sh and stopped afterwards, whatever the outcome.
test-integration: venv-dev
	trap 'bash scripts/services.sh stop' EXIT; \
	eval "$$(bash scripts/services.sh start)" && \
	$(VENV)/bin/pytest tests/integration -m integration -q

test: system-deps venv-dev lint typecheck pytest test-integration

# The fast subset, without the Debian packages (no browser, no PostgreSQL/Redis/S3 servers, nothing slow):
# lint (ruff, import contracts), types and the unit and API tests.
check: venv-dev lint typecheck
	$(VENV)/bin/pytest -q -m "not e2e and not integration and not slow"

bench: venv-dev
	for b in bench/[!_]*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
