# MangaAssist intent framework. `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
export WANDB_MODE ?= offline
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: help setup train test test-slow lint format bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -d $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0  # the CPU wheel, before anything can ask for CUDA builds
	$(PIP) install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install everything (torch 2.13.0 CPU first)

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
