"""Comparison of two table rows with the training seed as the unit of replication.

A row's runs and its reference row's runs share the seed (and, within a seed, the test queries). What a reader
wants to know is whether retraining both with new seeds would keep the difference, so the replication unit is the
seed; the queries of one seed are not independent evidence about that (they are scored by the same two networks).
Per comparison:

* ``diff``: the mean over seeds of the seed's mean per-query difference (= the difference of the two table means);
* ``low``, ``high``: a two-stage bootstrap interval: resample seeds with replacement, then queries with
  replacement within each drawn seed, so both the seed-to-seed and the test-set variation are in it;
* ``p``: two-sided paired t-test on the seed differences (the run-level test; n - 1 degrees of freedom);
* ``sd``: the seeds' sample standard deviation of the difference, from which the minimum detectable effect
  and the number of seeds a design needs follow (``minimum_detectable_effect``, ``seeds_needed``);
* ``query_p``: the older query-level paired permutation test (spcreid.report.query_level), kept as a labelled
  secondary column: it treats queries as the unit and says nothing about other seeds.

Multiplicity: ``holm`` adjusts a family's p-values (each table's comparisons form one family per metric and
gallery mode), and ``interval`` gives the Bonferroni-adjusted bootstrap interval of the same family, which the
verdict reads (docs/EVALUATION.md, "Statistics").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from spcreid.errors import SpcreidError
from spcreid.report.query_level import BATCH, CONFIDENCE, RESAMPLES, sign_flip_p

POWER = 0.8
ALPHA = 1 - CONFIDENCE


@dataclass(frozen=True, eq=False)
class SeedLevelResult:
    diff: float
    low: float
    high: float
    p: float | None  # None with one seed: a t-test needs two
    sd: float | None
    seeds: int
    queries: int
    query_p: float
    boot: np.ndarray = field(repr=False)

    def interval(self, confidence: float) -> tuple[float, float]:
        """The two-stage bootstrap percentile interval at ``confidence`` (e.g. Bonferroni's 1 - 0.05 / m)."""
        tail = 100 * (1 - confidence) / 2
        low, high = np.percentile(self.boot, [tail, 100 - tail])
        return float(low), float(high)


def seed_level_test(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    resamples: int = RESAMPLES,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> SeedLevelResult:
    """``pairs``: one (row, reference) pair of query-aligned per-query score arrays per seed."""
    if not pairs:
        raise SpcreidError("a paired test needs at least one seed with per-query results")
    diffs = [np.asarray(x, dtype=float) - np.asarray(y, dtype=float) for x, y in pairs]
    if any(d.ndim != 1 or d.size == 0 for d in diffs):
        raise SpcreidError("a paired test needs non-empty 1-D per-query arrays per seed")
    rng = np.random.default_rng(seed)
    seed_means = np.array([d.mean() for d in diffs])
    n = seed_means.size
    # Stage 2 first: per seed, `resamples` query-bootstrap means; stage 1 then draws, for every replicate, n seeds
    # with replacement and for each drawn seed one of its query replicates at random (an independent query
    # resample even when a seed is drawn twice).
    within = np.empty((n, resamples))
    for s, d in enumerate(diffs):
        for start in range(0, resamples, BATCH):
            count = min(BATCH, resamples - start)
            within[s, start : start + count] = d[rng.integers(0, d.size, size=(count, d.size))].mean(axis=1)
    drawn_seeds = rng.integers(0, n, size=(resamples, n))
    drawn_replicates = rng.integers(0, resamples, size=(resamples, n))
    boot = within[drawn_seeds, drawn_replicates].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(boot, [tail, 100 - tail])

    # The secondary, query-level test, exactly as before (weights: seeds count equally).
    weights = np.concatenate([np.full(d.size, 1.0 / (d.size * n)) for d in diffs])
    query_p = sign_flip_p(weights * np.concatenate(diffs), resamples, np.random.default_rng(seed))
    sd = float(seed_means.std(ddof=1)) if n > 1 else None
    return SeedLevelResult(
        diff=float(seed_means.mean()),
        low=float(low),
        high=float(high),
        p=paired_t_p(seed_means),
        sd=sd,
        seeds=n,
        queries=int(sum(d.size for d in diffs)),
        query_p=query_p,
        boot=boot,
    )


@dataclass(frozen=True)
class FamilyAdjusted:
    """One comparison's figures after the adjustment over its family."""

    p_holm: float | None
    low: float  # two-stage bootstrap interval at the Bonferroni level 1 - alpha / m
    high: float
    mde: float | None  # minimum detectable effect at that level
    size: int  # m: the comparisons in the family


def adjust_family(results: Sequence[SeedLevelResult | None], alpha: float = ALPHA) -> list[FamilyAdjusted | None]:
    """Holm over the family's p-values, and the interval and MDE at the Bonferroni level of the same family.

    The tables (a table's compared rows) and the verdict (a family of claims) both read their adjusted figures from
    here; None entries (no runs) are not members and stay None.
    """
    size = sum(result is not None for result in results)
    adjusted_p = holm([result.p if result is not None else None for result in results])
    adjusted: list[FamilyAdjusted | None] = []
    for result, p_holm in zip(results, adjusted_p):
        if result is None:
            adjusted.append(None)
            continue
        low, high = result.interval(1 - alpha / size)
        mde = minimum_detectable_effect(result.sd, result.seeds, alpha / size) if result.sd is not None else None
        adjusted.append(FamilyAdjusted(p_holm, low, high, mde, size))
    return adjusted


def paired_t_p(differences: np.ndarray) -> float | None:
    """Two-sided p of the one-sample t-test of the seed differences against 0 (None for fewer than 2)."""
    from scipy import stats

    differences = np.asarray(differences, dtype=float)
    if differences.size < 2:
        return None
    mean, sd = float(differences.mean()), float(differences.std(ddof=1))
    if sd == 0.0:
        return 1.0 if mean == 0.0 else 0.0  # every seed moved by exactly the same amount
    t = mean / (sd / math.sqrt(differences.size))
    return float(2 * stats.t.sf(abs(t), differences.size - 1))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of one family (None entries are not tests and stay None)."""
    indexed = [(p, i) for i, p in enumerate(pvalues) if p is not None]
    m = len(indexed)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(indexed)):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def minimum_detectable_effect(sd: float, seeds: int, alpha: float = 0.05, power: float = POWER) -> float | None:
    """The smallest true mean difference a two-sided paired t-test over ``seeds`` detects with ``power``.

    Exact, from the noncentral t distribution (not the normal approximation, which is optimistic at few seeds).
    """
    from scipy import optimize, stats

    if seeds < 2 or sd is None or not math.isfinite(sd):
        return None
    if sd == 0.0:
        return 0.0
    df = seeds - 1
    critical = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(effect: float) -> float:
        shift = effect / (sd / math.sqrt(seeds))
        # scipy's noncentral t returns NaN far in its tails (df 1, large shifts): there the upper tail is 1 and
        # the lower one 0 to double precision.
        upper, lower = float(stats.nct.sf(critical, df, shift)), float(stats.nct.cdf(-critical, df, shift))
        return (upper if math.isfinite(upper) else 1.0) + (lower if math.isfinite(lower) else 0.0) - power

    high = sd
    while shortfall(high) < 0:
        high *= 2
    return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-6))


def seeds_needed(sd: float, effect: float, alpha: float = 0.05, power: float = POWER, most: int = 200) -> int | None:
    """The fewest seeds at which ``effect`` is detectable with ``power`` (None if more than ``most``)."""
    for seeds in range(2, most + 1):
        mde = minimum_detectable_effect(sd, seeds, alpha, power)
        if mde is not None and mde <= effect:
            return seeds
    return None
