# MangaAssist intent framework. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
# The interpreter that creates .venv (>= 3.11, as pyproject.toml's requires-python says).
PYTHON ?= python3
# Where pip gets torch. Empty (the default) = pip's own configuration, unchanged; on a machine
# without a local CPU wheel that is PyPI's default build, which on Linux bundles CUDA (GBs).
# For the CPU build: make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# An existing .venv is checked, else the interpreter that will create it.
CHECK_PY = $(if $(wildcard $(PY)),$(PY),$(PYTHON))
export WANDB_MODE ?= offline
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: help setup train test test-slow lint format bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(CHECK_PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "error: mangaassist needs Python >= 3.11 (pyproject.toml requires-python);" \
	    "$(CHECK_PY) is $$($(CHECK_PY) -V 2>&1 || echo 'not found')." \
	    "Pass another interpreter: make setup PYTHON=python3.12" >&2; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, from TORCH_INDEX when set, so that nothing later pulls another build.
	$(PIP) install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv, install everything (torch 2.13.0 first; TORCH_INDEX=URL: its source)

train: $(STAMP) ## train the default model on the default data (embedded all-MiniLM-L6-v2)
	$(PY) train.py $(ARGS)

test: $(STAMP) ## lint, then run the test suite (slow tests excluded)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q $(ARGS)

test-slow: $(STAMP) ## run only the slow tests (real encoder)
	$(PY) -m pytest -q -m slow $(ARGS)

lint: $(STAMP) ## ruff lint + format check
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(STAMP) ## apply ruff format and safe fixes
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: $(STAMP) ## training-throughput benchmark: per-batch padding vs padding to 128
	$(PY) experiments/throughput/bench_padding.py

clean: ## remove run outputs (keeps .venv)
	rm -rf outputs multirun wandb lightning_logs .pytest_cache
