# DeepSynth pipelines — `make run` and `make test` work on a fresh machine (Python 3.11, no GPU).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench clean

install: $(STAMP)

# torch first (local CPU wheel), then everything else pinned by requirements.lock.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/deepsynth run --config configs/quickstart.yaml

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m benchmarks.render

clean:
	rm -rf .deepsynth build *.egg-info .pytest_cache
