"""Per-query results beside a metrics JSON file: what the paired tests of the tables resample.

File: ``<metrics stem>.per_query.npz`` beside the metrics JSON (``results/<profile>/metrics/prcc/full/seed1.json``
-> ``seed1.per_query.npz``; the JSON names it in its ``per_query`` field), written by ``spcreid evaluate``
(:func:`spcreid.evaluation.evaluate_report`) or :func:`save_per_query`. Arrays, per setting:

* ``<setting>/query_row``: int, each query's row among the manifest's query + gallery rows (the same for
  every run on one manifest, so two runs can be paired query by query);
* ``<setting>/query_path``: optional, the query images' paths, relative to the .npz's folder (as a manifest
  stores its paths), so that results do not depend on where the checkout lives;
* ``<setting>/<mode>/first_rank``: int, 1-based rank of the query's first positive, 0 = no positive;
  shape (n_query,) for ``multi``, (trials, n_query) for the single-shot modes;
* ``<setting>/<mode>/ap``: float, average precision; (n_query,) or (trials, n_query) (``single-cmc``:
  (n_query,), its mAP is on the full gallery).

:func:`load_per_query` turns them into one :class:`PerQuery` per setting and mode: the valid queries (at
least one positive; the others count in neither R1 nor mAP), their rank-1 hit (single-shot: the fraction
of the trials in which the query has a positive that it finds at rank 1) and AP (mean over those trials).
The multi-shot means of ``rank1`` and ``ap`` are the metrics file's ``rank1`` and ``mAP``.
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


SUFFIX = ".per_query.npz"


def per_query_path(metrics_path: str | os.PathLike, recorded: str | None = None) -> Path:
    """The per-query file of a metrics file: the one it names (relative to its folder), else the default."""
    metrics_path = Path(metrics_path)
    if recorded:
        return metrics_path.parent / recorded
    return metrics_path.with_name(metrics_path.stem + SUFFIX)


def save_per_query(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write arrays in the layout above atomically, after checking that they load.

    Query paths are rewritten relative to ``path``'s folder: absolute ones would tie committed results to
    the checkout that made them, and two clones of one project would write different bytes.
    """
    arrays = {key: np.asarray(value) for key, value in arrays.items()}
    _convert(Path(path), arrays)
    folder = Path(path).parent.resolve()
    for key in [key for key in arrays if key.endswith("/query_path")]:
        arrays[key] = np.array([os.path.relpath(os.path.abspath(p), folder) for p in arrays[key].tolist()], dtype=str)
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **arrays)


def load_per_query(path: str | os.PathLike) -> dict[str, dict[str, PerQuery]]:
    """``{setting: {mode: PerQuery}}``; errors name the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise SpcreidError(
            f"{path} not found: the per-query results belong beside the metrics file; rerun its "
            "`spcreid evaluate`, or pass --allow-missing to leave the paired tests out"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise SpcreidError(f"{path} is not a readable per-query .npz file ({exc}); rerun its evaluation") from exc
    return _convert(path, arrays)


def _convert(path: Path, arrays: Mapping[str, np.ndarray]) -> dict[str, dict[str, PerQuery]]:
    results: dict[str, dict[str, PerQuery]] = {}
    modes: dict[str, set[str]] = {}
    for key in arrays:
        parts = key.split("/")
        if len(parts) == 3 and parts[2] in ("first_rank", "ap"):
            modes.setdefault(parts[0], set()).add(parts[1])
        elif not (len(parts) == 2 and parts[1] in ("query_row", "query_path")):
            raise SpcreidError(
                f"{path}: unexpected key '{key}'; keys are <setting>/query_row, <setting>/query_path, "
                "<setting>/<mode>/first_rank and <setting>/<mode>/ap"
            )
    for setting, present in sorted(modes.items()):
        if f"{setting}/query_row" not in arrays:
            raise SpcreidError(f"{path}: '{setting}/query_row' is missing; rerun the evaluation")
        query_row = arrays[f"{setting}/query_row"]
        for mode in sorted(present):
            where = f"{path} [{setting}/{mode}]"
            missing = [f for f in ("first_rank", "ap") if f"{setting}/{mode}/{f}" not in arrays]
            if missing:
                raise SpcreidError(f"{where}: {missing} missing; rerun the evaluation")
            first, ap = arrays[f"{setting}/{mode}/first_rank"], arrays[f"{setting}/{mode}/ap"].astype(float)
            if first.shape[-1:] != query_row.shape or ap.shape[-1:] != query_row.shape or first.ndim > 2:
                raise SpcreidError(
                    f"{where}: first_rank {first.shape} and ap {ap.shape} must have one column per query "
                    f"({query_row.shape[0]}); rerun the evaluation"
                )
            if not np.issubdtype(first.dtype, np.integer):
                raise SpcreidError(f"{where}: first_rank must hold integer ranks, got dtype {first.dtype}")
            if first.ndim == 1:
                entry = from_scores(query_row, first, ap)
            else:
                entry = from_trials(query_row, first, np.broadcast_to(ap, first.shape))
            results.setdefault(setting, {})[mode] = entry.check(where)
    return results
