# Shared definitions: the plan of this run (spcreid.config.workflow.Plan: params.yaml checked against the params
# schema, the active profile, its paths, settings and job arguments), the container image, and the adapters from
# Snakemake's wildcards to the plan. Every job list is derived from `runs(params)`; the logic lives in the package.

import os

from snakemake.exceptions import WorkflowError

from spcreid.config.experiments import Run
from spcreid.config.workflow import (
    RAW_FOLDER,
    SOURCE_OF_FOLDER,
    WEIGHT_NAMES,
    Plan,
    SnakemakeCall,
    check_image,
    evaluation_args,
    flag,
    folder_flag,
    load_config,
    main_image,
    one_of,
    params_file,
)
from spcreid.errors import SpcreidError
from spcreid.report.run_summary import print_notes, print_summary, request_only_notes

# ---- Configuration, validated against the params schema ---------------------------------------------------------

# `--configfile FILE` is merged over params.yaml and `--config KEY=VALUE` over both. The schema
# (spcreid/resources/params.schema.json) declares every key, its allowed values and its default, the workflow
# options (gallery_mode, main_image, fetch_*) included: an unknown key (`--config profil=paper`) is refused. The
# check goes through the loader every `spcreid` command uses (defaults filled in place, as
# snakemake.utils.validate(config, schema, set_default=True) would), so that the error names the field, in one
# line, while the DAG is built: no job has started yet.
CALL = SnakemakeCall(workflow)
try:
    load_config(config, CALL)
    PLAN = Plan(config, params_file(config))
    # The image built from containers/Dockerfile: --config main_image, else containers/spcreid.sif once built
    # (`make image`), else the release recorded in containers/image-digest.
    MAIN_IMAGE = main_image(config)
except SpcreidError as exc:
    raise WorkflowError(str(exc)) from None


def check_images():
    """Stop a run (called from the Snakefile's onstart) that would use a container image that does not exist."""
    try:
        check_image(MAIN_IMAGE, CALL.apptainer)
    except SpcreidError as exc:
        raise WorkflowError(str(exc)) from None


# ---- The plan's names, as the rules use them ----------------------------------------------------------------------

PARAMS_FILE = PLAN.params_file
PROFILE_NAME, PROFILE, DATASETS = PLAN.name, PLAN.profile, PLAN.datasets
# data/<profile>, work/<profile>, results/<profile>: no profile sees (or reuses) another's files.
DATA, WORK, RESULTS, PUBLISHED = PLAN.data, PLAN.work, PLAN.results, PLAN.published
SEEDS, TABLES, TOY_KEYS, REAL_KEYS = PLAN.seeds, PLAN.tables, PLAN.toy_keys, PLAN.real_keys
REFERENCE_RUNS, TRAINED_EXPERIMENTS = PLAN.reference_runs, PLAN.trained_experiments
PER_SEED_REFERENCES = PLAN.per_seed_references
VERIFY, PARSING, SYNTHESIS, PRETRAIN = PLAN.verify, PLAN.parsing, PLAN.synthesis, PLAN.pretrain
SYNTH_COPIES, ON_GPU, PACK_IMAGES = PLAN.synth_copies, PLAN.on_gpu, PLAN.pack_images
RUN_DIR, METRICS, PER_QUERY, MANIFEST = PLAN.run_dir, PLAN.metrics, PLAN.per_query, PLAN.manifest
SYNTH_INDEX, PACKED, SEED_FOLDER = PLAN.synth_index, PLAN.packed, PLAN.seed_folder
PARSED_MANIFEST = PLAN.parsed_manifest
log_path, bench_path, expand_runs = PLAN.log_path, PLAN.bench_path, PLAN.expand_runs
raw_dataset_dir = PLAN.raw_dataset_dir

# A dataset given out on request only, with no archive configured: said while the DAG is built (a dry run too).
print_notes(request_only_notes(DATASETS, config, RAW_FOLDER))


