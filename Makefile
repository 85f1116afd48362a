# Two entry points (see README): `make demo` and `make test`.
# Both create or reuse the virtual environment in $(VENV); the install is redone
# only when pyproject.toml changes, so a second run starts in seconds.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pixelnerf-installed
CORES ?= 2
# The rules call `pixelnerf`; the venv's bin on PATH makes it (and snakemake) found.
RUN := PATH="$(abspath $(BIN)):$$PATH"

.PHONY: demo test install clean-results

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(RUN) pixelnerf run -- --cores $(CORES) --profile workflow/profiles/default results/tables/demo.csv

test: $(STAMP)
	$(BIN)/ruff check .
	$(RUN) python -m pytest

clean-results:
	rm -rf results .snakemake
