"""The Snakemake workflow's view of params.yaml: the checked configuration, the active profile's paths and settings,
and the arguments its jobs get.

``workflow/rules/common.smk`` builds one :class:`Plan` while the DAG is built and keeps only what needs Snakemake
itself (wildcards, ``ancient()``, the rules). Everything here is plain Python on the params dict, so it is tested
without Snakemake (tests/test_config_workflow.py). :class:`SnakemakeCall` is the one place that reads Snakemake's
internals: the ``--configfile`` / ``--config`` values, the deployment method and the ``--force*`` options, which
Snakemake offers a Snakefile no public API for.

Defaults are not declared here: the params schema (spcreid/resources/params.schema.json) declares each one and
:func:`spcreid.config.experiments.check_params` fills them in. The one default that follows another field, the
parser's and PISE's device (``train.device``), is filled by :class:`Plan`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from typing import Any

from spcreid.config.experiments import (
    Run,
    check_params,
    load_params,
    method_config,
    per_seed_inputs,
    profile,
    read_yaml,
    reference_runs,
    resumable,
    retype_config_overrides,
    run_config,
    runs,
    seeded_path,
    synthesis_seed,
    trunk_path,
)
from spcreid.errors import SpcreidError
from spcreid.io import write_text
from spcreid.rehearsal.commands import SUMS_FILE
from spcreid.rehearsal.commands import WEIGHT_FILES as STAND_IN_FILES

# Keys of the configuration that only the workflow reads (`--config KEY=VALUE`); the jobs' params file leaves them out
# of its comparison with params.yaml.
WORKFLOW_OPTIONS = ("gallery_mode", "main_image", "fetch_prcc", "fetch_vcclothes", "fetch_ltcc")
# Where `spcreid fetch-data --dest ROOT` puts each dataset (its distributed top folder).
RAW_FOLDER = {"prcc": "prcc", "vcclothes": "VC-Clothes", "ltcc": "LTCC_ReID"}
SOURCE_OF_FOLDER = {folder: source for source, folder in RAW_FOLDER.items()}
# Weights the fetch_weights rule fetches; pise-texture has a rule of its own (PISE's loader wants a folder).
WEIGHT_NAMES = ("resnet50-imagenet", "keypointrcnn-coco", "vgg19-imagenet", "schp-lip")
# Each weight file's name inside a weights folder: DATA/weights and a profile's local_weights folder alike.
WEIGHT_FILES = {name: f"{name}.pth" for name in WEIGHT_NAMES} | STAND_IN_FILES
# make-toy-data's flags, in the order they go on its line, from the profile's `toy:` block.
TOY_FLAGS = ("identities", "test_identities", "train_outfits", "head_scale", "images_per_camera", "height", "width")
# The main image: containers/spcreid.sif once built here (`make image`), else the release recorded in
# containers/image-digest (a digest, unlike a tag, cannot move under a finished run); until a release is recorded
# that file holds an all-zero placeholder and the local build is the only image.
IMAGE_SIF = "containers/spcreid.sif"
IMAGE_DIGEST_FILE = "containers/image-digest"
UNPUBLISHED_DIGEST = "@sha256:" + "0" * 64
# Where the merged configuration goes when --configfile / --config changed params.yaml.
STATE_DIR = ".snakemake/spcreid"


class SnakemakeCall:
    """What this ``snakemake`` call was asked, read from a Snakefile's ``workflow`` object when it is needed.

    Lazily: Snakemake sets its DAG settings (``--forcerun`` ...) only after the Snakefile has been read.
    """

    def __init__(self, workflow: Any) -> None:
        self._workflow = workflow

    @property
    def configfiles(self) -> list[str]:
        """The ``--configfile`` files, in order."""
        return [str(path) for path in self._workflow.overwrite_configfiles]

    @property
    def config_overrides(self) -> dict[str, Any]:
        """The ``--config KEY=VALUE`` values, as Snakemake parsed them."""
        return dict(self._workflow.config_settings.config)

    @property
    def apptainer(self) -> bool:
        """Whether jobs run in containers (``--sdm apptainer``, ``--use-apptainer``)."""
        return "APPTAINER" in {method.name for method in self._workflow.deployment_settings.deployment_method}

    def forces(self, rule: str, outputs: list[str]) -> bool:
        """Whether ``--forceall``, forced targets or ``--forcerun RULE/OUTPUT`` make this job run again."""
        settings = self._workflow.dag_settings
        forcerun = set(map(str, settings.forcerun or ()))
        return bool(settings.forceall or settings.forcetargets or ({rule, *map(str, outputs)} & forcerun))


def load_config(config: dict[str, Any], call: SnakemakeCall, params_path: str = "params.yaml") -> dict[str, Any]:
    """Check the workflow's configuration in place: params.yaml, each ``--configfile`` over it, ``--config`` over both.

    Snakemake reads a --configfile with a plain YAML loader (of a key given twice, the last wins): each is read
    again through the params loader, which refuses that, deep nesting and alias bombs. Nested ``--config`` values
    get their YAML types back, then the schema fills its defaults and :func:`check_params` checks the
    cross-references. Raises SpcreidError naming the field.
    """
    for path in call.configfiles:
        read_yaml(path)
    retype_config_overrides(config, call.config_overrides, read_yaml(params_path))
    check_params(config, source="config (params.yaml, --configfile, --config)")
    return config


def params_file(params: dict[str, Any], params_path: str = "params.yaml", state_dir: str = STATE_DIR) -> str:
    """The params file the ``spcreid`` jobs read: params.yaml itself, unless --configfile / --config changed it.

    Then the merged configuration, written once per content (the name carries its hash), so a job never sees it
    change under it and a different configuration is a different input.
    """
    science = {key: value for key, value in params.items() if key not in WORKFLOW_OPTIONS and key != "profile"}
    on_disk = load_params(params_path)
    on_disk.pop("profile")
    if science == on_disk:
        return str(params_path)
    text = json.dumps(params, sort_keys=True, indent=1) + "\n"
    path = f"{state_dir}/params-{hashlib.sha256(text.encode()).hexdigest()[:16]}.json"
    if not os.path.exists(path):
        write_text(path, text)
    return path


def one_of(names) -> str:
    """Wildcard regex matching exactly these names (or nothing, so that a rule without work never matches)."""
    names = sorted(names)
    return "|".join(re.escape(name) for name in names) if names else "(?!x)x"


def flag(option: str, value: Any) -> list[str]:
    """``[option, value]`` when the value is set, else nothing: an optional flag as a rule's list param."""
    return [option, str(value)] if value else []


