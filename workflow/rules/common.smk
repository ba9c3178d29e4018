# Shared definitions: params.yaml (through spcreid.workflow.experiments), the active profile, container
# images and the small helpers the rules call. Every job list is derived from `runs(params)`.

import json
import os
import re
import shlex
import sys

from snakemake.exceptions import WorkflowError

from spcreid.errors import SpcreidError
from spcreid.workflow.experiments import Run, load_params, method_config, profile, resumable, run_config, runs
from spcreid.workflow.references import reference_runs


# ---- Workflow options (`--config KEY=VALUE`); the science lives in params.yaml ---------------------------------

# Everything a user may pass with --config. Unknown keys are refused so that a typo (`--config profil=paper`)
# does not silently run the wrong profile.
WORKFLOW_OPTIONS = {
    "profile": "params.yaml profile to run (embedded | paper); default: the file's own 'profile' field",
    "params": "params file (default params.yaml)",
    "gallery_mode": "evaluation gallery mode (multi | single | single-cmc); default: the protocol's own",
    "main_image": "override the main container image (docker://...@sha256:... or a local .sif)",
    "fetch_prcc": "extra `spcreid fetch-data` arguments for PRCC, e.g. '--archive downloads/prcc.zip'",
    "fetch_vcclothes": "extra `spcreid fetch-data` arguments for VC-Clothes (it is distributed on request)",
    "fetch_ltcc": "extra `spcreid fetch-data` arguments for LTCC (it is distributed on request)",
}
_unknown_options = sorted(set(config) - set(WORKFLOW_OPTIONS))
if _unknown_options:
    raise WorkflowError(
        f"unknown --config key(s) {_unknown_options}; the workflow accepts "
        + "; ".join(f"{key}: {text}" for key, text in WORKFLOW_OPTIONS.items())
    )

PARAMS_FILE = str(config.get("params", "params.yaml"))
try:
    PARAMS = load_params(PARAMS_FILE, profile=config.get("profile"))
except SpcreidError as exc:
    # One line naming the file and field, raised while the DAG is built: no job has started yet.
    raise WorkflowError(str(exc)) from None

PROFILE_NAME = PARAMS["profile"]
PROFILE = profile(PARAMS)
RUNS = runs(PARAMS)
DATASETS = PROFILE["datasets"]
TABLES = sorted(PARAMS["tables"])
SYNTH_BACKEND = PROFILE["synthesis"]["backend"]
# Defaults of the optional profile sections (workflow/schemas/params.schema.json documents each field).
VERIFY = {"strict_counts": True, **PROFILE.get("verify", {})}
PARSING = {"source": "schp", "network": "schp", "device": PROFILE["train"]["device"], "batch": 16,
           "labels": "spcreid", **PROFILE.get("parsing", {})}
SYNTHESIS = {"network": "pise", "device": PROFILE["train"]["device"], "batch": 8, "keypoint_min_size": 800,
             **PROFILE["synthesis"]}
# One synthesis cache serves every experiment, so it holds as many copies as the most demanding one uses.
SYNTH_COPIES = max(int(method_config(PARAMS, run.experiment)["S"]) for run in RUNS)
SYNTH_SEED = 0
ON_GPU = str(PROFILE["train"]["device"]).startswith("cuda")
GALLERY_MODE = config.get("gallery_mode")
if GALLERY_MODE not in (None, "multi", "single", "single-cmc"):
    raise WorkflowError(f"--config gallery_mode={GALLERY_MODE}: use multi, single or single-cmc")


# ---- Containers: defined once, every rule names one -----------------------------------------------------------

# The digest is that of the image built from containers/Dockerfile (which also holds PISE's and SCHP's pinned
# sources, run in process by `spcreid synthesize` and `spcreid parse`) and pushed to
# the registry (docs/WORKFLOW.md, "Containers"); a digest, unlike a tag, cannot move under a finished run.
MAIN_IMAGE_DEFAULT = (
    "docker://ghcr.io/spcreid/spcreid:0.1.0"
    "@sha256:0000000000000000000000000000000000000000000000000000000000000000"
)
PINNED_IMAGE = re.compile(r"^(docker://[^\s@]+@sha256:[0-9a-f]{64}|[^\s]+\.sif)$")


