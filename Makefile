# Meterline. Needs only Python 3.11+ and a C compiler: everything else is installed into .venv.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install chromium demo test test-fast ui lint bench screenshots services-down clean

install: $(STAMP)

.tools/bin/uv:
	@echo "==> uv not found on PATH: installing it into .tools/"
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

$(STAMP): pyproject.toml uv.lock | $(UV)
	@echo "==> installing Meterline and its dependencies into $(VENV)"
	UV_PYTHON=$(PYTHON) $(UV) sync --frozen
	@touch $(STAMP)

demo: install
	$(BIN)/meterline demo

# Test files run in parallel, one worker per CPU (at most 4), each with its own throwaway
# database, key prefix, Stripe emulator and (when nothing is configured) embedded services.
test: install chromium
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

# The dashboard's browser tests drive a headless Chromium (Debian's package; Playwright never
# downloads a browser). Installed here when missing and this user may (root or passwordless
# sudo); otherwise the browser tests fail and say how to install it.
chromium:
	@if [ -z "$$METERLINE_CHROMIUM" ] && ! command -v chromium >/dev/null 2>&1 \
	    && command -v apt-get >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO=sudo; else exit 0; fi; \
	  echo "==> installing Debian's chromium for the browser tests"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null \
	    || echo "==> could not install chromium: the browser tests will say what to do"; \
	fi

test-fast: install
	$(BIN)/python -m pytest -q tests/unit

ui: install
	$(BIN)/meterline ui

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check meterline ingestion billing alerts orchestration tests scripts

bench: install
	$(BIN)/meterline bench

# docs/img/dagster-asset-graph.png and docs/img/finance-report.png, retaken in headless Chromium.
screenshots: install chromium
	$(BIN)/python scripts/screenshots.py

services-down: install
	$(BIN)/meterline services down

clean:
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache dbt_project/target dbt_project/logs
