# Goldiff's developer entry points. `make demo` and `make test` work on a fresh machine:
# each first builds .venv with everything it needs (llama-cpp-python compiles once, ~5 min;
# pip caches the wheel after that).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.goldiff-installed

.PHONY: install demo test lint unit faults e2e bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/goldiff demo

lint: install
	$(BIN)/ruff check server tests bench
	$(BIN)/ruff format --check server tests bench
	$(BIN)/mypy
	$(BIN)/cog --check README.md

unit: install
	$(BIN)/python -m pytest -q -m "not faults and not e2e" --timeout=600

faults: install
	$(BIN)/python -m pytest -q -m faults --timeout=600

e2e: install
	@if [ -x extension/scripts/e2e.sh ]; then GOLDIFF_PYTHON=$(abspath $(BIN)/python) extension/scripts/e2e.sh; else echo "no extension e2e yet"; fi

test: lint
	$(BIN)/python -m pytest -q --timeout=600 -p no:cacheprovider
	$(MAKE) e2e

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