# ---- Wildcards -> plan: input functions -----------------------------------------------------------------------


def run_of(wildcards):
    return Run(wildcards.key, wildcards.experiment, int(wildcards.seed))


def uses_synthesis(wildcards):
    return PLAN.uses_synthesis(wildcards.experiment)


def synthesis_index(wildcards):
    return PLAN.synthesis_index(wildcards.key, int(wildcards.seed))


def packed_store(wildcards):
    return PLAN.packed_store(wildcards.key, int(wildcards.seed))


def pack_synthesis_input(wildcards):
    return PLAN.pack_synthesis(wildcards.key, getattr(wildcards, "synth_seed", None)) or []


def synthesis_manifest(wildcards):
    return PLAN.synthesis_manifest(wildcards.key)


def pretrained_input(wildcards):
    weights = PLAN.trunk_for(int(wildcards.seed))
    if not weights or PLAN.trains_trunk:
        # Produced by this workflow (pretrain_backbone): a new trunk must retrain the runs built on it.
        return weights or []
    # Downloaded once and tracked by DVC: ancient() so that a `dvc checkout` (new mtime) does not retrain every model.
    return ancient(weights)


def raw_dataset_input(wildcards):
    return ancient(raw_dataset_dir(wildcards.key))


def archive_input(wildcards):
    """params.yaml's `archive` of the dataset fetched here, if any (the rehearsal's: rule make_rehearsal_inputs)."""
    archive = PLAN.archive(wildcards.folder, wildcards.root)
    return ancient(archive) if archive else []


def local_weight_input(name):
    """The profile's local_weights copy of `name` and the SHA256SUMS pinning it (local_file, local_sums), or none."""
    return {role: ancient(path) for role, path in PLAN.local_weight(name).items()}


# ---- Wildcards -> plan: params functions ------------------------------------------------------------------------
# Optional flags are lists: `{params.x:q}` quotes each element and an empty list leaves nothing on the line.


def fetch_args(wildcards):
    return PLAN.fetch_flags(wildcards.folder, wildcards.root)


def local_weights_args(name=None):
    """`--file F --sha256 H` from the local_weights folder, or nothing (download). The sha256 is read from its
    SHA256SUMS when the job runs: Snakemake defers a params function whose input is still to be written."""
    if not PLAN.local_weights:
        return []
    return lambda wildcards, input: PLAN.local_weight_flags(name or wildcards.name, input.local_file, input.local_sums)


def parse_args(wildcards, input):
    return PLAN.parse_flags(wildcards.key, input.weights)


def synthesis_seed_arg(wildcards):
    return PLAN.synthesis_seed_of(getattr(wildcards, "synth_seed", None))


def synthesis_arg(wildcards, input):
    return folder_flag("--synthesis", input.synthesis)


def packed_arg(wildcards, input):
    return flag("--packed-images", input.packed)


def pack_copies_arg(wildcards, input):
    return PLAN.pack_copy_flags(input.synthesis)


def resume_flag(wildcards, input, output):
    # Decided while the DAG is built, before Snakemake clears the job's outputs (Plan.resume_flags).
    inputs = [str(path) for path in input]
    forced = CALL.forces("train", output)
    return PLAN.resume_flags(run_of(wildcards), os.path.dirname(output.model), inputs, forced)


def run_config_json(wildcards):
    # Compared by Snakemake's `params` rerun trigger: a run is redone when its own resolved configuration changes.
    return PLAN.run_config_json(run_of(wildcards))


def baseline_config_json(wildcards):
    # The oracle and the untrained start are built from the baseline's configuration (engine/supervised.py), so a
    # change of it (batch, lr, iterations, trunk) redoes them too, not only the method runs.
    return PLAN.run_config_json(Run(wildcards.key, "baseline", int(wildcards.seed)))


def evaluation_runs_arg(wildcards, input, output):
    return evaluation_args(input.models, output.metrics, output.per_query)
