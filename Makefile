# Two entry points for a fresh clone (see README.md):
#   make reproduce   set up .venv and run the whole DAG (embedded profile: toy data, CPU, minutes),
#                    retraining every run even though results/ holds the committed ones
#   make test        set up .venv and run the test suite (includes an end-to-end embedded DAG run)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= all

.PHONY: setup reproduce test dvc-repro clean-results

$(BIN)/.installed: pyproject.toml envs/requirements.txt envs/runtime.in envs/workflow.in envs/test.in
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r envs/requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(BIN)/.installed

# --forcerun train: the committed results/metrics would otherwise make Snakemake (rightly) skip training.
reproduce: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES) --forcerun train

dvc-repro: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro --force

test: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -rs
