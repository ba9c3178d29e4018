"""CMC and mAP of a query x gallery distance matrix under a setting and a gallery mode.

Ranking without a full argsort: the rank of a positive among the non-junk gallery is "negatives
at distance <= its own" + "positives before it" + 1. So per query chunk we sort only the *values*
of the negatives (a SIMD sort, about twice as fast as argsort, and no index gathering afterwards),
then binary-search each positive's distance in its row. Ties between a positive and a negative are
counted against the query, which makes every score independent of the gallery's order.

AP is the non-interpolated mean, over a query's positives, of precision at each positive's rank
after junk removal. Queries without any positive are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from spcreid.errors import SpcreidError
from spcreid.evaluation.gallery import (
    GALLERY_MODES,
    SINGLE_SHOT_MODES,
    check_gallery_mode,
    check_trials,
    single_shot_gallery,
)
from spcreid.evaluation.settings import CLOTHES_SETTINGS, check_setting, match_masks

DEFAULT_RANKS = (1, 5, 10, 20)
METRICS = ("cosine", "euclidean")
# Elements of the distance matrix handled at once: bounds the temporaries (sorted negatives, masks)
# to a few tens of MB whatever the matrix size.
CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class Labels:
    """Identity, camera and (optional) clothes id of every query or every gallery image."""

    pids: np.ndarray
    camids: np.ndarray
    clothes: np.ndarray | None = None

    def take(self, index: np.ndarray | slice) -> Labels:
        clothes = None if self.clothes is None else self.clothes[index]
        return Labels(self.pids[index], self.camids[index], clothes)


def as_numpy(values: Any) -> np.ndarray:
    """Accept numpy arrays, lists and (CPU or GPU) torch tensors without importing torch."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def distance(qf: Any, gf: Any, metric: str = "cosine") -> np.ndarray:
    """Query x gallery distances from (N, D) features; float32 unless either input is float64.

    On L2-normalised features both metrics give the same ranking (d_euc^2 = 2 * d_cos).
    """
    if metric not in METRICS:
        raise SpcreidError(f"unknown distance metric '{metric}'; choose one of {list(METRICS)}")
    q, g = _features("qf", qf), _features("gf", gf)
    if q.shape[1] != g.shape[1]:
        raise SpcreidError(f"qf has {q.shape[1]}-d features but gf has {g.shape[1]}-d; extract both with one model")
    dtype = np.result_type(q.dtype, g.dtype, np.float32)
    q, g = q.astype(dtype, copy=False), g.astype(dtype, copy=False)
    if metric == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), np.finfo(dtype).tiny)
        g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), np.finfo(dtype).tiny)
        return 1.0 - q @ g.T
    squared = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * (q @ g.T)
    return np.sqrt(np.maximum(squared, 0.0))


def _features(name: str, values: Any) -> np.ndarray:
    array = as_numpy(values)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise SpcreidError(f"{name} must be a real (N, D) feature matrix, got shape {array.shape} dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise SpcreidError(
            f"{name} contains NaN or inf values (the model diverged or the features are corrupt); extract the "
            "features again from a healthy model"
        )
    return array if np.issubdtype(array.dtype, np.floating) and array.dtype.itemsize >= 4 else array.astype(np.float32)


def evaluate(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    q_clothes: Any = None,
    g_clothes: Any = None,
    setting: str = "general",
    gallery_mode: str = "multi",
    trials: int = 10,
    seed: int = 0,
    ranks: Sequence[int] = DEFAULT_RANKS,
    progress: bool = True,
) -> dict:
    """Score a distance matrix; fractions in [0, 1]. See the module docstrings of settings and gallery."""
    results, _ = score_modes(
        distmat, q_pids, g_pids, q_camids, g_camids, q_clothes, g_clothes,
        setting=setting, modes=(gallery_mode,), trials=trials, seed=seed, ranks=ranks, progress=progress,
    )  # fmt: skip
    return results[gallery_mode]