def pinned_image(option, default):
    image = str(config.get(option, default))
    if not PINNED_IMAGE.match(image):
        raise WorkflowError(
            f"--config {option}={image}: give a digest-pinned docker://NAME@sha256:<64 hex> URI or a .sif file, "
            "so that the image cannot change under finished jobs"
        )
    return image


MAIN_IMAGE = pinned_image("main_image", MAIN_IMAGE_DEFAULT)

# The all-zero digests above stand for images not yet published. Planning (-n) works with them; running in
# containers does not, so say what to do instead of letting the registry answer "manifest unknown".
UNPUBLISHED_DIGEST = "@sha256:" + "0" * 64


def _uses_apptainer():
    from snakemake_interface_executor_plugins.settings import DeploymentMethod

    return DeploymentMethod.APPTAINER in workflow.deployment_settings.deployment_method


def _dry_run():
    # workflow.dryrun is only known once the executor exists, after this file is read; the flag is not.
    return any(arg in ("--dry-run", "--dryrun") or (arg[:1] == "-" and arg[1:].isalpha() and "n" in arg[1:])
               for arg in sys.argv[1:])


if _uses_apptainer() and not _dry_run():
    for _option, _image in [("main_image", MAIN_IMAGE)]:
        if _image.endswith(UNPUBLISHED_DIGEST):
            raise WorkflowError(
                f"{_image} is a placeholder: build the image once (`apptainer build spcreid.sif "
                "containers/Apptainer.def`) and pass "
                f"--config {_option}=$PWD/spcreid.sif, or push it and pass its docker://...@sha256 digest"
            )


# ---- Paths ------------------------------------------------------------------------------------------------------

# Every path the DAG writes carries the profile, so that an embedded, a rehearsal and a paper run never see (or
# reuse) each other's files: DATA for data sets, manifests, parsing maps, copies and weights; WORK for runs, logs
# and benchmarks; RESULTS for metrics, tables, plots and the report. The paper's own numbers are not an output:
# they live once, in results/published/.
DATA = f"data/{PROFILE_NAME}"
WORK = f"work/{PROFILE_NAME}"
RESULTS = f"results/{PROFILE_NAME}"
PUBLISHED = "results/published"


def _paths_stay_in_profile():
    # A path that params.yaml declares inside data/ must be this profile's, or two profiles would share it.
    declared = {"train.pretrained": PROFILE["train"].get("pretrained")}
    declared.update({f"datasets.{key}.root": spec.get("root") for key, spec in DATASETS.items()})
    for field, path in declared.items():
        parts = os.path.normpath(str(path)).split(os.sep) if path else []
        if parts[:1] == ["data"] and parts[1:2] != [PROFILE_NAME]:
            raise WorkflowError(
                f"{PARAMS_FILE}: profiles.{PROFILE_NAME}.{field} = {path} lies in data/ but outside {DATA}/; "
                f"put it under {DATA}/ (or outside data/) so that no other profile writes or reads it"
            )


_paths_stay_in_profile()
RUN_DIR = f"{WORK}/runs/{{key}}/{{experiment}}/seed{{seed}}"
METRICS = f"{RESULTS}/metrics/{{key}}/{{experiment}}/seed{{seed}}.json"
MANIFEST = f"{DATA}/manifests/{{key}}.csv"
SYNTH_INDEX = f"{DATA}/synth/{{key}}/{{backend}}/index.csv"
TABLE_FORMATS = ("csv", "md", "tex", "html")
PLOTS = [f"{RESULTS}/plots/{name}" for name in
         ("ablation_components.png", "ablation_sampling.png", "eps_curve.png", "eps_curve.csv")]


def log_path(name):
    return f"{WORK}/logs/{name}.log"


def bench_path(name):
    return f"{WORK}/benchmarks/{name}.tsv"


