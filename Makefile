# Two entry points for a fresh clone (see README.md):
#   make reproduce   set up .venv and run the whole DAG (embedded profile: toy data, CPU, minutes),
#                    retraining every run even though results/ holds the committed ones
#   make test        set up .venv and run the test suite (includes an end-to-end embedded DAG run)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CORES  ?= all

.PHONY: setup lock reproduce miniature rehearsal test dvc-repro clean-results image dvc-track gpu-check

# The whole local environment (runtime + workflow + test tools) comes from one hash-locked resolution,
# envs/requirements.lock, so a fresh clone installs exactly what was tested, whatever was released since.
# Re-lock after changing a pin in envs/*.in: `make lock` (docs/WORKFLOW.md, "Locking").
# Both cores do the work: torch's CUDA stack and the rest are installed by two pip processes side by side
# (envs/split_lock.py: they share no folder), `pip check` then confirms that the lock's closure is complete,
# and the byte-code is compiled in parallel afterwards (pip would compile each file on one core; like pip, files
# that cannot compile here are skipped: torch ships test helpers in Python 3.12 syntax). The packages' own test
# suites (a quarter of the files, never imported) are left out. Compiling up front matters where
# PYTHONDONTWRITEBYTECODE is set: every job would otherwise compile torch's modules again.
PIP_LOCKED := $(BIN)/python -m pip install --quiet --no-compile --no-deps --require-hashes -r
$(BIN)/.installed: pyproject.toml envs/requirements.lock envs/split_lock.py
	@echo "setup: installing the locked environment into $(VENV) (1-5 min; pip prints nothing while torch installs)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PYTHON) envs/split_lock.py envs/requirements.lock $(VENV)/lock-torch.txt $(VENV)/lock-rest.txt
	$(PIP_LOCKED) $(VENV)/lock-torch.txt & torch=$$!; $(PIP_LOCKED) $(VENV)/lock-rest.txt & rest=$$!; \
	    wait $$torch; first=$$?; wait $$rest; test $$first = 0 -a $$? = 0
	$(BIN)/python -m pip check
	@echo "setup: packages installed; compiling byte-code"
	$(BIN)/python -m compileall -q -j 0 -x '/tests/' $(VENV)/lib > /dev/null || true
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@
	@echo "setup: done ($(VENV))"

setup: $(BIN)/.installed

# --forcerun: the committed results/embedded/metrics would otherwise make Snakemake (rightly) skip every run,
# the reference rows' included.
FORCERUN := train train_supervised pretrained_start evaluate_colour_histogram
# --rerun-incomplete: after an interrupted run (Ctrl-C, a kill) the next `make` redoes the jobs that were cut off
# instead of stopping at "incomplete files"; a run killed by SIGKILL also needs `snakemake --unlock` once
# (docs/WORKFLOW.md, "Interrupting and resuming").
reproduce: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES) --rerun-incomplete --forcerun $(FORCERUN)

# The scientific miniature (docs/TOY_DATASET.md): the tier the verdict comes from, hours on 2 cores. Resumable:
# rerunning after an interruption keeps every finished job.
miniature: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES) --rerun-incomplete --config profile=miniature

# The paper profile's rules on CPU: tiny real-layout archives and stand-in networks (written by the DAG's own
# make_rehearsal_inputs rule), then the paper DAG.
rehearsal: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores $(CORES) --rerun-incomplete --config profile=rehearsal

# On a GPU machine, first: every CUDA path on tiny inputs (the rehearsal with parse, keypoints, PISE and training on
# cuda, device store, bf16, channels-last; evaluation), then throughput and the projected hours of the paper's runs
# (docs/WORKFLOW.md, "GPU check"). No network; at most 8 minutes, or it fails.
gpu-check: setup
	PATH="$(abspath $(BIN)):$$PATH" timeout 480 $(BIN)/python -m spcreid.gpu_check --out data/gpu-check

dvc-repro: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro --force

test: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -q -rs

# Recompile both locks from the envs/*.in pins: the local one (everything) and the containers' runtime part of
# the same resolution (constrained by the local lock, so the versions agree). Needs network access to PyPI.
UV_COMPILE := uv pip compile --universal --python-version 3.11 --generate-hashes --quiet
lock:
	$(PYTHON) -m pip install --quiet uv==0.13.9
	$(PYTHON) -m $(UV_COMPILE) --output-file envs/requirements.lock envs/requirements.txt
	$(PYTHON) -m $(UV_COMPILE) --constraint envs/requirements.lock --output-file containers/requirements.lock envs/runtime.in

# The main image as an Apptainer file at the path the workflow looks for first (spcreid.config.workflow.main_image):
# once it exists, `snakemake --cores all --use-singularity` runs every rule in it, no --config needed.
# Needs apptainer (or singularity) and, for the base image, network access to Docker Hub.
APPTAINER ?= apptainer
image: containers/spcreid.sif
containers/spcreid.sif: containers/Apptainer.def containers/requirements.lock pyproject.toml $(shell git ls-files src)
	$(APPTAINER) build --force $@.tmp containers/Apptainer.def && mv $@.tmp $@

# DVC-track the paper profile's downloads (raw datasets, pretrained weights), fetching what is missing: the
# `dvc_track` rule (workflow/rules/dvc.smk) writes a .dvc pointer beside each; commit those, then `dvc push`.
dvc-track: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/snakemake --cores 1 dvc_track --config profile=paper
