# DeepSynth pipelines — `make run` and `make test` work on a fresh machine (Python 3.11, no GPU).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# The interpreter the venv is made from: Debian's python3.11 where the machine has it with venv support,
# else python3. Debian links libpython into its executable; this image's python3 (pyenv 3.11.7) loads it
# as a shared library, and the same packages run slower on it: a no-change run and `import zenml, mlflow`
# take 1.2-1.33x as long as on Debian's (`python -m benchmarks.interpreter`). Any Python 3.11 works:
# `make install PYTHON=python3`. An existing .venv keeps its interpreter (`rm -rf .venv` to remake it).
DEBIAN_PYTHON := $(shell /usr/bin/python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1 && echo /usr/bin/python3.11)
PYTHON ?= $(or $(DEBIAN_PYTHON),python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# This machine's pip configuration names index folders that may not exist: drop that noise only.
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }

# Debian fonts of the renderer's fallback chain (deepsynth/rendering/font_table.py): CJK (SC, TC, JP,
# KR), Hebrew, the Indic scripts PyPI has no package for, math and symbols; the PyPI fontpkg-* ones
# come with the Python dependencies. Installed when missing (root, apt-get); otherwise skipped with a
# message: documents in those scripts are then reported as missing glyphs, and the font tests fail.
SYSTEM_FONTS := fonts-noto-cjk fonts-noto-core fonts-dejavu-core
# The headless browser that tests/test_dashboards.py loads MLflow's UI and ZenML's dashboard in.
SYSTEM_BROWSER := chromium
SYSTEM_PACKAGES := $(SYSTEM_FONTS) $(SYSTEM_BROWSER)

.PHONY: install system-packages run test lint format test-containers screenshots bench clean

install: system-packages $(STAMP)

system-packages:
	@missing=$$(for pkg in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "ok installed" || echo $$pkg; done); \
	if [ -z "$$missing" ]; then echo "system packages: $(SYSTEM_PACKAGES) installed"; \
	elif ! command -v apt-get >/dev/null; then \
	  echo "system packages: SKIPPED, no apt-get here: install $$(echo $$missing) (or equivalent Noto fonts) by hand" >&2; \
	elif [ "$$(id -u)" != 0 ]; then \
	  echo "system packages: SKIPPED, not root: run sudo apt-get install --no-install-recommends $$(echo $$missing)" >&2; \
	else echo "system packages: apt-get install $$(echo $$missing) …"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } \
	    || echo "system packages: apt-get FAILED: install $$(echo $$missing) by hand" >&2; fi

# torch first (the local CPU wheel), then the core, the pipelines extra and dev tools, pinned by requirements.lock.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0 $(QUIET_PIP)
	$(BIN)/pip install --quiet -c requirements.lock -e '.[pipelines,ui,dev]' $(QUIET_PIP)
	touch $(STAMP)

run: install
	DEEPSYNTH_HOME="$${DEEPSYNTH_HOME:-$(CURDIR)/.deepsynth}" $(BIN)/deepsynth run --config configs/quickstart.yaml

# One pytest-xdist worker per core, at most 4 (each holds its own ZenML store and tiny models); a test
# module stays on one worker, so its module fixtures are built once. Modules are handed out in
# tests/conftest.py's order, the longest first (xdist would otherwise start the modules with the most
# tests first and leave the longest single-test modules for the end, on one worker).
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 )))

test: install lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# ruff's lint rules and formatting (pyproject.toml [tool.ruff]) on the whole tree; `make format` applies them.
lint: install
	$(BIN)/ruff check --quiet .
	$(BIN)/ruff format --check --quiet .

format: install
	$(BIN)/ruff check --fix --quiet .
	$(BIN)/ruff format --quiet .

# The README's Studio pictures (docs/images/studio-*.png), from the browser test's flow.
screenshots: install
	DEEPSYNTH_SCREENSHOTS=docs/images $(BIN)/python -m pytest -q -n 0 tests/studio/test_browser.py

# Each step in its own container on a private Docker engine (root; see docker/test-containers.sh).
test-containers: install
	docker/test-containers.sh

bench: install
	$(BIN)/python -m benchmarks.render
	$(BIN)/python -m benchmarks.scale
	$(BIN)/python -m benchmarks.incremental
	$(BIN)/python -m benchmarks.train
	$(BIN)/python -m benchmarks.data_parallel
	$(BIN)/python -m benchmarks.pipeline
	$(BIN)/python -m benchmarks.memory
	$(BIN)/python -m benchmarks.registry_browse
	$(BIN)/python -m benchmarks.gpu_memory
	$(BIN)/python -m benchmarks.serve
	$(BIN)/python -m benchmarks.report

clean:
	rm -rf .deepsynth build *.egg-info .pytest_cache