# Where `spcreid fetch-data --dest ROOT` puts each dataset (its distributed top folder).
RAW_FOLDER = {"prcc": "prcc", "vcclothes": "VC-Clothes", "ltcc": "LTCC_ReID"}
# Human parsing of a real dataset's train split, by the parse rule; the manifest synthesis reads.
PARSED_MANIFEST = f"{DATA}/parsing/{{key}}/manifest.csv"
# pise-texture is fetched into its own folder (DATA/weights/pise-texture/latest_net_G.pth), see weights.smk.
WEIGHT_NAMES = ("resnet50-imagenet", "keypointrcnn-coco", "vgg19-imagenet", "schp-lip")
# Their file names inside a profile's local_weights folder (the layout `spcreid make-rehearsal-inputs` writes).
LOCAL_WEIGHT_FILES = {name: f"{name}.pth" for name in WEIGHT_NAMES} | {"pise-texture": "pise-texture/latest_net_G.pth"}


def one_of(names):
    """Wildcard regex matching exactly these names (or nothing, so that a rule without work never matches)."""
    names = sorted(names)
    return "|".join(re.escape(name) for name in names) if names else "(?!x)x"


TOY_KEYS = [key for key, spec in DATASETS.items() if spec["source"] == "toy"]
REAL_KEYS = [key for key, spec in DATASETS.items() if spec["source"] != "toy"]


def run_of(wildcards):
    return Run(wildcards.key, wildcards.experiment, int(wildcards.seed))


def expand_runs(pattern, runs=None):
    return [pattern.format(key=r.dataset, experiment=r.experiment, seed=r.seed) for r in (RUNS if runs is None else runs)]


# Reference rows (params.yaml `references`): stored like runs of experiments of their own names.
REFERENCE_RUNS = reference_runs(PARAMS)
TRAINED_EXPERIMENTS = sorted(PARAMS["experiments"])


def table_outputs():
    return [f"{RESULTS}/tables/{table}.{fmt}" for table in TABLES for fmt in TABLE_FORMATS]


# ---- Per-job parameters -----------------------------------------------------------------------------------------

def dataset_spec(wildcards):
    return DATASETS[wildcards.key]


def raw_dataset_dir(key):
    spec = DATASETS[key]
    return os.path.join(spec["root"], RAW_FOLDER[spec["source"]])


def uses_synthesis(wildcards):
    method = method_config(PARAMS, wildcards.experiment)
    return bool(method["augment"] or method["self_identity"])


def synthesis_input(wildcards):
    if not uses_synthesis(wildcards):
        return []
    return SYNTH_INDEX.format(key=wildcards.key, backend=SYNTH_BACKEND)


# Optional flags are lists: `{params.x:q}` quotes each element and an empty list leaves nothing on the line.
def synthesis_arg(wildcards, input):
    return ["--synthesis", os.path.dirname(input.synthesis)] if input.synthesis else []


def pretrained_input(wildcards):
    weights = PROFILE["train"].get("pretrained")
    if not weights:
        return []
    if "pretrain" in PROFILE:
        # Produced by this workflow (pretrain_backbone): a new trunk must retrain the runs built on it.
        return weights
    # Downloaded once and tracked by DVC: ancient() so that a `dvc checkout` (new mtime) does not retrain
    # every model.
    return ancient(weights)


def resume_flag(wildcards, input, output):
    """Continue an interrupted run from its checkpoint instead of starting it again.

    Evaluated when the DAG is built, i.e. before Snakemake clears the job's outputs. The checkpoint is used
    when the run folder's config.json matches this run's configuration and no input is newer than it, even
    when model.pt or metrics.json exist (a job interrupted after training, or finished by a leftover
    trainer, is finalised, not retrained); a run rerun because its configuration or data changed starts afresh.
    """
    settings = workflow.dag_settings  # --forcerun train / --forceall (`make reproduce`) means: train again
    if settings.forceall or settings.forcetargets or {"train", *map(str, output)} & set(map(str, settings.forcerun)):
        return []
    run_dir = os.path.dirname(output.model)
    inputs = [str(path) for path in input]
    return ["--resume"] if resumable(run_dir, run_config(PARAMS, run_of(wildcards)), inputs) else []


