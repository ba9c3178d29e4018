"""Per-query results beside a metrics JSON file: what the paired tests of the tables resample.

File: the metrics path with suffix ``.npz`` (``results/<profile>/metrics/prcc/full/seed1.json`` ->
``seed1.npz``), written with :func:`save_per_query`. For every setting and gallery mode of the metrics
file it holds three 1-D arrays of equal length, one entry per *valid* query (a query with at least one
positive; the others do not count in R1 / mAP either), stored under the keys

* ``<setting>/<mode>/query_index``: int64, the query's position among the manifest's query rows (the
  same for every run on one manifest, so two runs can be paired query by query);
* ``<setting>/<mode>/rank1``: float64 in [0, 1], 1 if the first positive is at rank 1 (single-shot:
  the fraction of the trials in which it is);
* ``<setting>/<mode>/ap``: float64 in [0, 1], the query's average precision (single-shot: mean over
  the trials).

The multi-shot means of ``rank1`` and ``ap`` equal the metrics file's ``rank1`` and ``mAP``.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spcreid.errors import SpcreidError
from spcreid.io import atomic_path

FIELDS = ("query_index", "rank1", "ap")


@dataclass(frozen=True)
class PerQuery:
    """One setting and gallery mode of one run: arrays aligned by position."""

    query_index: np.ndarray
    rank1: np.ndarray
    ap: np.ndarray

    def check(self, where: str) -> PerQuery:
        n = self.query_index.shape
        if self.query_index.ndim != 1 or self.rank1.shape != n or self.ap.shape != n:
            raise SpcreidError(
                f"{where}: query_index, rank1 and ap must be 1-D arrays of one length, got shapes "
                f"{self.query_index.shape}, {self.rank1.shape}, {self.ap.shape}"
            )
        if not np.issubdtype(self.query_index.dtype, np.integer):
            raise SpcreidError(f"{where}: query_index must hold integers, got dtype {self.query_index.dtype}")
        if np.unique(self.query_index).size != self.query_index.size:
            raise SpcreidError(f"{where}: query_index repeats a query; store each valid query once")
        for name in ("rank1", "ap"):
            values = getattr(self, name)
            if not np.all(np.isfinite(values)) or values.min(initial=0) < 0 or values.max(initial=0) > 1:
                raise SpcreidError(f"{where}: {name} must be finite fractions in [0, 1]; rerun the evaluation")
        return self

    def aligned(self, order: np.ndarray) -> PerQuery:
        """The entries for the queries ``order`` (query ids), in that order."""
        position = {int(q): i for i, q in enumerate(self.query_index)}
        take = np.array([position[int(q)] for q in order], dtype=np.int64)
        return PerQuery(self.query_index[take], self.rank1[take], self.ap[take])


def from_scores(query_index, first_rank, ap) -> PerQuery:
    """From :func:`spcreid.evaluation.metrics.query_scores` (first_rank 0 = no positive: left out)."""
    query_index, first_rank, ap = np.asarray(query_index), np.asarray(first_rank), np.asarray(ap, dtype=float)
    valid = first_rank > 0
    return PerQuery(query_index[valid].astype(np.int64), (first_rank[valid] == 1).astype(float), ap[valid])


def from_trials(query_index, first_ranks, aps) -> PerQuery:
    """Single-shot: ``first_ranks`` and ``aps`` have one row per trial; each query is averaged over the
    trials in which it has a positive, and left out when it has none in any."""
    first_ranks, aps = np.asarray(first_ranks), np.asarray(aps, dtype=float)
    valid = first_ranks > 0
    counted = valid.sum(axis=0)
    keep = counted > 0
    hits = ((first_ranks == 1) & valid).sum(axis=0)
    ap_sum = np.where(valid, aps, 0.0).sum(axis=0)
    return PerQuery(
        np.asarray(query_index)[keep].astype(np.int64), hits[keep] / counted[keep], ap_sum[keep] / counted[keep]
    )


def per_query_path(metrics_path: str | os.PathLike) -> Path:
    return Path(metrics_path).with_suffix(".npz")


def save_per_query(path: str | os.PathLike, results: Mapping[str, Mapping[str, PerQuery]]) -> None:
    """Write ``{setting: {mode: PerQuery}}`` atomically."""
    arrays = {}
    for setting, modes in results.items():
        for mode, entry in modes.items():
            entry.check(f"{path} [{setting}/{mode}]")
            for field in FIELDS:
                arrays[f"{setting}/{mode}/{field}"] = np.asarray(getattr(entry, field))
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def load_per_query(path: str | os.PathLike) -> dict[str, dict[str, PerQuery]]:
    """``{setting: {mode: PerQuery}}``; errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise SpcreidError(
            f"{path} not found: the per-query results belong beside the metrics file; rerun its "
            "`spcreid evaluate`, or pass --allow-missing to leave the paired tests out"
        )
    grouped: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                parts = key.split("/")
                if len(parts) != 3 or parts[2] not in FIELDS:
                    raise SpcreidError(f"{path}: unexpected key '{key}'; keys are <setting>/<mode>/{{{','.join(FIELDS)}}}")
                grouped.setdefault((parts[0], parts[1]), {})[parts[2]] = archive[key]
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise SpcreidError(f"{path} is not a readable per-query .npz file ({exc}); rerun its evaluation") from exc
    results: dict[str, dict[str, PerQuery]] = {}
    for (setting, mode), fields in sorted(grouped.items()):
        missing = [field for field in FIELDS if field not in fields]
        if missing:
            raise SpcreidError(f"{path}: {setting}/{mode} lacks {missing}; rerun its evaluation")
        entry = PerQuery(fields["query_index"], fields["rank1"].astype(float), fields["ap"].astype(float))
        results.setdefault(setting, {})[mode] = entry.check(f"{path} [{setting}/{mode}]")
    return results
