"""Experiments, table cells and run paths, derived from ``params.yaml``.

``params.yaml`` declares each distinct training configuration once (``experiments``) and maps every
table cell to one of them (``tables``). Snakemake, DVC and the table builder all call the functions
here, so the list of training jobs is never written down twice.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from spcreid.config.schema import validate_params
from spcreid.errors import SpcreidError


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names the same key twice; PyYAML would silently keep the last one."""


class YamlLimitError(yaml.YAMLError):
    """A document nested too deep or expanding (through aliases) to far more nodes than any params file has."""


# params.yaml is about 10 levels deep and 2,000 nodes once aliases are expanded. Deeper nesting overflows the
# recursive composer; an alias bomb (each level aliasing the previous one 9 times) stays small on disk while
# anything that walks the expanded value (the schema validator, its message) grows 9x per level.
MAX_YAML_DEPTH = 100
MAX_YAML_NODES = 200_000


class UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys, naming both lines, and bounds depth and expanded size.

    A second ``full_eps0.6:`` entry would otherwise replace the first without a word, and the table cell
    would be trained with the wrong values.
    """

    _depth = 0

    def compose_node(self, parent, index):
        if self._depth >= MAX_YAML_DEPTH:
            mark = self.peek_event().start_mark
            raise YamlLimitError(
                f"nesting deeper than {MAX_YAML_DEPTH} levels at line {mark.line + 1}; no params file needs that, "
                "fix the file"
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None and _expanded_size(node, {}) > MAX_YAML_NODES:
            raise YamlLimitError(
                f"its aliases expand to more than {MAX_YAML_NODES} values (an alias bomb?); "
                "write the values out or remove the aliases"
            )
        return node

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key; the base class reports it
                continue
            if first is not None:
                raise DuplicateKeyError(
                    f"key '{key}' appears twice in one mapping (lines {first} and {line}); "
                    "keep one of them (PyYAML would silently use the last)"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _expanded_size(node, sizes: dict[int, int]) -> int:
    """Nodes the document has once every alias is expanded (shared nodes counted once per use)."""
    if id(node) in sizes:
        return sizes[id(node)]
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total += _expanded_size(child, sizes)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            total += _expanded_size(key, sizes) + _expanded_size(value, sizes)
    sizes[id(node)] = min(total, MAX_YAML_NODES + 1)
    return sizes[id(node)]


def read_yaml(path: str | os.PathLike) -> Any:
    """A YAML file through :class:`UniqueKeyLoader`; any problem is one SpcreidError line naming the file."""
    with open(path) as handle:
        try:
            return yaml.load(handle, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
        except (DuplicateKeyError, YamlLimitError) as exc:
            raise SpcreidError(f"{path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise SpcreidError(f"{path} is not valid YAML: {_yaml_problem(exc)}; fix the syntax there") from exc
        except RecursionError as exc:
            raise SpcreidError(f"{path} is nested too deep to read; fix the file") from exc
        except UnicodeDecodeError as exc:
            raise SpcreidError(
                f"{path} is not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at offset {exc.start}); "
                "save it as UTF-8"
            ) from exc


@dataclass(frozen=True, order=True)
class Run:
    """One training job: a dataset (table column key), an experiment and a seed."""

    dataset: str
    experiment: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.experiment}/seed{self.seed}"


def load_params(path: str | os.PathLike = "params.yaml", profile: str | None = None) -> dict[str, Any]:
    """Read params.yaml, optionally overriding the active profile, and check cross-references."""
    path = Path(path)
    if path.is_dir():
        raise SpcreidError(f"{path} is a folder; pass the params file itself (e.g. {path / 'params.yaml'})")
    if not path.is_file():
        raise SpcreidError(f"{path} not found: run from the repository root or pass --params")
    params = read_yaml(path)
    if not isinstance(params, dict):
        raise SpcreidError(
            f"{path} must hold a mapping (profile:, profiles:, method:, ...), not {type(params).__name__}; "
            "use the repository's params.yaml as a template"
        )
    if profile is not None:
        params["profile"] = profile
    check_params(params, source=str(path))
    return params


def retype_config_overrides(config: dict[str, Any], overrides: Any, base: Any = None) -> None:
    """Give the scalars inside nested ``--config`` values (``method={eps: 2}``) their YAML types in ``config``.

    Snakemake parses such a value with YAML's BaseLoader, which keeps every scalar a string, and the schema then
    reported "'2' is not of type 'number'" about a number the user wrote as one. Where ``base`` (params.yaml)
    holds a string at the same place (a table's ``compare_to: "0.4"``), the string is kept.
    """

    def typed(value: Any, like: Any) -> Any:
        if isinstance(value, str):
            if isinstance(like, str):
                return value
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                return value
            return parsed if isinstance(parsed, (int, float, bool)) or parsed is None else value
        if isinstance(value, dict):
            like = like if isinstance(like, dict) else {}
            return {key: typed(item, like.get(key)) for key, item in value.items()}
        if isinstance(value, list):
            like = like if isinstance(like, list) else []
            return [typed(item, like[i] if i < len(like) else None) for i, item in enumerate(value)]
        return value

    def apply(target: dict, override: dict, like: Any, nested: bool) -> None:
        # A top-level KEY=VALUE is typed by Snakemake itself (int, float, bool, then string): left as it is.
        like = like if isinstance(like, dict) else {}
        for key, value in override.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                apply(target[key], value, like.get(key), True)
            elif nested or isinstance(value, (dict, list)):
                target[key] = typed(value, like.get(key))

    apply(config, dict(overrides), base, False)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line report as one line: what, and where."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def check_params(params: dict[str, Any], source: str = "params.yaml") -> None:
    """Schema validation (filling its defaults into ``params``) and the cross-reference checks JSON Schema
    cannot express."""
    validate_params(params, source=source)
    profile = params["profile"]
    if profile not in params["profiles"]:
        raise SpcreidError(
            f"{source}: field 'profile' is '{profile}', which is not one of profiles {sorted(params['profiles'])}; "
            "use one of them or add it under 'profiles'"
        )
    datasets = params["profiles"][profile]["datasets"]
    for table, spec in params["tables"].items():
        # The paper's value and the paired test of a row are looked up by (row, dataset, setting): a second row
        # with the same three showed the first one's paper value and its diff against it.
        seen: dict[tuple, int] = {}
        for i, cell in enumerate(spec["rows"]):
            where = f"{source}: tables.{table}.rows[{i}]"
            key = (cell["row"], cell["dataset"], cell["setting"])
            if key in seen:
                raise SpcreidError(
                    f"{where} repeats rows[{seen[key]}]: both are row '{cell['row']}' on {cell['dataset']} "
                    f"({cell['setting']}); give each row of a table its own label"
                )
            seen[key] = i
            if cell["experiment"] not in params["experiments"]:
                raise SpcreidError(
                    f"{where}.experiment '{cell['experiment']}' is not declared under 'experiments'; declare it or "
                    f"use one of {sorted(params['experiments'])}"
                )
            if cell["dataset"] not in datasets:
                raise SpcreidError(
                    f"{where}.dataset '{cell['dataset']}' is not a dataset of profile '{profile}' "
                    f"(profiles.{profile}.datasets has {sorted(datasets)}); use one of them"
                )

    check_references(params, source)
    # A claim compares two runs the tables train; one naming another experiment would fail only at the tables job.
    trained = {(run.dataset, run.experiment) for run in runs(params)}
    for index, claim in enumerate(params.get("claims") or []):
        for role in ("row", "reference"):
            if (claim["dataset"], claim[role]) not in trained:
                raise SpcreidError(
                    f"{source}: claims[{index}] ({claim['claim']!r}): {role} '{claim[role]}' on "
                    f"'{claim['dataset']}' is not trained by any table cell; name an experiment that a table row "
                    "uses, or remove the claim"
                )


def profile(params: dict[str, Any]) -> dict[str, Any]:
    return params["profiles"][params["profile"]]


def table_cells(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every table cell as a dict with its table name added, in declaration order."""
    return [dict(cell, table=table) for table, spec in params["tables"].items() for cell in spec["rows"]]


def runs(params: dict[str, Any]) -> list[Run]:
    """The distinct training jobs behind all table cells: each (dataset, experiment) once per seed."""
    pairs = sorted({(cell["dataset"], cell["experiment"]) for cell in table_cells(params)})
    return [Run(dataset, experiment, int(seed)) for dataset, experiment in pairs for seed in profile(params)["seeds"]]


def method_config(params: dict[str, Any], experiment: str) -> dict[str, Any]:
    """The method hyper-parameters of one experiment.

    Precedence, lowest first: the ``method`` block (the paper's values), the active profile's ``method``
    block (settings that must follow the data scale, e.g. k1 on a 144-image toy set), the experiment's own
    overrides (the ablation switches, which must hold in every profile).
    """
    if experiment not in params["experiments"]:
        raise SpcreidError(
            f"unknown experiment '{experiment}'; use one of those declared under 'experiments': "
            f"{sorted(params['experiments'])}"
        )
    merged = copy.deepcopy(params["method"])
    merged.update(profile(params).get("method") or {})
    merged.update(params["experiments"][experiment] or {})
    return merged


def per_seed_inputs(params: dict[str, Any]) -> bool:
    """Whether the active profile draws its random inputs per run seed: the trunk it pretrains and the copies.

    With it, seed N of every configuration starts from trunk N and trains on copies drawn with seed N, so the
    seed-to-seed spread that the tables' statistics see includes every random source, not only the training
    loop's (the scientific miniature); without it one trunk and one synthesis cache serve all seeds.
    """
    return bool(profile(params).get("per_seed_inputs", False))


def seeded_path(path: str | os.PathLike, seed: int | str) -> str:
    """``weights/trunk.pth`` -> ``weights/trunk-seed<seed>.pth`` (``seed`` may be a wildcard, ``{seed}``)."""
    path = Path(path)
    return str(path.with_name(f"{path.stem}-seed{seed}{path.suffix}"))


def trunk_path(params: dict[str, Any], seed: int) -> str | None:
    """The pretrained weights run ``seed`` starts from: the profile's own trunk of that seed when it trains one
    per seed, else ``train.pretrained`` (None: random initialisation)."""
    prof = profile(params)
    weights = prof["train"].get("pretrained")
    if weights and "pretrain" in prof and per_seed_inputs(params):
        return seeded_path(weights, seed)
    return weights


def synthesis_seed(params: dict[str, Any], seed: int) -> int:
    """The seed of the synthesis cache that run ``seed`` trains on (0: one cache for every seed)."""
    return int(seed) if per_seed_inputs(params) else 0


def run_config(params: dict[str, Any], run: Run) -> dict[str, Any]:
    """Everything a training job needs, fully resolved: method, train profile, dataset, seed."""
    prof = profile(params)
    if run.dataset not in prof["datasets"]:
        raise SpcreidError(f"dataset '{run.dataset}' is not in profile '{params['profile']}'")
    config = {
        "profile": params["profile"],
        "dataset": run.dataset,
        "dataset_spec": copy.deepcopy(prof["datasets"][run.dataset]),
        "experiment": run.experiment,
        "seed": run.seed,
        "method": method_config(params, run.experiment),
        "train": copy.deepcopy(prof["train"]),
        "synthesis": copy.deepcopy(prof.get("synthesis", {})),
    }
    if per_seed_inputs(params):
        # Only then: a shared-input profile's configs (and so its committed results) stay as they were.
        config["train"]["pretrained"] = trunk_path(params, run.seed)
        config["synthesis"]["seed"] = synthesis_seed(params, run.seed)
    return config


def resumable(run_dir: str | os.PathLike, config: dict[str, Any], inputs: list[str | os.PathLike]) -> bool:
    """Whether a rerun of a run may continue from ``run_dir/checkpoint.pt`` rather than start over.

    True when the folder's config.json (written by the trainer) agrees with every field of ``config``
    (``run_config`` output) and no input is newer than the checkpoint: the rerun then comes from an
    interruption, and a checkpoint of the last epoch is finalised instead of retrained. A changed
    configuration or input starts afresh, as Snakemake's rerun triggers intend.
    """
    run_dir = Path(run_dir)
    checkpoint = run_dir / "checkpoint.pt"
    try:
        with open(run_dir / "config.json") as handle:
            recorded = json.load(handle)
        stamp = checkpoint.stat().st_mtime
    except (OSError, json.JSONDecodeError):
        return False
    if not _agrees(recorded, json.loads(json.dumps(config))):
        return False
    return all(not os.path.exists(path) or os.path.getmtime(path) <= stamp for path in inputs)


def _agrees(recorded: Any, wanted: Any) -> bool:
    """Every field of ``wanted`` has the same value in ``recorded`` (which may hold more: filled defaults)."""
    if isinstance(wanted, dict):
        return isinstance(recorded, dict) and all(k in recorded and _agrees(recorded[k], v) for k, v in wanted.items())
    return recorded == wanted


# ---- Reference rows ------------------------------------------------------------------------------------------
# Reference rows of the tables (``params.yaml: references``): an upper and lower bounds of the benchmark.
#
# A reference is stored like a run of an experiment with its name (``<dataset>/<name>/seed<N>.json`` and
# its per-query ``.npz``), so the evaluation rules and the table builder treat it as any other run. A
# trained reference (``per_seed: true``) has one run per profile seed; a deterministic one has a single
# run, seed 0.

BOUND_TITLES = {"upper": "reference: upper bound", "lower": "reference: lower bound"}
DETERMINISTIC_SEED = 0


def references(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(params.get("references") or {})


def reference_seeds(params: dict[str, Any], name: str) -> list[int]:
    """A trained reference runs once per seed; one that evaluates the pretrained trunk does too where the profile
    trains a trunk per seed (each seed's start is its own); anything else is deterministic: seed 0."""
    spec = references(params)[name]
    seeded_trunk = spec.get("uses_trunk", False) and per_seed_inputs(params) and "pretrain" in profile(params)
    if spec["per_seed"] or seeded_trunk:
        return [int(s) for s in profile(params)["seeds"]]
    return [DETERMINISTIC_SEED]


def table_datasets(params: dict[str, Any]) -> list[str]:
    return sorted({cell["dataset"] for cell in table_cells(params)})


def reference_runs(params: dict[str, Any]) -> list[Run]:
    """Every reference run the tables read: each reference on each dataset of the tables."""
    return [
        Run(dataset, name, seed)
        for name in sorted(references(params))
        for dataset in table_datasets(params)
        for seed in reference_seeds(params, name)
    ]


def check_references(params: dict[str, Any], source: str = "params.yaml") -> None:
    """Cross-references the schema cannot express: names apart from experiments, compare_to rows exist."""
    for name in references(params):
        if name in params["experiments"]:
            raise SpcreidError(
                f"{source}: references.{name} has the name of an experiment; their metrics would share "
                "one folder: rename one of them"
            )
    for table, spec in params["tables"].items():
        target = spec.get("compare_to")
        rows = [cell["row"] for cell in spec["rows"]]
        if target is not None and target not in rows:
            raise SpcreidError(f"{source}: tables.{table}.compare_to '{target}' is not one of its rows {rows}")
