# RDM: two commands on a fresh machine — `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench bench-serving bench-rollout install services-start services-stop clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint requirements.lock --editable '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m rdm_site.launcher

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: bench-serving bench-rollout

bench-serving: $(STAMP)
	$(BIN)/python -m bench.serving

bench-rollout: $(STAMP)
	$(BIN)/python -m bench.rollout

services-start: $(STAMP)
	$(BIN)/python -m rdm_site.embedded start

services-stop: $(STAMP)
	$(BIN)/python -m rdm_site.embedded stop

clean: services-stop
	rm -rf $(VENV) .data
