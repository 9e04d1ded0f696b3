# Everything a fresh machine needs: Python 3.11 and make. The venv lives at .venv.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= configs/demo.yaml

export TF_CPP_MIN_LOG_LEVEL ?= 2
export TF_ENABLE_ONEDNN_OPTS ?= 0
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba

.PHONY: run test lint bench clean-venv

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip sync --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --compile-bytecode --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

## run: set up when needed, then run the main job (a backtest of configs/demo.yaml on the demo data)
run: $(STAMP)
	$(BIN)/sentinel backtest $(CONFIG)

## test: set up when needed, then lint and run the test suite (one worker per core, pytest-xdist)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n auto --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

## bench: the benchmark harness (uses ../shared/data when present)
bench: $(STAMP)
	$(BIN)/python -m bench

clean-venv:
	rm -rf $(VENV)
