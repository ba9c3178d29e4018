"""The runs behind one table row: their metrics files, checked, and their per-query results.

A metrics file is refused (an error naming it) when it records another profile than the tables are made
for, no profile at all, another dataset / experiment / seed than its path says, or a metric that is not a
finite number. With ``allow_missing`` a missing or non-finite run is left out of its cell instead (with a
warning for the non-finite one), and rows without per-query files get no paired test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spcreid.config.experiments import Run
from spcreid.errors import SpcreidError
from spcreid.evaluation.metrics_file import (
    MetricsFile,
    NonFiniteMetric,
    read_metrics_file,
)
from spcreid.evaluation.per_query import PerQuery, load_per_query, per_query_path

# Column label -> key in the metrics JSON and the per-query field of the same quantity.
METRICS = {"R1": ("rank1", "rank1"), "mAP": ("mAP", "ap")}
# A per-query file must reproduce its multi-shot metrics to this precision, or it is from another evaluation.
CONSISTENCY = 1e-6


def metrics_path(metrics_dir: str | os.PathLike, run: Run) -> Path:
    return Path(metrics_dir) / run.dataset / run.experiment / f"seed{run.seed}.json"


@dataclass
class RunStore:
    """Reads each file once, however many table cells share it."""

    metrics_dir: Path
    profile: str
    allow_missing: bool = False
    _files: dict[Path, MetricsFile | None] = field(default_factory=dict)
    _per_query: dict[Path, dict[str, dict[str, PerQuery]] | None] = field(default_factory=dict)

    def metrics(self, run: Run) -> MetricsFile | None:
        path = metrics_path(self.metrics_dir, run)
        if path not in self._files:
            self._files[path] = self._read(path, run)
        return self._files[path]

    def _read(self, path: Path, run: Run) -> MetricsFile | None:
        if not path.is_file():
            if self.allow_missing:
                return None
            raise SpcreidError(
                f"{path} not found: evaluate run {run.name} first (`snakemake metrics`), or pass --allow-missing "
                "to leave the cell empty"
            )
        record = read_metrics_file(path)
        recorded = record.identity.get("profile")
        if recorded is None:
            raise SpcreidError(
                f"{path} records no profile (written before metrics files named their run); re-evaluate it so "
                "that runs of different profiles cannot mix in one table"
            )
        if recorded != self.profile:
            raise SpcreidError(
                f"{path} is a run of profile '{recorded}', but these tables are for profile '{self.profile}'; "
                f"point --metrics-dir at the '{self.profile}' metrics (results/{self.profile}/metrics)"
            )
        for key, expected in (("dataset", run.dataset), ("experiment", run.experiment), ("seed", run.seed)):
            if key in record.identity and record.identity[key] != expected:
                raise SpcreidError(
                    f"{path} records {key} {record.identity[key]!r} but its path says {expected!r}; the file was "
                    "copied or renamed: re-evaluate the run"
                )
        return record

    def per_query(self, run: Run, setting: str, mode: str) -> PerQuery | None:
        record = self.metrics(run)
        if record is None:
            return None
        path = per_query_path(record.path, record.per_query)
        if path not in self._per_query:
            if not path.is_file() and self.allow_missing:
                self._per_query[path] = None
            else:
                self._per_query[path] = load_per_query(path)
        loaded = self._per_query[path]
        if loaded is None:
            return None
        if setting not in loaded or mode not in loaded[setting]:
            raise SpcreidError(f"{path} has no per-query results for {setting}/{mode}; re-evaluate the run")
        entry = loaded[setting][mode]
        if mode == "multi":
            for key, name in METRICS.values():
                mean = float(np.mean(getattr(entry, name))) if entry.query_index.size else float("nan")
                if not abs(mean - record.value(setting, mode, key)) <= CONSISTENCY:
                    raise SpcreidError(
                        f"{path}: mean per-query {name} is {mean:.6f} but {record.path.name} says "
                        f"{record.value(setting, mode, key):.6f}; the two files come from different evaluations: "
                        "re-evaluate the run"
                    )
        return entry


@dataclass(frozen=True)
class CellRuns:
    """The usable runs of one row in one gallery mode: seeds and their values in %."""

    seeds: list[int]
    values: dict[str, list[float]]  # label -> one value per seed
    trials_std: dict[str, list[float]]  # label -> single-shot std over trials, per seed (empty: not single-shot)
    trials: int | None


def modes_of(store: RunStore, runs: list[Run], setting: str) -> list[str]:
    """Gallery modes the row's files hold; every file must hold the same ones."""
    found: list[tuple[Path, list[str]]] = []
    for run in runs:
        record = store.metrics(run)
        if record is not None:
            found.append((record.path, record.modes(setting) or _missing_setting(record, setting)))
    for path, modes in found[1:]:
        if modes != found[0][1]:
            raise SpcreidError(
                f"{path} holds gallery modes {modes} for '{setting}' but {found[0][0]} holds {found[0][1]}; "
                "evaluate every run of a row the same way"
            )
    return found[0][1] if found else []


