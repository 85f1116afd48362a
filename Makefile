# Entry points (see README): `make demo`, `make test`, `make test-fast`, `make lint`.
# Each creates or reuses the virtual environment in $(VENV); the install is redone only when
# pyproject.toml changes, so a second run starts in seconds.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pixelnerf-installed
CORES ?= 2
# The rules call `pixelnerf`; the venv's bin on PATH makes it (and snakemake) found.
RUN := PATH="$(abspath $(BIN)):$$PATH"

.PHONY: demo test test-fast lint install clean-results

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(RUN) pixelnerf run -- --cores $(CORES) --profile workflow/profiles/default results/tables/demo.csv

# Python style, the workflow's lint and its formatting.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(RUN) snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/

# Everything: lint, unit, parity, workflow and cluster tests.
test: lint
	$(RUN) python -m pytest

# Everything but the tests that run the real workflow or a cluster (minutes each).
test-fast: $(STAMP)
	$(RUN) python -m pytest -m "not workflow and not cluster"

clean-results:
	rm -rf results .snakemake
