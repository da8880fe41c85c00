# RDM: two commands on a fresh machine — `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint schema fuzz format bench bench-serving bench-rollout bench-rollout-io bench-api bench-pages bench-live bench-dora bench-load bench-scale install services-start services-stop clean assets backup restore

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

# The suite waits on real servers and processes most of its time: TEST_PROCESSES pytest processes share it
# (pytest-xdist, whole files each), each with its own test database, Redis database and Celery queue. The API
# contract run goes apart: schemathesis gives its 216 operations one test id, which pytest-xdist runs once.
TEST_PROCESSES ?= 3
CONTRACT := tests/api/test_contract.py

test: lint schema
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist loadfile --deselect $(CONTRACT)
	$(BIN)/python -m pytest $(CONTRACT)

# The OpenAPI schema must generate, and validate, without a single warning.
schema: $(STAMP)
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

# The long API contract run: schemathesis sends thousands of generated requests; prints how many.
fuzz: $(STAMP)
	RDM_API_FUZZ_EXAMPLES=4 RDM_API_RATE_TOKEN=100000/min $(BIN)/python -m pytest tests/api/test_contract.py -q

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: bench-serving bench-rollout bench-rollout-io bench-api bench-pages bench-live bench-dora

bench-serving: $(STAMP)
	$(BIN)/python -m bench.serving

bench-rollout: $(STAMP)
	$(BIN)/python -m bench.rollout

bench-rollout-io: $(STAMP)
	$(BIN)/python -m bench.rollout_io

bench-api: $(STAMP)
	$(BIN)/python -m bench.api

bench-live: $(STAMP)
	$(BIN)/python -m bench.live

bench-pages: $(STAMP)
	$(BIN)/python -m bench.pages

bench-dora: $(STAMP)
	$(BIN)/python -m bench.dora

# Every page and endpoint against a year of a large organisation (not in `bench`: it needs the generated database,
# BENCH_DATABASE_URL, or generates it first); docs/performance.md.
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale

# Needs the scaled database (manage.py scale_generate); BENCH_DATABASE_URL names it.
bench-load: $(STAMP)
	$(BIN)/python -m bench.load

services-start: $(STAMP)
	$(BIN)/python -m rdm_site.embedded start

services-stop: $(STAMP)
	$(BIN)/python -m rdm_site.embedded stop

# A compressed dump of the database (embedded or DATABASE_URL's) in backups/, or FILE=; docs/operations.md.
backup: $(STAMP)
	$(BIN)/python manage.py backup $(if $(FILE),--file "$(FILE)")

# Restore FILE= into an empty database (FORCE=1 replaces what it holds), then verify the audit chain.
restore: $(STAMP)
	$(if $(FILE),,$(error name the backup: make restore FILE=backups/rdm-<time>.dump))
	$(BIN)/python manage.py restore "$(FILE)" $(if $(filter 1 yes true,$(FORCE)),--force)

# Refresh the vendored front-end (static/vendor/, tests/browser/vendor/) from the pinned npm packages;
# needs Node 20 and npm. The copied files are committed, so nothing else needs Node.
assets:
	npm ci
	node scripts/vendor-assets.mjs

clean: services-stop
	rm -rf $(VENV) .data
