"""Paired comparison of two table rows over the same queries and seeds.

Seed ``s`` of a row is paired with seed ``s`` of its reference row, and within a seed query ``q`` with
query ``q`` (both runs score the same test set). The effect is the mean per-query difference, averaged
over seeds, which is the difference of the two rows' table means. Two answers, both deterministic for a
given ``seed``:

* a 95% percentile CI from a bootstrap that resamples queries with replacement within each seed
  (seeds stay fixed: the spread between training seeds is shown by the std columns);
* a two-sided p-value from scipy's paired permutation test, which swaps the two runs' scores of a
  (seed, query) pair at random (exact when there are few pairs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spcreid.errors import SpcreidError

RESAMPLES = 9999
CONFIDENCE = 0.95
BOOTSTRAP_BATCH = 500


@dataclass(frozen=True)
class PairedResult:
    diff: float  # mean of row - reference over (seed, query) pairs, seeds weighted equally
    low: float
    high: float
    p: float
    seeds: int
    queries: int  # pairs in all


def paired_test(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> PairedResult:
    """``pairs``: one (row, reference) pair of aligned per-query score arrays per seed."""
    from scipy.stats import permutation_test

    if not pairs:
        raise SpcreidError("a paired test needs at least one seed with per-query results")
    diffs = [np.asarray(x, dtype=float) - np.asarray(y, dtype=float) for x, y in pairs]
    if any(d.ndim != 1 or d.size == 0 for d in diffs):
        raise SpcreidError("a paired test needs non-empty 1-D per-query arrays of equal length per seed")
    # Weights that make a plain weighted sum the mean over seeds of the per-seed means.
    weights = np.concatenate([np.full(d.size, 1.0 / (d.size * len(diffs))) for d in diffs])
    x = np.concatenate([np.asarray(a, dtype=float) for a, _ in pairs])
    y = np.concatenate([np.asarray(b, dtype=float) for _, b in pairs])
    rng = np.random.default_rng(seed)

    def statistic(a, b, axis=-1):
        return np.sum(weights * (a - b), axis=axis)

    observed = float(statistic(x, y))
    if np.all(x == y):
        p = 1.0  # every swap gives the same statistic; spare the resampling
    else:
        result = permutation_test(
            (x, y),
            statistic,
            permutation_type="samples",
            vectorized=True,
            n_resamples=resamples,
            batch=BOOTSTRAP_BATCH,
            rng=rng,
        )
        p = float(min(1.0, result.pvalue))

    boot = np.zeros(resamples)
    for start in range(0, resamples, BOOTSTRAP_BATCH):
        n = min(BOOTSTRAP_BATCH, resamples - start)
        for d in diffs:
            picks = rng.integers(0, d.size, size=(n, d.size))
            boot[start : start + n] += d[picks].mean(axis=1) / len(diffs)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(boot, [tail, 100 - tail])
    return PairedResult(observed, float(low), float(high), p, len(diffs), int(x.size))