def run_config_json(wildcards):
    # Compared by Snakemake's `params` rerun trigger: a run is redone when and only when its own
    # resolved configuration changes, not when an unrelated part of params.yaml is edited.
    return json.dumps(run_config(PARAMS, run_of(wildcards)), sort_keys=True)


def gallery_mode_arg(wildcards):
    return ["--gallery-mode", GALLERY_MODE] if GALLERY_MODE else []


SOURCE_OF_FOLDER = {folder: source for source, folder in RAW_FOLDER.items()}


def fetch_source(wildcards):
    return SOURCE_OF_FOLDER[wildcards.folder]


def fetch_args(wildcards):
    # The dataset's `archive` from params.yaml, then the --config words split like a shell would; each word is
    # quoted again on the rule's line, so the user's words arrive as arguments, never as shell code.
    source = fetch_source(wildcards)
    archives = [spec["archive"] for spec in DATASETS.values()
                if spec["source"] == source and spec.get("root") == wildcards.root and spec.get("archive")]
    option = f"fetch_{source}"
    try:
        extra = shlex.split(str(config.get(option, "")))
    except ValueError as exc:
        raise WorkflowError(f"--config {option}={config[option]!r}: {exc}; quote it as you would on a shell line")
    return (["--archive", archives[0]] if archives and "--archive" not in extra else []) + extra


def local_weights_args(name):
    """`--file F --sha256 H` from the profile's local_weights folder (SHA256SUMS), or nothing: download."""
    folder = PROFILE.get("local_weights")
    if not folder:
        return []
    relative = LOCAL_WEIGHT_FILES[name]
    sums_path = os.path.join(folder, "SHA256SUMS")
    try:
        with open(sums_path) as sums:
            listed = dict(reversed(line.split(None, 1)) for line in sums.read().splitlines() if line.strip())
    except OSError as exc:
        raise WorkflowError(
            f"profiles.{PROFILE_NAME}.local_weights: cannot read {sums_path} ({exc.strerror}); put the weight "
            "files and their SHA256SUMS there (for the rehearsal: `spcreid make-rehearsal-inputs --out "
            f"{folder}`)"
        ) from None
    if relative not in listed:
        raise WorkflowError(f"{sums_path} lists no {relative}; add `<sha256>  {relative}` for weights {name}")
    return ["--file", os.path.join(folder, relative), "--sha256", listed[relative]]


def raw_dataset_input(wildcards):
    return ancient(raw_dataset_dir(wildcards.key))


def toy_option(name):
    return lambda wildcards: PROFILE["toy"][name]


def parse_weights_input(wildcards):
    return ancient(f"{DATA}/weights/schp-lip.pth") if PARSING["source"] == "schp" else []


def parse_args(wildcards, input):
    """`spcreid parse` arguments after --manifest/--out: run SCHP, or take the user's maps."""
    if PARSING["source"] == "maps":
        return ["--maps", PARSING["root"], "--data-root", DATASETS[wildcards.key]["root"],
                "--maps-labels", PARSING["labels"]]
    return ["--weights", input.weights, "--network", PARSING["network"],
            "--device", PARSING["device"], "--batch", str(PARSING["batch"])]


def synthesis_manifest(wildcards):
    """Toy manifests carry the generator's parsing maps; real datasets' come from the parse rule."""
    if DATASETS[wildcards.key]["source"] == "toy":
        return MANIFEST.format(key=wildcards.key)
    return PARSED_MANIFEST.format(key=wildcards.key)


def pise_args(wildcards):
    return ["--pise-network", SYNTHESIS["network"], "--device", SYNTHESIS["device"],
            "--pise-batch", str(SYNTHESIS["batch"]), "--keypoint-min-size", str(SYNTHESIS["keypoint_min_size"])]
