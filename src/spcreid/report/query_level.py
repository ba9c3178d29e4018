"""The query-level paired permutation test: the tables' secondary column (spcreid.report.seed_level).

Seed ``s`` of a row is paired with seed ``s`` of its reference row, and within a seed query ``q`` with
query ``q`` (both runs score the same test set). The test swaps the two runs' scores of a (seed, query) pair
at random, i.e. flips the sign of its difference (exact when few pairs differ). It treats queries as
independent, so it says nothing about other training seeds; the tables' primary test takes the seed as the unit.

The permutation test is scipy's ``permutation_test(permutation_type="samples")`` (same null distribution,
same p-value rule; tests/test_tables.py checks the two agree), written as one matrix product per batch of
sign flips: scipy's version loops over the resamples in Python, and took 20 s of a 21 s tables job (the
tables and plots jobs both run 26 tests on 900 pairs).
"""

from __future__ import annotations

import numpy as np

RESAMPLES = 9999
CONFIDENCE = 0.95
BATCH = 500  # resamples drawn at once (bootstrap and sign flips)


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
