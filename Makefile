# Meterline. Needs only Python 3.11+ and a C compiler: everything else is installed into .venv.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast ui lint bench services-down clean

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

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q tests/unit

ui: install
	$(BIN)/meterline ui

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check meterline ingestion billing alerts orchestration tests

bench: install
	$(BIN)/meterline bench

services-down: install
	$(BIN)/meterline services down

clean:
	rm -rf $(VENV) .tools .pytest_cache .ruff_cache dbt_project/target dbt_project/logs
