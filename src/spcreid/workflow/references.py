"""Reference rows of the tables (``params.yaml: references``): an upper and lower bounds of the benchmark.

A reference is stored like a run of an experiment with its name (``<dataset>/<name>/seed<N>.json`` and
its per-query ``.npz``), so the evaluation rules and the table builder treat it as any other run. A
trained reference (``per_seed: true``) has one run per profile seed; a deterministic one has a single
run, seed 0.
"""

from __future__ import annotations

from typing import Any

from spcreid.errors import SpcreidError
from spcreid.workflow.experiments import Run, per_seed_inputs, profile, table_cells

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
