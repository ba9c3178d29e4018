"""Seed-level statistics (spcreid.report.seed_level) and the verdict rule (spcreid.report.verdict), by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spcreid.errors import SpcreidError
from spcreid.report.seed_level import (
    holm,
    minimum_detectable_effect,
    paired_t_p,
    seed_level_test,
    seeds_needed,
)
from spcreid.report.verdict import decide


def constant_pairs(seed_differences, queries=4):
    """Per seed, every query differs by the seed's value: no within-seed spread, only seed-to-seed."""
    return [(np.full(queries, d, dtype=float), np.zeros(queries)) for d in seed_differences]


def test_paired_t_p_by_hand():
    # Differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt 3) = sqrt 12, df 2. For df 2 the t tail is
    # 1/2 (1 - t / sqrt(t^2 + 2)), so p = 1 - sqrt(12 / 14).
    assert paired_t_p(np.array([1.0, 2.0, 3.0])) == pytest.approx(1 - math.sqrt(12 / 14), rel=1e-9)
    assert paired_t_p(np.array([2.0, 2.0])) == 0.0  # the same shift in every seed
    assert paired_t_p(np.zeros(3)) == 1.0
    assert paired_t_p(np.array([5.0])) is None  # one seed: no seed-level test


def test_two_stage_bootstrap_resamples_seeds():
    # Seeds differ by 1 and 3, queries not at all: a resample of 2 seeds averages to 1, 2 or 3 with probabilities
    # 1/4, 1/2, 1/4, so the 95% interval is [1, 3] and ~half of the replicates are 2. A query-level bootstrap (seeds
    # fixed) would give the single value 2 and a zero-width interval.
    result = seed_level_test(constant_pairs([1.0, 3.0]))
    assert (result.diff, result.low, result.high, result.seeds, result.queries) == (2.0, 1.0, 3.0, 2, 8)
    assert set(np.unique(result.boot)) == {1.0, 2.0, 3.0}
    assert np.mean(result.boot == 2.0) == pytest.approx(0.5, abs=0.02)
    assert result.sd == pytest.approx(math.sqrt(2))
    assert result.p == pytest.approx(paired_t_p(np.array([1.0, 3.0])))
    # Within-seed spread enters too: one seed, queries +-1 around 0.
    one = seed_level_test([(np.array([1.0, -1.0, 1.0, -1.0]), np.zeros(4))])
    assert one.p is None and one.sd is None and one.low < 0 < one.high


def test_adjusted_interval_is_wider_and_deterministic():
    rng = np.random.default_rng(1)
    pairs = [(rng.normal(2.0 + s, 3.0, 50), np.zeros(50)) for s in range(4)]
    a, b = seed_level_test(pairs, seed=7), seed_level_test(pairs, seed=7)
    assert (a.low, a.high, a.p, a.query_p) == (b.low, b.high, b.p, b.query_p)
    low, high = a.interval(1 - 0.05 / 5)
    assert low < a.low <= a.diff <= a.high < high


def test_seed_level_test_refuses_empty_input():
    with pytest.raises(SpcreidError, match="at least one seed"):
        seed_level_test([])
    with pytest.raises(SpcreidError, match="non-empty 1-D"):
        seed_level_test([(np.array([]), np.array([]))])


def test_holm_by_hand():
    # Sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04 -> made monotone: 0.03, 0.06, 0.06.
    assert holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    assert holm([0.6, 0.9]) == [1.0, 1.0]
    assert holm([]) == []


def test_minimum_detectable_effect_has_the_power_it_claims():
    # Large n: the normal approximation (z_0.975 + z_0.8) * sd / sqrt(n) = 2.8016 / sqrt(200).
    assert minimum_detectable_effect(1.0, 200) == pytest.approx(2.8016 / math.sqrt(200), rel=0.01)
    # Few seeds: simulate the t-test at the returned effect; it rejects 80% of the time (+- 3 Monte-Carlo sd).
    from scipy import stats

    effect = minimum_detectable_effect(2.55, 3)
    rng = np.random.default_rng(0)
    samples = rng.normal(effect, 2.55, size=(20000, 3))
    rejected = stats.ttest_1samp(samples, 0.0, axis=1).pvalue < 0.05
    assert rejected.mean() == pytest.approx(0.8, abs=3 * math.sqrt(0.8 * 0.2 / 20000))
    # The seed-to-seed sd measured on the committed 3-seed tables (2.55 points) needs 8 seeds for 3 points.
    assert seeds_needed(2.55, 3.0) == 8
    assert minimum_detectable_effect(2.55, 1) is None and minimum_detectable_effect(0.0, 4) == 0.0
    # A stricter level needs a larger effect.
    assert minimum_detectable_effect(2.55, 8, alpha=0.01) > minimum_detectable_effect(2.55, 8)


@pytest.mark.parametrize(
    ("side", "low", "high", "p_holm", "verdict"),
    [
        (1, 0.5, 4.0, 0.01, "confirmed"),
        (-1, -4.0, -0.5, 0.01, "confirmed"),
        (1, -4.0, -0.5, 0.01, "contradicted"),
        (1, -0.5, 4.0, 0.01, "unresolved"),  # the interval includes 0
        (1, 0.5, 4.0, 0.2, "unresolved"),  # Holm p not below 0.05: the seeds do not support it
        (1, 0.5, 4.0, None, "unresolved"),  # one seed: no seed-level test
    ],
)
def test_verdict_rule(side, low, high, p_holm, verdict):
    assert decide(side, low, high, p_holm) == verdict
