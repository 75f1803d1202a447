# Everything a fresh machine needs is installed by these targets; nothing is assumed but
# python3 (>= 3.11), node/npm and apt-get (as root or through sudo) for Debian packages.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk
ENV ?= dev
# PREFIX=alice deploys a separate copy (stacks alice-energy-<env>-*) into the same account.
PREFIX ?=
STAGE := $(if $(PREFIX),$(PREFIX)-,)energy-$(ENV)
CDK_CONTEXT := $(if $(PREFIX),-c energy-monitoring:prefix=$(PREFIX),)
STAMP := .make
FUZZ_EXAMPLES ?= 2000

export CDK_DISABLE_CLI_TELEMETRY := true
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
# The machine's Node.js is 20; jsii still runs on it but prints a large banner on every synth.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export JSII_DEPRECATED := quiet
export PYTHONDONTWRITEBYTECODE := 1

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_PACKAGES := mosquitto chromium jq

.PHONY: help setup test demo bench bench-alerts replay-alerts fuzz synth diff deploy destroy lint snapshots clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP)/venv: requirements.txt requirements-dev.txt pyproject.toml
	@mkdir -p $(STAMP)
	@echo "==> Python environment ($(VENV))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@# setuptools prints a long editable-install warning: keep it in a log unless the install fails.
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e . > $(STAMP)/editable.log 2>&1 \
	  || { cat $(STAMP)/editable.log; exit 1; }
	@touch $@

$(STAMP)/node: package.json
	@mkdir -p $(STAMP)
	@echo "==> CDK CLI (npm, pinned in package.json)"
	@npm install --no-audit --no-fund --silent
	@touch $@

$(STAMP)/debs:
	@mkdir -p $(STAMP)
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "==> Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@touch $@

# checkov pins an old boto3: its own environment, beside the project's.
$(STAMP)/checkov: requirements-checkov.txt
	@mkdir -p $(STAMP)
	@echo "==> checkov (.venv-checkov)"
	@test -x .venv-checkov/bin/python || $(PYTHON) -m venv .venv-checkov
	@.venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

setup: $(STAMP)/venv $(STAMP)/node $(STAMP)/debs $(STAMP)/checkov ## Install everything (venv, CDK CLI, mosquitto, checkov)

test: setup ## Install what is missing, then lint and run every test
	@echo "==> ruff"
	@$(VENV)/bin/ruff check .
	@echo "==> mypy"
	@$(VENV)/bin/mypy energy_monitoring energy_cli runtime/energy_runtime devkit tools app.py
	@echo "==> pytest"
	@$(VENV)/bin/pytest -q

demo: setup ## Run the whole pipeline locally on the default scenario
	@$(VENV)/bin/energy-monitoring local demo $(ARGS)

bench: setup ## Benchmark the handlers (writes out/bench/results.json)
	@$(PY) -m tools.bench $(ARGS)

bench-alerts: setup ## Judge the alerts against labelled incidents (writes out/bench/alerts.json)
	@$(PY) -m tools.bench_alerts $(ARGS)

replay-alerts: setup ## The detectors alone over a bench seed, with each miss and false alert: make replay-alerts ARGS="--seed 2"
	@$(PY) -m tools.replay_detectors $(ARGS)

fuzz: setup ## Hostile input through the handlers on moto, fresh examples: make fuzz FUZZ_EXAMPLES=2000
	@FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) HYPOTHESIS_PROFILE=explore \
	  $(VENV)/bin/pytest -q -p no:cacheprovider tests/runtime/test_pipeline_properties.py \
	  tests/runtime/test_readings.py tests/runtime/test_hostile_input.py

synth: setup ## Synthesize every environment offline into cdk.out (PREFIX=name for a copy)
	@$(CDK) synth --quiet --no-notices --no-version-reporting $(CDK_CONTEXT) > /dev/null
	@echo "templates in cdk.out/"

diff: setup ## cdk diff for one environment: make diff ENV=prod [PREFIX=alice]
	@$(CDK) diff --no-notices $(CDK_CONTEXT) "$(STAGE)/*"

deploy: setup ## cdk deploy for one environment: make deploy ENV=dev [PREFIX=alice]
	@$(CDK) deploy --no-notices $(CDK_CONTEXT) "$(STAGE)/*"

destroy: setup ## cdk destroy for one environment: make destroy ENV=dev [PREFIX=alice]
	@$(CDK) destroy --no-notices $(CDK_CONTEXT) "$(STAGE)/*"

lint: setup ## ruff and mypy only
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/mypy energy_monitoring energy_cli runtime/energy_runtime devkit tools app.py

snapshots: setup ## Rewrite the template snapshots after an intended infrastructure change
	@UPDATE_SNAPSHOTS=1 $(VENV)/bin/pytest -q tests/infra
	@git status --short tests/infra/snapshots

clean: ## Remove build output (keeps the venv and node_modules)
	rm -rf cdk.out out .pytest_cache .mypy_cache .ruff_cache
