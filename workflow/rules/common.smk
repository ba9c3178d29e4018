# Shared definitions: params.yaml (through spcreid.config.experiments), the active profile, container
# images and the small helpers the rules call. Every job list is derived from `runs(params)`.

import json
import os
import re
import shlex

from snakemake.exceptions import WorkflowError

from spcreid.errors import SpcreidError
from spcreid.config.experiments import (
    Run,
    check_params,
    load_params,
    method_config,
    per_seed_inputs,
    profile,
    read_yaml,
    resumable,
    retype_config_overrides,
    run_config,
    runs,
    seeded_path,
    synthesis_seed,
    trunk_path,
)
from spcreid.config.experiments import reference_runs
from spcreid.report.run_summary import print_notes, print_summary, request_only_notes

# ---- Configuration: params.yaml, validated against the params schema ------------------------------------------

# `--configfile FILE` is merged over params.yaml and `--config KEY=VALUE` over both. The schema
# (spcreid/resources/params.schema.json) declares every key, its allowed values and its default, the workflow
# options (gallery_mode, main_image, fetch_*) included: an unknown key (`--config profil=paper`) is
# refused. Validation goes through the same loader as every `spcreid` command (defaults filled in place, as
# snakemake.utils.validate(config, SCHEMA_PATH, set_default=True) would), so that the error names the field.
# The Snakefile's `configfile: "params.yaml"` has filled `config` before this file is included.
try:
    # Snakemake reads a --configfile with a plain YAML loader (of a key given twice, the last wins): read each
    # again through the params loader, which refuses that, deep nesting and alias bombs.
    for _configfile in workflow.overwrite_configfiles:
        read_yaml(_configfile)
    retype_config_overrides(config, workflow.config_settings.config, read_yaml("params.yaml"))
    check_params(config, source="config (params.yaml, --configfile, --config)")
except SpcreidError as exc:
    # One line naming the field, raised while the DAG is built: no job has started yet.
    raise WorkflowError(str(exc)) from None

PARAMS = config
WORKFLOW_OPTIONS = ("gallery_mode", "main_image", "fetch_prcc", "fetch_vcclothes", "fetch_ltcc")


def _params_file():
    """The params file the `spcreid` jobs read: params.yaml itself, unless --configfile/--config changed it."""
    science = {key: value for key, value in PARAMS.items() if key not in WORKFLOW_OPTIONS and key != "profile"}
    on_disk = load_params("params.yaml")
    on_disk.pop("profile")
    if science == on_disk:
        return "params.yaml"
    # The merged configuration, written once per content (the name carries its hash), so a job never sees it
    # change under it and a different configuration is a different input.
    import hashlib

    from spcreid.io import write_text

    text = json.dumps(PARAMS, sort_keys=True, indent=1) + "\n"
    path = f".snakemake/spcreid/params-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    if not os.path.exists(path):
        write_text(path, text)
    return path


PARAMS_FILE = _params_file()
PROFILE_NAME = PARAMS["profile"]
PROFILE = profile(PARAMS)
RUNS = runs(PARAMS)
DATASETS = PROFILE["datasets"]
TABLES = sorted(PARAMS["tables"])
SYNTH_BACKEND = PROFILE["synthesis"]["backend"]
# Defaults of the optional profile sections (src/spcreid/resources/params.schema.json documents each field).
VERIFY = {"strict_counts": True, **PROFILE.get("verify", {})}
PARSING = {
    "source": "schp",
    "network": "schp",
    "device": PROFILE["train"]["device"],
    "batch": 16,
    "labels": "spcreid",
    **PROFILE.get("parsing", {}),
}
SYNTHESIS = {
    "network": "pise",
    "device": PROFILE["train"]["device"],
    "batch": 8,
    "keypoint_min_size": 800,
    **PROFILE["synthesis"],
}
# One synthesis cache serves every experiment, so it holds as many copies as the most demanding one uses.
SYNTH_COPIES = max(int(method_config(PARAMS, run.experiment)["S"]) for run in RUNS)
SYNTH_SEED = 0
ON_GPU = str(PROFILE["train"]["device"]).startswith("cuda")
GALLERY_MODE = config.get("gallery_mode")


# ---- Containers: defined once, every rule names one -----------------------------------------------------------

# The image built from containers/Dockerfile (which also holds PISE's and SCHP's pinned sources, run in process
# by `spcreid synthesize` and `spcreid parse`). The release whose digest .github/workflows/image.yml pushed and
# recorded in containers/image-digest (a digest, unlike a tag, cannot move under a finished run), unless an image
# was built here with `make image` (containers/spcreid.sif), which wins. Until a release is recorded the file
# holds an all-zero placeholder and the local build is the only image. `--config main_image=...` overrides both.
IMAGES = {
    "main_image": ("containers/spcreid.sif", "containers/image-digest", "make image"),
}
UNPUBLISHED_DIGEST = "@sha256:" + "0" * 64