def _listed(paths: str | list[str]) -> list[str]:
    return [paths] if isinstance(paths, str) else list(paths)


def folder_flag(option: str, path: str | None) -> list[str]:
    """``[option, <path's folder>]`` for an optional input (a synthesis cache's index.csv -> its folder)."""
    return [option, os.path.dirname(path)] if path else []


def evaluation_args(models: str | list[str], metrics: str | list[str], per_query: str | list[str]) -> list[str]:
    """``--run DIR --out JSON --per-query NPZ`` for each model an evaluate job scores (one, or one per seed), in
    the order of its outputs."""
    args: list[str] = []
    for model, out, arrays in zip(_listed(models), _listed(metrics), _listed(per_query), strict=True):
        args += ["--run", os.path.dirname(model), "--out", out, "--per-query", arrays]
    return args


def listed_sha256(sums: str, relative: str) -> str:
    """The sha256 that the SHA256SUMS file ``sums`` lists for ``relative`` (a path relative to its folder).

    Called by a job's params while its inputs exist: Snakemake defers it (``<TBD>`` in a dry run) while ``sums``
    is still to be written, so the file must be opened under exactly that name.
    """
    with open(sums) as handle:
        listed = {}
        for line in handle.read().splitlines():
            if line.strip():
                digest, name = line.split(None, 1)
                listed[name.strip().removeprefix("*")] = digest
    if relative not in listed:
        raise SpcreidError(f"{sums} lists no {relative}; add `<sha256>  {relative}` to it")
    return listed[relative]


def main_image(config: dict[str, Any], root: str = ".") -> str:
    """The container image every rule names: ``--config main_image=...``, else the local build, else the release."""
    if "main_image" in config:
        return config["main_image"]
    sif = os.path.join(root, IMAGE_SIF)
    with open(os.path.join(root, IMAGE_DIGEST_FILE)) as handle:
        recorded = handle.read().strip()
    if os.path.exists(sif) or recorded.endswith(UNPUBLISHED_DIGEST):
        return os.path.abspath(sif)
    return recorded