def _missing_setting(record: MetricsFile, setting: str) -> list[str]:
    record.value(setting, "multi", "rank1")  # raises the "has no setting" error
    return []


def cell_runs(store: RunStore, runs: list[Run], setting: str, mode: str) -> CellRuns:
    seeds, values, trials_std, trials = [], {label: [] for label in METRICS}, {label: [] for label in METRICS}, None
    for run in runs:
        record = store.metrics(run)
        if record is None:
            continue
        try:
            row = {label: 100.0 * record.value(setting, mode, key) for label, (key, _) in METRICS.items()}
        except NonFiniteMetric as exc:
            if not store.allow_missing:
                raise
            print(f"warning: {exc}; cell left without this seed (--allow-missing)")
            continue
        seeds.append(run.seed)
        for label, value in row.items():
            values[label].append(value)
        metrics = record.results[setting][mode]
        if mode != "multi":
            trials = int(metrics["trials"]) if "trials" in metrics else trials
            for label, (key, _) in METRICS.items():
                if f"{key}_std" in metrics:
                    trials_std[label].append(100.0 * float(metrics[f"{key}_std"]))
    return CellRuns(seeds, values, trials_std, trials)


def summarise(runs: CellRuns) -> dict[str, Any]:
    """Mean and sample std (ddof=1; None for one seed) per metric, in %, and the seed count."""
    n = len(runs.seeds)
    out: dict[str, Any] = {"seeds": n}
    for label, values in runs.values.items():
        out[label] = float(np.mean(values)) if n else None
        out[f"{label} std"] = float(np.std(values, ddof=1)) if n > 1 else None
        spread = runs.trials_std[label]
        out[f"{label} trials std"] = float(np.mean(spread)) if spread else None
    return out


def paired_arrays(
    store: RunStore, row: list[Run], reference: list[Run], setting: str, mode: str
) -> dict[str, list[tuple[np.ndarray, np.ndarray]]] | None:
    """Per metric, one (row, reference) pair of query-aligned arrays (in %) per seed both have."""
    by_seed = {run.seed: run for run in reference}
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {label: [] for label in METRICS}
    for run in row:
        if run.seed not in by_seed:
            continue
        try:
            mine, theirs = store.per_query(run, setting, mode), store.per_query(by_seed[run.seed], setting, mode)
        except NonFiniteMetric:
            if not store.allow_missing:
                raise
            continue  # that seed is left out of the cell's mean too
        if mine is None or theirs is None:
            return None  # --allow-missing and a per-query file absent: no test rather than a partial one
        if not np.array_equal(np.sort(mine.query_index), np.sort(theirs.query_index)):
            a, b = store.metrics(run), store.metrics(by_seed[run.seed])
            raise SpcreidError(
                f"{per_query_path(a.path, a.per_query)} and {per_query_path(b.path, b.per_query)} "
                "score different queries "
                f"({mine.query_index.size} vs {theirs.query_index.size}); evaluate both on the same manifest"
            )
        order = np.sort(mine.query_index)
        mine, theirs = mine.aligned(order), theirs.aligned(order)
        for label, (_, name) in METRICS.items():
            pairs[label].append((100.0 * getattr(mine, name), 100.0 * getattr(theirs, name)))
    return pairs if pairs["R1"] else None