def workflow_image(option):
    if option in config:
        return config[option]
    sif, digest_file, _ = IMAGES[option]
    with open(digest_file) as handle:
        recorded = handle.read().strip()
    if os.path.exists(sif) or recorded.endswith(UNPUBLISHED_DIGEST):
        return os.path.abspath(sif)
    return recorded


MAIN_IMAGE = workflow_image("main_image")


def _apptainer_in_use():
    return "APPTAINER" in {method.name for method in workflow.deployment_settings.deployment_method}


def check_images():
    """Stop a run (called from the Snakefile's onstart) that would use a container image that does not exist."""
    if not _apptainer_in_use():
        return
    image = MAIN_IMAGE
    if image.endswith(".sif") and not os.path.exists(image):
        sif, digest_file, target = IMAGES["main_image"]
        raise WorkflowError(
            f"container image {image} does not exist: build it once with `{target}` (apptainer build "
            f"{sif} containers/Apptainer.def; {digest_file} records no published release yet), or pass "
            "--config main_image=IMAGE.sif or a pushed docker://NAME@sha256:<digest>"
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
SEEDS = PROFILE["seeds"]
RUN_DIR = f"{WORK}/runs/{{key}}/{{experiment}}/seed{{seed}}"
METRICS = f"{RESULTS}/metrics/{{key}}/{{experiment}}/seed{{seed}}.json"
MANIFEST = f"{DATA}/manifests/{{key}}.csv"
# per_seed_inputs: run seed N trains on copies drawn with seed N, kept (and packed) under names ending -seed<N>.
PER_SEED_INPUTS = per_seed_inputs(PARAMS)
SEED_FOLDER = "-seed{synth_seed}" if PER_SEED_INPUTS else ""
SYNTH_INDEX = f"{DATA}/synth/{{key}}/{{backend}}{SEED_FOLDER}/index.csv"
# train.pack_images: each dataset's train images and copies decoded once, for every train job (rule pack_images).
PACKED = f"{DATA}/packed/{{key}}{SEED_FOLDER}.pt"
PACK_IMAGES = PROFILE["train"]["pack_images"]
TABLE_FORMATS = ("csv", "md", "tex", "html")
PLOTS = [
    f"{RESULTS}/plots/{name}"
    for name in ("ablation_components.png", "ablation_sampling.png", "eps_curve.png", "eps_curve.csv")
]
# Pseudo-label quality per epoch of every unsupervised run: the tidy table, then the figure in each format.
LABEL_QUALITY = [
    f"{RESULTS}/plots/{name}"
    for name in ("label_quality.csv", "label_quality.png", "label_quality.svg", "label_quality.pdf")
]


def log_path(name):
    return f"{WORK}/logs/{name}.log"


def bench_path(name):
    return f"{WORK}/benchmarks/{name}.tsv"


# Where `spcreid fetch-data --dest ROOT` puts each dataset (its distributed top folder).
RAW_FOLDER = {"prcc": "prcc", "vcclothes": "VC-Clothes", "ltcc": "LTCC_ReID"}
# A dataset given out on request only, with no archive configured: said while the DAG is built (a dry run too).
print_notes(request_only_notes(DATASETS, config, RAW_FOLDER))
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
    return [
        pattern.format(key=r.dataset, experiment=r.experiment, seed=r.seed) for r in (RUNS if runs is None else runs)
    ]


# Reference rows (params.yaml `references`): stored like runs of experiments of their own names.
REFERENCE_RUNS = reference_runs(PARAMS)
TRAINED_EXPERIMENTS = sorted(PARAMS["experiments"])
# Reference rows with a run per seed (the oracle; the untrained start too where each seed has its own trunk): the
# evaluate rule scores their seeds together, like an experiment's.
PER_SEED_REFERENCES = sorted({run.experiment for run in REFERENCE_RUNS if run.seed != 0})


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
    return SYNTH_INDEX.format(
        key=wildcards.key, backend=SYNTH_BACKEND, synth_seed=synthesis_seed(PARAMS, int(wildcards.seed))
    )


# Optional flags are lists: `{params.x:q}` quotes each element and an empty list leaves nothing on the line.
def synthesis_arg(wildcards, input):
    return ["--synthesis", os.path.dirname(input.synthesis)] if input.synthesis else []


def packed_input(wildcards):
    if not PACK_IMAGES:
        return []
    return PACKED.format(key=wildcards.key, synth_seed=synthesis_seed(PARAMS, int(wildcards.seed)))


def packed_arg(wildcards, input):
    return ["--packed-images", input.packed] if input.packed else []


def pack_synthesis_input(wildcards):
    """The copies that pack_images puts beside the sources: the synthesis cache, if a run of the dataset augments."""
    experiments = {run.experiment for run in RUNS if run.dataset == wildcards.key}
    if not any(method_config(PARAMS, experiment)["augment"] for experiment in experiments):
        return []
    seed_part = {"synth_seed": wildcards.synth_seed} if PER_SEED_INPUTS else {}
    return SYNTH_INDEX.format(key=wildcards.key, backend=SYNTH_BACKEND, **seed_part)


def pack_copies_arg(wildcards, input):
    return ["--synthesis", os.path.dirname(input.synthesis), "--copies", str(SYNTH_COPIES)] if input.synthesis else []


def pretrained_input(wildcards):
    weights = trunk_path(PARAMS, int(wildcards.seed))
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


def evaluation_runs_arg(wildcards, input, output):
    """`--run DIR --out JSON --per-query NPZ` for each model the evaluate job scores, in the same order."""
    models = [input.models] if isinstance(input.models, str) else input.models
    per_query = [output.per_query] if isinstance(output.per_query, str) else output.per_query
    metrics = [output.metrics] if isinstance(output.metrics, str) else output.metrics
    args = []
    for model, out, arrays in zip(models, metrics, per_query):
        args += ["--run", os.path.dirname(model), "--out", out, "--per-query", arrays]
    return args


def gallery_mode_arg(wildcards):
    return ["--gallery-mode", GALLERY_MODE] if GALLERY_MODE else []


SOURCE_OF_FOLDER = {folder: source for source, folder in RAW_FOLDER.items()}


def fetch_source(wildcards):
    return SOURCE_OF_FOLDER[wildcards.folder]


def fetch_args(wildcards):
    # The dataset's `archive` from params.yaml, then the --config words split like a shell would; each word is
    # quoted again on the rule's line, so the user's words arrive as arguments, never as shell code.
    source = fetch_source(wildcards)
    archives = [
        spec["archive"]
        for spec in DATASETS.values()
        if spec["source"] == source and spec.get("root") == wildcards.root and spec.get("archive")
    ]
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


def downloads():
    """What this profile downloads and DVC tracks (dvc.smk): raw datasets and every fetched weight file.

    Called after the last include: the weights are read from the inputs of the jobs that consume them.
    """
    paths = [raw_dataset_dir(key) for key in REAL_KEYS]
    if PROFILE["train"].get("pretrained") and "pretrain" not in PROFILE:
        paths.append(PROFILE["train"]["pretrained"])
    if REAL_KEYS:
        paths += [str(path) for path in [parse_weights_input(None)] if path]
    if SYNTH_BACKEND == "pise":
        pise = rules.synthesize_pise.input
        paths += [str(pise.checkpoint), str(pise.keypoints)]
    return paths


def raw_dataset_input(wildcards):
    return ancient(raw_dataset_dir(wildcards.key))


TOY_FLAGS = ("identities", "test_identities", "train_outfits", "head_scale", "images_per_camera", "height", "width")


def toy_args(wildcards, skip=()):
    """The profile's toy: settings as make-toy-data flags (a list, so `:q` quotes each item)."""
    args = []
    for name in TOY_FLAGS:
        if PROFILE["toy"].get(name) is not None and name not in skip:
            args += [f"--{name.replace('_', '-')}", str(PROFILE["toy"][name])]
    return args


def pretrain_toy_args(wildcards):
    """The pretraining set's flags: the profile's toy, but everybody dressed the VC-Clothes way.

    Its images are labelled by outfit, so every outfit needs several images (train_outfits gives a
    training person up to one outfit per image); two outfits per person, each seen by several cameras
    and images, is what a clothing-sensitive ImageNet stand-in learns from (docs/METHOD.md).
    """
    return toy_args(wildcards, skip=("train_outfits",))


def parse_weights_input(wildcards):
    return ancient(f"{DATA}/weights/schp-lip.pth") if PARSING["source"] == "schp" else []


def parse_args(wildcards, input):
    """`spcreid parse` arguments after --manifest/--out: run SCHP, or take the user's maps."""
    if PARSING["source"] == "maps":
        return [
            "--maps",
            PARSING["root"],
            "--data-root",
            DATASETS[wildcards.key]["root"],
            "--maps-labels",
            PARSING["labels"],
        ]
    return [
        "--weights",
        input.weights,
        "--network",
        PARSING["network"],
        "--device",
        PARSING["device"],
        "--batch",
        str(PARSING["batch"]),
    ]


def synthesis_seed_arg(wildcards):
    """The seed of a synthesis cache: its folder's with per-seed inputs, else the one shared cache's."""
    return int(wildcards.synth_seed) if PER_SEED_INPUTS else SYNTH_SEED


def synthesis_manifest(wildcards):
    """Toy manifests carry the generator's parsing maps; real datasets' come from the parse rule."""
    if DATASETS[wildcards.key]["source"] == "toy":
        return MANIFEST.format(key=wildcards.key)
    return PARSED_MANIFEST.format(key=wildcards.key)


def pise_args(wildcards):
    return [
        "--pise-network",
        SYNTHESIS["network"],
        "--device",
        SYNTHESIS["device"],
        "--pise-batch",
        str(SYNTHESIS["batch"]),
        "--keypoint-min-size",
        str(SYNTHESIS["keypoint_min_size"]),
        "--pise-fit",
        SYNTHESIS["fit"],
    ]