def score_modes(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    q_clothes: Any = None,
    g_clothes: Any = None,
    setting: str = "general",
    modes: Sequence[str] = ("multi",),
    trials: int = 10,
    seed: int = 0,
    ranks: Sequence[int] = DEFAULT_RANKS,
    progress: bool = True,
) -> tuple[dict[str, dict], dict[str, dict[str, np.ndarray]]]:
    """Score one distance matrix under several gallery modes, ranking the full gallery only once.

    Returns ``({mode: metrics}, {mode: {"first_rank": ..., "ap": ...}})``. The per-query arrays
    hold, for every query (in row order), the 1-based rank of its first positive (0: none) and its
    AP: shape (n_query,) for ``multi``; (trials, n_query) for ``single``; for ``single-cmc`` the
    ranks of the single-shot trials and the full-gallery AP it reports. ``single`` and
    ``single-cmc`` share their trials (same seed, same draws).
    """
    check_setting(setting)
    modes = list(dict.fromkeys(modes))
    if not modes:
        raise SpcreidError("no gallery mode given; choose from " + str(list(GALLERY_MODES)))
    for mode in modes:
        check_gallery_mode(mode)
    ranks = _check_ranks(ranks)
    distmat = _distance_matrix(distmat)
    n_query, n_gallery = distmat.shape
    query = _labels("q", n_query, "rows", q_pids, q_camids, q_clothes)
    gallery = _labels("g", n_gallery, "columns", g_pids, g_camids, g_clothes)
    if setting in CLOTHES_SETTINGS and (query.clothes is None or gallery.clothes is None):
        raise SpcreidError(f"setting '{setting}' compares outfits: pass q_clothes and g_clothes (clothes ids)")

    first_rank, ap = query_scores(distmat, query, gallery, setting, progress)
    full = summarise(first_rank, ap, ranks)
    results: dict[str, dict] = {}
    per_query: dict[str, dict[str, np.ndarray]] = {}
    if "multi" in modes:
        results["multi"] = dict(full, n_gallery=n_gallery)
        per_query["multi"] = {"first_rank": first_rank, "ap": ap}
    single_modes = [mode for mode in modes if mode in SINGLE_SHOT_MODES]
    if single_modes:
        check_trials(trials)
        trial_first, trial_ap, drawn = _single_shot_trials(
            distmat, query, gallery, setting, int(trials), seed, progress
        )
        summary = _summarise_trials(trial_first, trial_ap, full, ranks, setting)
        for mode in single_modes:
            result = dict(summary, n_gallery=drawn, n_gallery_full=n_gallery)
            if mode == "single-cmc":
                result.update(mAP=full["mAP"], mAP_std=0.0)
                per_query[mode] = {"first_rank": trial_first, "ap": ap}
            else:
                per_query[mode] = {"first_rank": trial_first, "ap": trial_ap}
            results[mode] = result
    for mode, result in results.items():
        result.update(setting=setting, gallery_mode=mode)
    return {mode: results[mode] for mode in modes}, {mode: per_query[mode] for mode in modes}


