"""Paired comparison of two table rows over the same queries and seeds.

Seed ``s`` of a row is paired with seed ``s`` of its reference row, and within a seed query ``q`` with
query ``q`` (both runs score the same test set). The effect is the mean per-query difference, averaged
over seeds, which is the difference of the two rows' table means. Two answers, both deterministic for a
given ``seed``:

* a 95% percentile CI from a bootstrap that resamples queries with replacement within each seed
  (seeds stay fixed: the spread between training seeds is shown by the std columns);
* a two-sided p-value from a paired permutation test, which swaps the two runs' scores of a (seed, query)
  pair at random, i.e. flips the sign of its difference (exact when few pairs differ).

The permutation test is scipy's ``permutation_test(permutation_type="samples")`` (same null distribution,
same p-value rule; tests/test_tables.py checks the two agree), written as one matrix product per batch of
sign flips: scipy's version loops over the resamples in Python, and took 20 s of a 21 s tables job (the
tables and plots jobs both run 26 tests on 900 pairs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from spcreid.errors import SpcreidError

RESAMPLES = 9999
CONFIDENCE = 0.95
BATCH = 500  # resamples drawn at once (bootstrap and sign flips)


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
    contributions = weights * (x - y)
    observed = float(contributions.sum())
    p = sign_flip_p(contributions, resamples, rng)

    boot = np.zeros(resamples)
    for start in range(0, resamples, BATCH):
        n = min(BATCH, resamples - start)
        for d in diffs:
            picks = rng.integers(0, d.size, size=(n, d.size))
            boot[start : start + n] += d[picks].mean(axis=1) / len(diffs)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(boot, [tail, 100 - tail])
    return PairedResult(observed, float(low), float(high), p, len(diffs), int(x.size))


def sign_flip_p(contributions: np.ndarray, resamples: int, rng: np.random.Generator) -> float:
    """Two-sided p-value of ``sum(contributions)`` against random sign flips of its terms.

    Swapping a pair's two scores flips the sign of its term. Terms that are zero (both runs scored the
    query alike) cannot change the statistic, so only the others are flipped: with ``2**n <= resamples``
    of them every flip pattern is enumerated (exact p), otherwise ``resamples`` random patterns are drawn
    and, as in scipy, the observed statistic counts as one of them (p is never 0). A null value counts as
    extreme within a relative tolerance, so that rounding cannot hide the observed pattern itself.
    """
    terms = contributions[contributions != 0]
    if terms.size == 0:
        return 1.0  # every swap gives the same statistic
    observed = float(terms.sum())
    tolerance = 1e-12 * float(np.abs(terms).sum())
    exact = terms.size < 63 and 2**terms.size <= resamples
    total = 2**terms.size if exact else resamples
    less = greater = 0
    for start in range(0, total, BATCH):
        n = min(BATCH, total - start)
        if exact:  # the bits of the pattern numbers start..start+n-1
            patterns = (np.arange(start, start + n)[:, None] >> np.arange(terms.size)) & 1
        else:
            patterns = rng.integers(0, 2, size=(n, terms.size))
        null = (1 - 2 * patterns) @ terms
        less += int(np.count_nonzero(null <= observed + tolerance))
        greater += int(np.count_nonzero(null >= observed - tolerance))
    adjustment = 0 if exact else 1
    p_less = (less + adjustment) / (total + adjustment)
    p_greater = (greater + adjustment) / (total + adjustment)
    return float(min(1.0, 2 * min(p_less, p_greater)))
