# Two commands do all set-up: `make demo` (the main job) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test benchmark clean-runs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python -m framilab.run --name demo

# The benchmark table (notebook 04): every method on synthetic, FSDD and ESC-10; about 1.5 h on 2 cores.
benchmark: install
	$(BIN)/python -m framilab.benchmarks.table

test: install
	$(BIN)/python -m pytest

clean-runs:
	rm -rf runs