def check_image(image: str, apptainer: bool) -> None:
    """Refuse a run in containers whose image is a .sif file that does not exist (Snakemake pulls docker:// ones)."""
    if apptainer and image.endswith(".sif") and not os.path.exists(image):
        raise SpcreidError(
            f"container image {image} does not exist: build it once with `make image` (apptainer build "
            f"{IMAGE_SIF} containers/Apptainer.def; {IMAGE_DIGEST_FILE} records no published release yet), or pass "
            "--config main_image=IMAGE.sif or a pushed docker://NAME@sha256:<digest>"
        )


class Plan:
    """The active profile of a checked configuration: its paths, settings and per-job arguments.

    Every path the DAG writes carries the profile, so that an embedded, a rehearsal and a paper run never see (or
    reuse) each other's files: ``data`` for data sets, manifests, parsing maps, copies and weights; ``work`` for
    runs, logs and benchmarks; ``results`` for metrics, tables, plots and the report. The paper's own numbers are
    not an output: they live once, in results/published/. Patterns keep Snakemake's wildcards (``{key}`` ...).
    """

    def __init__(self, params: dict[str, Any], params_file: str = "params.yaml") -> None:
        self.params = params
        self.params_file = params_file
        self.name = params["profile"]
        self.profile = profile(params)
        self.datasets = self.profile["datasets"]
        self.seeds = self.profile["seeds"]
        self.runs = runs(params)
        # Reference rows (params.yaml `references`): stored like runs of experiments of their own names.
        self.reference_runs = reference_runs(params)
        self.tables = sorted(params["tables"])
        self.trained_experiments = sorted(params["experiments"])
        # Reference rows with a run per seed: the evaluate rule scores their seeds together, like an experiment's.
        self.per_seed_references = sorted({run.experiment for run in self.reference_runs if run.seed != 0})
        self.toy_keys = [key for key, spec in self.datasets.items() if spec["source"] == "toy"]
        self.real_keys = [key for key, spec in self.datasets.items() if spec["source"] != "toy"]
        train = self.profile["train"]
        self.train = train
        self.on_gpu = str(train["device"]).startswith("cuda")
        self.verify = self.profile["verify"]
        self.parsing = {"device": train["device"], **self.profile["parsing"]}
        self.synthesis = {"device": train["device"], **self.profile["synthesis"]}
        # One synthesis cache serves every experiment, so it holds as many copies as the most demanding one uses.
        self.synth_copies = max(int(method_config(params, run.experiment)["S"]) for run in self.runs)
        self.per_seed_inputs = per_seed_inputs(params)
        self.pack_images = train["pack_images"]
        self.pretrain = self.profile.get("pretrain")
        self.local_weights = self.profile.get("local_weights")
        self.gallery_mode = params.get("gallery_mode")

        self.data, self.work, self.results = f"data/{self.name}", f"work/{self.name}", f"results/{self.name}"
        self.published = "results/published"
        # per_seed_inputs: run seed N trains on copies drawn with seed N, kept (and packed) under names ending -seed<N>.
        self.seed_folder = "-seed{synth_seed}" if self.per_seed_inputs else ""
        self.run_dir = f"{self.work}/runs/{{key}}/{{experiment}}/seed{{seed}}"
        self.metrics = f"{self.results}/metrics/{{key}}/{{experiment}}/seed{{seed}}.json"
        self.per_query = self.metrics.removesuffix(".json") + ".per_query.npz"
        self.manifest = f"{self.data}/manifests/{{key}}.csv"
        self.synth_index = f"{self.data}/synth/{{key}}/{{backend}}{self.seed_folder}/index.csv"
        # train.pack_images: each dataset's train images and copies decoded once, for every train job.
        self.packed = f"{self.data}/packed/{{key}}{self.seed_folder}.pt"
        # Human parsing of a real dataset's train split, by the parse rule; the manifest synthesis reads.
        self.parsed_manifest = f"{self.data}/parsing/{{key}}/manifest.csv"
        # The embedded profile's ImageNet stand-in: a toy set of its own, and the trunk (one per run seed with
        # per_seed_inputs) that pretrain_backbone writes to train.pretrained.
        self.pretrain_toy = f"{self.data}/toy/pretrain"
        self.trunk_part = "-seed{trunk_seed}" if self.per_seed_inputs else ""
        pretrained = train.get("pretrained")
        self.trunk = seeded_path(pretrained, "{trunk_seed}") if self.per_seed_inputs and pretrained else pretrained
        self.fetch_words = {source: self._fetch_words(source) for source in RAW_FOLDER}
        self._check_paths_stay_in_profile()
        self._check_pretrain()

    # ---- Checks the schema cannot express -------------------------------------------------------------------

    def _where(self, field: str) -> str:
        return f"{self.params_file}: profiles.{self.name}.{field}"

    def _check_paths_stay_in_profile(self) -> None:
        # A path inside data/ that the workflow writes must be this profile's, or two profiles would share it.
        declared = {"train.pretrained": self.train.get("pretrained"), "local_weights": self.stand_in_inputs}
        declared.update({f"datasets.{key}.root": spec.get("root") for key, spec in self.datasets.items()})
        for field, path in declared.items():
            parts = os.path.normpath(str(path)).split(os.sep) if path else []
            if parts[:1] == ["data"] and parts[1:2] != [self.name]:
                raise SpcreidError(
                    f"{self._where(field)} = {path} lies in data/ but outside {self.data}/; put it under "
                    f"{self.data}/ (or outside data/) so that no other profile writes or reads it"
                )

    def _check_pretrain(self) -> None:
        if not self.pretrain:
            return
        if not self.train.get("pretrained"):
            raise SpcreidError(
                f"{self._where('pretrain')} is set but train.pretrained is null; set train.pretrained to the weights "
                "file to write (e.g. data/<profile>/weights/toy-pretrained.pth)"
            )
        clash = sorted(key for key in self.toy_keys if self.datasets[key]["toy_seed"] == self.pretrain["toy_seed"])
        if clash or "pretrain" in self.datasets:
            raise SpcreidError(
                f"{self._where('pretrain.toy_seed')} {self.pretrain['toy_seed']} must differ from the toy_seed of "
                f"every dataset (clash: {clash or ['dataset key pretrain']}): the pretraining people must never be "
                "evaluated"
            )

    def _fetch_words(self, source: str) -> list[str]:
        # The --config words split like a shell would; each is quoted again on the rule's line, so the user's
        # words arrive as arguments, never as shell code.
        option = f"fetch_{source}"
        try:
            return shlex.split(str(self.params.get(option, "")))
        except ValueError as exc:
            raise SpcreidError(
                f"--config {option}={self.params[option]!r}: {exc}; quote it as you would on a shell line"
            ) from None

    # ---- Paths ------------------------------------------------------------------------------------------------

    def log_path(self, name: str) -> str:
        return f"{self.work}/logs/{name}.log"

    def bench_path(self, name: str) -> str:
        return f"{self.work}/benchmarks/{name}.tsv"

    def expand_runs(self, pattern: str, runs: list[Run] | None = None) -> list[str]:
        return [
            pattern.format(key=r.dataset, experiment=r.experiment, seed=r.seed)
            for r in (self.runs if runs is None else runs)
        ]

    def raw_dataset_dir(self, key: str) -> str:
        spec = self.datasets[key]
        return os.path.join(spec["root"], RAW_FOLDER[spec["source"]])

    def weight(self, name: str) -> str:
        return f"{self.data}/weights/{WEIGHT_FILES[name]}"

    # ---- Inputs -----------------------------------------------------------------------------------------------

    def uses_synthesis(self, experiment: str) -> bool:
        method = method_config(self.params, experiment)
        return bool(method["augment"] or method["self_identity"])

    def synthesis_index(self, key: str, seed: int) -> str:
        """The synthesis cache run ``seed`` of dataset ``key`` trains on."""
        synth_seed = synthesis_seed(self.params, seed)
        return self.synth_index.format(key=key, backend=self.synthesis["backend"], synth_seed=synth_seed)

    def packed_store(self, key: str, seed: int) -> str:
        return self.packed.format(key=key, synth_seed=synthesis_seed(self.params, seed))

    def pack_synthesis(self, key: str, synth_seed: str | None) -> str | None:
        """The copies pack_images puts beside the sources: the synthesis cache, if a run of the dataset augments."""
        experiments = {run.experiment for run in self.runs if run.dataset == key}
        if not any(method_config(self.params, experiment)["augment"] for experiment in experiments):
            return None
        seed_part = {"synth_seed": synth_seed} if self.per_seed_inputs else {}
        return self.synth_index.format(key=key, backend=self.synthesis["backend"], **seed_part)

    def synthesis_manifest(self, key: str) -> str:
        """Toy manifests carry the generator's parsing maps; real datasets' come from the parse rule."""
        pattern = self.manifest if self.datasets[key]["source"] == "toy" else self.parsed_manifest
        return pattern.format(key=key)

    def synthesis_seed_of(self, folder_seed: str | None) -> int:
        """The seed of a synthesis cache: its folder's with per-seed inputs, else the one shared cache's (0)."""
        return int(folder_seed) if self.per_seed_inputs else 0

    def trunk_for(self, seed: int) -> str | None:
        """The pretrained weights run ``seed`` starts from (None: random initialisation)."""
        return trunk_path(self.params, seed)

    @property
    def trains_trunk(self) -> bool:
        """Whether this workflow writes the trunk (pretrain_backbone) rather than downloading it."""
        return bool(self.pretrain)

    def pretrain_seed(self, trunk_seed: str | None) -> int:
        """pretrain_backbone's seed: the trunk's own with per-seed inputs (pretrain.seed is then unused)."""
        return int(trunk_seed) if self.per_seed_inputs else int(self.pretrain["seed"])

    def archive(self, folder: str, root: str) -> str | None:
        """The ``archive`` params.yaml gives the dataset fetched into ROOT/FOLDER, unless --config fetch_* has one."""
        source = SOURCE_OF_FOLDER[folder]
        if "--archive" in self.fetch_words[source]:
            return None
        archives = [
            spec["archive"]
            for spec in self.datasets.values()
            if spec["source"] == source and spec.get("root") == root and spec.get("archive")
        ]
        return archives[0] if archives else None

    def local_weight(self, name: str) -> dict[str, str]:
        """The weight file and the SHA256SUMS pinning it in the profile's local_weights folder, or nothing."""
        if not self.local_weights:
            return {}
        return {
            "local_file": os.path.join(self.local_weights, WEIGHT_FILES[name]),
            "local_sums": os.path.join(self.local_weights, SUMS_FILE),
        }

    @property
    def stand_in_inputs(self) -> str | None:
        """The folder the make_rehearsal_inputs rule writes, for a profile that runs the stand-in networks.

        The stand-in parser and generator load only stand-in weights, so such a profile's local_weights folder
        holds the stand-ins `spcreid make-rehearsal-inputs` writes, with the archives it packs.
        """
        stand_in = self.parsing["network"] == "stand-in" and self.synthesis.get("network") == "stand-in"
        return self.local_weights if stand_in and self.local_weights else None

    def stand_in_outputs(self) -> dict[str, Any]:
        """make_rehearsal_inputs' outputs: the SHA256SUMS, the stand-in weights and the archives the profile reads."""
        folder = self.stand_in_inputs
        if not folder:
            return {}
        inside = os.path.normpath(folder) + os.sep
        archives = sorted(
            {spec["archive"] for spec in self.datasets.values() if str(spec.get("archive", "")).startswith(inside)}
        )
        outputs = {
            "sums": os.path.join(folder, SUMS_FILE),
            "weights": [os.path.join(folder, relative) for relative in STAND_IN_FILES.values()],
        }
        return outputs | ({"archives": archives} if archives else {})

    def downloads(self) -> list[str]:
        """What this profile downloads and DVC tracks (dvc.smk): raw datasets and every fetched weight file."""
        paths = [self.raw_dataset_dir(key) for key in self.real_keys]
        if self.train.get("pretrained") and not self.trains_trunk:
            paths.append(self.train["pretrained"])
        if self.real_keys and self.parsing["source"] == "schp":
            paths.append(self.weight("schp-lip"))
        if self.synthesis["backend"] == "pise":
            paths += [self.weight("pise-texture"), self.weight("keypointrcnn-coco")]
        return paths

    # ---- Arguments --------------------------------------------------------------------------------------------
    # Optional flags are lists: `{params.x:q}` quotes each element and an empty list leaves nothing on the line.

    def toy_flags(self, skip: tuple[str, ...] = ()) -> list[str]:
        """The profile's toy: settings as make-toy-data flags."""
        toy = self.profile["toy"]
        args: list[str] = []
        for name in TOY_FLAGS:
            if toy.get(name) is not None and name not in skip:
                args += [f"--{name.replace('_', '-')}", str(toy[name])]
        return args

    def pretrain_toy_flags(self) -> list[str]:
        """The pretraining set's flags: the profile's toy, but everybody dressed the VC-Clothes way.

        Its images are labelled by outfit, so every outfit needs several images (train_outfits gives a training
        person up to one outfit per image); two outfits per person, each seen by several cameras and images, is
        what a clothing-sensitive ImageNet stand-in learns from (docs/METHOD.md).
        """
        return self.toy_flags(skip=("train_outfits",))

    def pack_copy_flags(self, synthesis: str | None) -> list[str]:
        """pack-images' copies: the synthesis cache's folder and how many copies it holds, if the dataset has one."""
        return folder_flag("--synthesis", synthesis) + (["--copies", str(self.synth_copies)] if synthesis else [])

    def fetch_flags(self, folder: str, root: str) -> list[str]:
        """`spcreid fetch-data` arguments after --dataset/--dest: the archive, then the --config fetch_* words."""
        archive = self.archive(folder, root)
        return flag("--archive", archive) + self.fetch_words[SOURCE_OF_FOLDER[folder]]

    def local_weight_flags(self, name: str, local_file: str, local_sums: str) -> list[str]:
        """`--file F --sha256 H`: the local copy, pinned to the sha256 that its folder's SHA256SUMS lists."""
        relative = WEIGHT_FILES[name]
        try:
            digest = listed_sha256(local_sums, relative)
        except SpcreidError as exc:
            raise SpcreidError(f"profiles.{self.name}.local_weights: {exc} for weights {name}") from None
        return ["--file", local_file, "--sha256", digest]

    def parse_flags(self, key: str, weights: str | None) -> list[str]:
        """`spcreid parse` arguments after --manifest/--out: run SCHP, or take the user's maps."""
        parsing = self.parsing
        if parsing["source"] == "maps":
            root = self.datasets[key]["root"]
            return ["--maps", parsing["root"], "--data-root", root, "--maps-labels", parsing["labels"]]
        return [
            *["--weights", weights, "--network", parsing["network"]],
            *["--device", parsing["device"], "--batch", str(parsing["batch"])],
        ]

    def pise_flags(self) -> list[str]:
        synthesis = self.synthesis
        return [
            *["--pise-network", synthesis["network"], "--device", synthesis["device"]],
            *["--pise-batch", str(synthesis["batch"]), "--keypoint-min-size", str(synthesis["keypoint_min_size"])],
            *["--pise-fit", synthesis["fit"]],
        ]

    def run_config_json(self, run: Run) -> str:
        """A run's resolved configuration, for Snakemake's `params` rerun trigger: a run is redone when and only when
        its own configuration changes, not when an unrelated part of params.yaml is edited."""
        return json.dumps(run_config(self.params, run), sort_keys=True)

    def resume_flags(self, run: Run, run_dir: str, inputs: list[str], forced: bool) -> list[str]:
        """Continue an interrupted run from its checkpoint instead of starting it again.

        Evaluated when the DAG is built, i.e. before Snakemake clears the job's outputs. The checkpoint is used when
        the run folder's config.json matches this run's configuration and no input is newer than it, even when
        model.pt exists (a job interrupted after training, or finished by a leftover trainer, is finalised, not
        retrained); a run rerun because its configuration or data changed, or forced (--forcerun train,
        --forceall: `make reproduce`), starts afresh.
        """
        if forced:
            return []
        return ["--resume"] if resumable(run_dir, run_config(self.params, run), inputs) else []
