# Two commands do all set-up: `make demo` (the main job) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test cpucheck benchmark screenshot figures clean-runs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

# A second `make demo` reads the finished stages back; DEMO_ARGS="-p overwrite true" starts over. Everything it writes,
# figures included, stays under runs/demo/: `make figures` is what refreshes the committed figures.
demo: install
	$(BIN)/python -m framilab.run --name demo $(DEMO_ARGS)

# Does this CPU run every model and stage? Each group of cases in a child process (framilab/cpucheck.py).
cpucheck: install
	$(BIN)/python -m framilab.cpucheck $(CPUCHECK_ARGS)

# The benchmark table (notebook 04): every method on synthetic, FSDD and ESC-10 as tasks on a local Ray
# (BENCHMARK_ARGS='-p address auto' joins a running Ray cluster); hours on 2 cores, so each finished cell is
# kept in figures/benchmark_cells (commit it) and a later `make benchmark`, anywhere, starts from there.
# One data set's rows: BENCHMARK_ARGS='-p datasets ["esc10"]' (the other rows are kept).
# Several seeds per cell (mean, spread, FRAMI's paired differences): BENCHMARK_ARGS='-p seeds [0,1,2]'.
benchmark: install
	$(BIN)/python -m framilab.benchmarks.table $(BENCHMARK_ARGS)

# The README's JupyterLab screenshots: notebooks 01-04 at classroom settings (one chain in runs/screenshot), headless Chromium.
screenshot: install
	$(BIN)/python -m framilab.browser

# Every committed figure: the pipeline diagram, the demo's (its finished stages are reused, their figures
# drawn into figures/), the benchmark's and the screenshot.
figures: install
	$(BIN)/python -m framilab.diagram figures/pipeline.png
	$(BIN)/python -m framilab.run --name demo -p figures_dir figures $(DEMO_ARGS)
	$(MAKE) benchmark screenshot

# -n 1: the tests run in one worker process that pytest-xdist replaces if it dies, so a native crash
# (a segfault in a kernel library) fails the test it happened in, with its Python stack, and the rest go on.
test: install
	$(BIN)/python -m pytest -n 1 --durations=15

clean-runs:
	rm -rf runs
