# DeepSynth pipelines — `make run` and `make test` work on a fresh machine (Python 3.11, no GPU).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# This machine's pip configuration names index folders that may not exist: drop that noise only.
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }

.PHONY: install run test test-containers bench clean

install: $(STAMP)

# torch first (the local CPU wheel), then the core, the pipelines extra and dev tools, pinned by requirements.lock.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0 $(QUIET_PIP)
	$(BIN)/pip install --quiet -c requirements.lock -e '.[pipelines,dev]' $(QUIET_PIP)
	touch $(STAMP)

run: install
	$(BIN)/deepsynth run --config configs/quickstart.yaml

test: install
	$(BIN)/python -m pytest -q

# Each step in its own container on a private Docker engine (root; see docker/test-containers.sh).
test-containers: install
	docker/test-containers.sh

bench: install
	$(BIN)/python -m benchmarks.render
	$(BIN)/python -m benchmarks.scale
	$(BIN)/python -m benchmarks.incremental
	$(BIN)/python -m benchmarks.train
	$(BIN)/python -m benchmarks.pipeline
	$(BIN)/python -m benchmarks.memory
	$(BIN)/python -m benchmarks.gpu_memory
	$(BIN)/python -m benchmarks.report

clean:
	rm -rf .deepsynth build *.egg-info .pytest_cache