def _single_shot_trials(
    distmat: np.ndarray, query: Labels, gallery: Labels, setting: str, trials: int, seed: int, progress: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per trial and query: first-positive rank and AP on a one-image-per-identity gallery, and its size."""
    rng = np.random.default_rng(seed)
    first_ranks, aps = [], []
    drawn = 0
    for _ in tqdm(
        range(trials), desc="single-shot trials", unit="trial", leave=False, disable=None if progress else True
    ):
        picked = single_shot_gallery(gallery.pids, rng)
        drawn = len(picked)  # one image per gallery identity: the same size in every trial
        first_rank, ap = query_scores(distmat[:, picked], query, gallery.take(picked), setting, progress=False)
        first_ranks.append(first_rank)
        aps.append(ap)
    return np.stack(first_ranks), np.stack(aps), drawn


def _summarise_trials(
    trial_first: np.ndarray, trial_ap: np.ndarray, full: dict, ranks: tuple[int, ...], setting: str
) -> dict:
    """Mean and std over trials of the metrics on one-image-per-identity galleries.

    A trial whose drawn gallery gives no query a positive has no defined score; it is left out and
    ``trials`` reports how many were averaged.
    """
    trials = len(trial_first)
    per_trial = [summarise(f, a, ranks) for f, a in zip(trial_first, trial_ap) if (f > 0).any()]
    if not per_trial:
        raise SpcreidError(
            f"in none of the {trials} single-shot trials did the drawn gallery hold a positive for any query "
            f"(setting '{setting}'); use gallery mode 'multi' for this data"
        )
    metric_keys = [f"rank{k}" for k in ranks] + ["mAP"]
    result = {key: float(np.mean([t[key] for t in per_trial])) for key in metric_keys}
    result.update({f"{key}_std": float(np.std([t[key] for t in per_trial])) for key in metric_keys})
    # Valid/skipped count against the whole gallery; a query can additionally drop out of a trial
    # whose drawn image of its identity happens to be junk (general setting, same camera).
    skipped_in_trials = int((trial_first == 0).sum())
    result.update(
        n_valid_queries=full["n_valid_queries"],
        n_skipped_queries=full["n_skipped_queries"],
        trials=len(per_trial),
        n_skipped_query_trials=skipped_in_trials - full["n_skipped_queries"] * trials,
    )
    return result


def query_scores(
    distmat: np.ndarray, query: Labels, gallery: Labels, setting: str, progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Per query: 1-based rank of the first positive after junk removal (0 = no positive) and AP."""
    n_query, n_gallery = distmat.shape
    first_rank = np.zeros(n_query, dtype=np.int64)
    ap = np.zeros(n_query, dtype=np.float64)
    rows_per_chunk = max(1, CHUNK_ELEMENTS // max(n_gallery, 1))
    starts = range(0, n_query, rows_per_chunk)
    for start in tqdm(starts, desc="ranking queries", unit="chunk", leave=False, disable=None if progress else True):
        rows = slice(start, min(start + rows_per_chunk, n_query))
        q = query.take(rows)
        positive, same_pid = match_masks(
            setting, q.pids, gallery.pids, q.camids, gallery.camids, q.clothes, gallery.clothes
        )
        first_rank[rows], ap[rows] = _chunk_scores(distmat[rows], positive, same_pid)
    return first_rank, ap


def _chunk_scores(dist: np.ndarray, positive: np.ndarray, same_pid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_rows = dist.shape[0]
    # Same-identity images are either positives (counted separately) or junk (dropped): neither
    # may push a positive down, so they leave the negatives' sorted rows as +inf.
    negatives = dist.copy()
    negatives[same_pid] = np.inf
    negatives.sort(axis=1)

    row, col = np.nonzero(positive)
    pos_dist = dist[row, col]
    order = np.lexsort((pos_dist, row))
    row, pos_dist = row[order], pos_dist[order]
    n_pos = np.bincount(row, minlength=n_rows)
    index_in_row = np.arange(row.size) - (np.cumsum(n_pos) - n_pos)[row]

    rank = _count_at_most(negatives, row, pos_dist) + index_in_row + 1
    precision = (index_in_row + 1) / rank
    ap = np.bincount(row, weights=precision, minlength=n_rows) / np.maximum(n_pos, 1)
    first_rank = np.zeros(n_rows, dtype=np.int64)
    is_first = index_in_row == 0
    first_rank[row[is_first]] = rank[is_first]
    return first_rank, ap


def _count_at_most(sorted_rows: np.ndarray, row: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Vectorised ``searchsorted(sorted_rows[row[i]], values[i], side="right")`` for every i."""
    width = sorted_rows.shape[1]
    low = np.zeros(row.size, dtype=np.int64)
    high = np.full(row.size, width, dtype=np.int64)
    for _ in range(width.bit_length()):
        mid = (low + high) // 2
        active = low < high
        go_right = sorted_rows[row, np.minimum(mid, width - 1)] <= values
        low = np.where(active & go_right, mid + 1, low)
        high = np.where(active & ~go_right, mid, high)
    return low


def summarise(first_rank: np.ndarray, ap: np.ndarray, ranks: Sequence[int] = DEFAULT_RANKS) -> dict:
    """Mean CMC at each rank and mAP over the queries that have a positive."""
    valid = first_rank > 0
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise SpcreidError(
            "no query has a positive gallery image under this setting; check that query and gallery "
            "share identities, that camera ids differ between them and that clothes ids are right"
        )
    result: dict[str, Any] = {f"rank{k}": float((first_rank[valid] <= k).mean()) for k in ranks}
    result.update(mAP=float(ap[valid].mean()), n_valid_queries=n_valid, n_skipped_queries=int((~valid).sum()))
    return result


def _check_ranks(ranks: Sequence[int]) -> tuple[int, ...]:
    checked = tuple(int(k) for k in ranks)
    if not checked or any(k < 1 or k != r for k, r in zip(checked, ranks)):
        raise SpcreidError(f"ranks must be positive integers, got {list(ranks)}")
    return checked


def _distance_matrix(distmat: Any) -> np.ndarray:
    array = as_numpy(distmat)
    if array.ndim != 2 or 0 in array.shape:
        raise SpcreidError(
            f"the distance matrix must be a non-empty (n_query, n_gallery) array, got shape {array.shape}; "
            "save it as one row per query and one column per gallery image"
        )
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise SpcreidError(
            f"the distance matrix must hold real numbers, got dtype {array.dtype}; save real distances (float32/64)"
        )
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    elif array.dtype.itemsize < 4:
        array = array.astype(np.float32)
    rows_per_chunk = max(1, CHUNK_ELEMENTS // array.shape[1])
    for start in range(0, array.shape[0], rows_per_chunk):
        bad = ~np.isfinite(array[start : start + rows_per_chunk])
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise SpcreidError(
                f"the distance matrix has {int(bad.sum())} NaN/inf entries in rows {start}..{start + len(bad) - 1} "
                f"(first at query {start + r}, gallery {c}); recompute it from finite features"
            )
    return array


def _labels(prefix: str, length: int, axis: str, pids: Any, camids: Any, clothes: Any) -> Labels:
    def one(name: str, values: Any) -> np.ndarray:
        array = as_numpy(values)
        if array.ndim != 1:
            raise SpcreidError(
                f"{prefix}_{name} must be a 1-d array, got shape {array.shape}; save one label per image "
                f"({prefix}_{name}.ravel())"
            )
        if not np.issubdtype(array.dtype, np.integer):
            # Float or string ids compare unreliably (0.1 + 0.2 != 0.3, "01" != "1"); say so instead of
            # reporting that no query has a positive gallery image.
            raise SpcreidError(
                f"{prefix}_{name} has dtype {array.dtype}; ids must be integers: convert them with "
                f"{prefix}_{name}.astype(numpy.int64) before saving"
            )
        if array.size != length:
            raise SpcreidError(
                f"{prefix}_{name} has {array.size} entries but the distance matrix has {length} {axis}; "
                "save one label per image, in the order of the distance matrix"
            )
        return array

    return Labels(one("pids", pids), one("camids", camids), None if clothes is None else one("clothes", clothes))
