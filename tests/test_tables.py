"""Tables and plots from metrics and per-query files written here, checked against hand-computed values."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import statistics

import numpy as np
import pandas as pd
import pytest

from spcreid.cli import main
from spcreid.config.experiments import Run, load_params, reference_runs, runs
from spcreid.errors import SpcreidError
from spcreid.evaluation.metrics_file import config_hash, read_metrics_file, run_identity
from spcreid.evaluation.per_query import load_per_query, per_query_path, save_per_query
from spcreid.report.plots import write_plots
from spcreid.report.query_level import sign_flip_p
from spcreid.report.seed_level import seed_level_test
from spcreid.report.tables import build_table, read_paper_table, write_tables
from workflow_helpers import REPO

N_QUERIES = 10
PAPER = REPO / "results/published"


def hits(n):
    """Per-query rank-1 hits: the first n of the N_QUERIES queries."""
    return (np.arange(N_QUERIES) < n).astype(float)


# (dataset, experiment, seed) -> setting -> (rank-1 hits, AP of every query) for the cells checked by hand.
KNOWN = {
    ("prcc", "baseline", 1): {"cc": (hits(3), 0.25)},
    ("prcc", "baseline", 2): {"cc": (hits(4), 0.27)},
    # Identical per query to the baseline: the paired test must find nothing.
    ("prcc", "ca", 1): {"cc": (hits(3), 0.25)},
    ("prcc", "ca", 2): {"cc": (hits(4), 0.27)},
    # Five more hits than the baseline in each seed, and a higher AP on every query.
    ("prcc", "full", 1): {"cc": (hits(8), 0.36), "sc": (hits(8), 0.70)},
    ("prcc", "full", 2): {"cc": (hits(9), 0.38), "sc": (hits(8), 0.74)},
    ("prcc", "supervised", 1): {"cc": (hits(10), 0.9)},
    ("prcc", "supervised", 2): {"cc": (hits(9), 0.8)},
    ("prcc", "colour-histogram", 0): {"cc": (hits(1), 0.1)},
}
DEFAULT = (hits(5), 0.4)


def write_run(root, run, profile="embedded", layout="modes", single=False, values=None):
    """A metrics JSON and its per-query .npz, consistent with each other, as `spcreid evaluate` writes them.

    layout "modes": every gallery mode under ``settings`` plus the headline's flat keys and the per-query
    file's name; "flat": the older one-mode file, its per-query file at the default name.
    """
    values = values or KNOWN.get((run.dataset, run.experiment, run.seed), {})
    arrays, settings = {}, {}
    for setting in ("general", "sc", "cc"):
        rank1, ap = values.get(setting, DEFAULT)
        # A miss is a first positive at rank 3; one more query without any positive, left out everywhere.
        arrays[f"{setting}/query_row"] = np.arange(100, 101 + N_QUERIES)
        arrays[f"{setting}/multi/first_rank"] = np.append(np.where(rank1 == 1, 1, 3), 0)
        arrays[f"{setting}/multi/ap"] = np.append(np.full(N_QUERIES, float(ap)), 0.0)
        modes = {"multi": {"rank1": float(rank1.mean()), "mAP": float(ap), "gallery_mode": "multi"}}
        if single:
            # Single-shot: 10 trials; half the queries hit in every trial; AP 0.6 throughout (mAP > R1).
            trial = np.append(np.where(hits(5) == 1, 1, 2), 0)
            arrays[f"{setting}/single/first_rank"] = np.tile(trial, (10, 1))
            arrays[f"{setting}/single/ap"] = np.tile(np.append(np.full(N_QUERIES, 0.6), 0.0), (10, 1))
            modes["single"] = {
                "rank1": 0.5,
                "rank1_std": 0.05,
                "mAP": 0.6,
                "mAP_std": 0.04,
                "trials": 10,
                "gallery_mode": "single",
            }
            # single-cmc (single-shot CMC, multi-shot mAP) is stored too but has no row of its own.
            modes["single-cmc"] = {"rank1": 0.5, "mAP": float(ap), "trials": 10, "gallery_mode": "single-cmc"}
            arrays[f"{setting}/single-cmc/first_rank"] = arrays[f"{setting}/single/first_rank"]
            arrays[f"{setting}/single-cmc/ap"] = arrays[f"{setting}/multi/ap"]
        settings[setting] = modes
    identity = {
        "profile": profile,
        "dataset": run.dataset,
        "experiment": run.experiment,
        "seed": run.seed,
        "config_hash": "0" * 64,
    }
    headline = {setting: modes["multi"] for setting, modes in settings.items()}
    path = root / run.dataset / run.experiment / f"seed{run.seed}.json"
    if layout == "modes":
        payload = {
            **identity,
            **headline,
            "settings": settings,
            "headline_gallery_mode": "multi",
            "gallery_modes": list(settings["cc"]),
            "per_query": f"seed{run.seed}.per_query.npz",
        }
    else:
        payload = {**identity, **headline}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))
    save_per_query(per_query_path(path), arrays)
    return path


def write_all_runs(root, params, **kwargs):
    for run in [*runs(params), *reference_runs(params)]:
        write_run(root, run, **kwargs)


@pytest.fixture
def params():
    p = load_params(REPO / "params.yaml")
    p["profiles"]["embedded"]["seeds"] = [1, 2]
    return p


@pytest.fixture
def metrics_dir(tmp_path, params):
    write_all_runs(tmp_path / "metrics", params)
    return tmp_path / "metrics"


def row(frame, name, column="Method", source="ours"):
    return frame[(frame[column] == name) & (frame["Source"] == source)].iloc[0]


# ---- Per-query files and the paired test ------------------------------------------------------------------------


def test_per_query_file_multi_and_single_shot_by_hand(tmp_path):
    arrays = {
        "cc/query_row": np.array([4, 5, 6, 7]),
        "cc/query_path": np.array(["q4.jpg", "q5.jpg", "q6.jpg", "q7.jpg"]),
        # first_rank 0: no positive (left out); 1: rank-1 hit.
        "cc/multi/first_rank": np.array([1, 0, 3, 1]),
        "cc/multi/ap": np.array([1.0, 0.0, 0.5, 0.8]),
        # Three trials. Query 4: hit, miss, no positive -> 1/2; query 5: never a positive -> left out;
        # query 6: no hit; query 7: rank 1 in two of three.
        "cc/single/first_rank": np.array([[1, 0, 2, 1], [2, 0, 3, 1], [0, 0, 2, 4]]),
        "cc/single/ap": np.array([[1.0, 0.0, 0.5, 1.0], [0.5, 0.0, 0.4, 1.0], [0.0, 0.0, 0.3, 0.25]]),
        # single-cmc: trial ranks, full-gallery AP.
        "cc/single-cmc/first_rank": np.array([[1, 0, 2, 1], [2, 0, 3, 1], [0, 0, 2, 4]]),
        "cc/single-cmc/ap": np.array([1.0, 0.0, 0.5, 0.8]),
    }
    path = tmp_path / "seed1.per_query.npz"
    save_per_query(path, arrays)
    loaded = load_per_query(path)["cc"]
    multi, single, cmc = loaded["multi"], loaded["single"], loaded["single-cmc"]
    assert multi.query_index.tolist() == [4, 6, 7] and multi.rank1.tolist() == [1.0, 0.0, 1.0]
    assert multi.ap.tolist() == [1.0, 0.5, 0.8]
    assert single.query_index.tolist() == [4, 6, 7]
    assert single.rank1.tolist() == pytest.approx([0.5, 0.0, 2 / 3])
    assert single.ap.tolist() == pytest.approx([0.75, 0.4, 0.75])
    assert cmc.rank1.tolist() == pytest.approx([0.5, 0.0, 2 / 3]) and cmc.ap.tolist() == pytest.approx([1.0, 0.5, 0.8])
    assert per_query_path(tmp_path / "m" / "seed3.json") == tmp_path / "m" / "seed3.per_query.npz"
    assert per_query_path(tmp_path / "seed3.json", "elsewhere.npz") == tmp_path / "elsewhere.npz"


def test_per_query_file_stores_query_paths_relative_to_its_folder(tmp_path):
    """Two checkouts in different places write the same bytes: no absolute path leaks into results."""
    written = []
    for checkout in (tmp_path / "clone-a", tmp_path / "deeper" / "clone-b"):
        arrays = {
            "cc/query_row": np.array([0, 1]),
            "cc/query_path": np.array([str(checkout / "data/toy/q0.jpg"), str(checkout / "data/toy/q1.jpg")]),
            "cc/multi/first_rank": np.array([1, 2]),
            "cc/multi/ap": np.array([1.0, 0.5]),
        }
        path = checkout / "results/metrics/seed1.per_query.npz"
        path.parent.mkdir(parents=True)
        save_per_query(path, arrays)
        with np.load(path) as archive:
            assert archive["cc/query_path"].tolist() == ["../../data/toy/q0.jpg", "../../data/toy/q1.jpg"]
        written.append(path.read_bytes())
    assert written[0] == written[1]


def test_committed_per_query_files_hold_no_absolute_paths():
    committed = sorted((REPO / "results").glob("*/metrics/**/*.per_query.npz"))
    assert committed, "the embedded profile's results are committed"
    for path in committed:
        with np.load(path) as archive:
            paths = [p for key in archive.files if key.endswith("/query_path") for p in archive[key].tolist()]
        assert paths and not any(os.path.isabs(p) for p in paths), path


def test_bad_per_query_files_are_refused(tmp_path):
    with pytest.raises(SpcreidError, match=r"x\.npz \[cc/multi\]: query_index repeats"):
        save_per_query(
            tmp_path / "x.npz",
            {"cc/query_row": np.array([1, 1]), "cc/multi/first_rank": np.array([1, 1]), "cc/multi/ap": np.ones(2)},
        )
    with pytest.raises(SpcreidError, match=r"ap must be finite fractions"):
        save_per_query(
            tmp_path / "x.npz",
            {
                "cc/query_row": np.array([1, 2]),
                "cc/multi/first_rank": np.array([1, 1]),
                "cc/multi/ap": np.array([np.nan, 1.0]),
            },
        )
    with pytest.raises(SpcreidError, match=r"'cc/query_row' is missing"):
        save_per_query(tmp_path / "x.npz", {"cc/multi/first_rank": np.array([1]), "cc/multi/ap": np.ones(1)})
    assert not (tmp_path / "x.npz").exists()
    (tmp_path / "y.npz").write_bytes(b"not a zip")
    with pytest.raises(SpcreidError, match=r"y\.npz is not a readable per-query"):
        load_per_query(tmp_path / "y.npz")


def test_query_level_test_by_hand():
    # Four pairs, each +1: 16 equally likely swaps, |mean| >= 1 only for all-swapped or none: p = 2/16.
    result = seed_level_test([(np.ones(4), np.zeros(4))])
    assert result.diff == 1.0 and result.query_p == pytest.approx(0.125) and (result.low, result.high) == (1.0, 1.0)
    same = seed_level_test([(np.array([1.0, 0.0, 1.0]), np.array([1.0, 0.0, 1.0]))] * 3)
    assert same.diff == 0.0 and same.query_p == 1.0 and same.p == 1.0 and same.low <= 0.0 <= same.high
    # Seeds weigh equally whatever their query counts: (1 + 0) / 2, not 2 / 6.
    mixed = seed_level_test([(np.ones(2), np.zeros(2)), (np.zeros(4), np.zeros(4))])
    assert mixed.diff == pytest.approx(0.5) and mixed.seeds == 2 and mixed.queries == 6
    # Deterministic for a seed.
    noisy = [(np.random.default_rng(s).random(50), np.random.default_rng(s + 9).random(50)) for s in range(3)]
    a, b = seed_level_test(noisy, seed=4), seed_level_test(noisy, seed=4)
    assert (a.low, a.high, a.p, a.query_p) == (b.low, b.high, b.p, b.query_p)


def test_sign_flip_p_matches_scipys_paired_permutation_test():
    from scipy.stats import permutation_test

    def scipy_p(terms, resamples, seed):
        return permutation_test(
            (terms, np.zeros_like(terms)),
            lambda a, b, axis=-1: np.sum(a - b, axis=axis),
            permutation_type="samples",
            vectorized=True,
            n_resamples=resamples,
            rng=np.random.default_rng(seed),
        ).pvalue

    rng = np.random.default_rng(7)
    # Exact: 10 terms, 1024 patterns, both enumerate them all; zeros change nothing.
    exact = np.concatenate([rng.normal(0.3, 1.0, 10), np.zeros(5)])
    assert sign_flip_p(exact[:10], 9999, rng) == pytest.approx(scipy_p(exact[:10], 9999, 0), abs=1e-12)
    assert sign_flip_p(exact, 9999, rng) == pytest.approx(scipy_p(exact[:10], 9999, 0), abs=1e-12)
    # Random: 300 rank-1 differences in {-1, 0, 1} with a small shift, 9999 draws each: the two Monte
    # Carlo estimates of p agree within their sampling error (sd about 0.003 at p = 0.05).
    shifted = rng.choice([-1.0, 0.0, 1.0], size=300, p=[0.12, 0.7, 0.18])
    ours, theirs = sign_flip_p(shifted, 9999, np.random.default_rng(1)), scipy_p(shifted, 9999, 2)
    assert 0.005 < theirs < 0.3 and abs(ours - theirs) < 0.015
    # No difference at all, or one that no flip can beat.
    assert sign_flip_p(np.zeros(6), 9999, rng) == 1.0
    assert sign_flip_p(np.ones(200), 9999, np.random.default_rng(0)) == pytest.approx(2 / 10000)


# ---- Tables ----------------------------------------------------------------------------------------------------


def test_ablation_table_mean_std_paper_diff_and_paired_tests(params, metrics_dir):
    frame = build_table(params, "table2", metrics_dir, PAPER)
    baseline = row(frame, "Baseline")
    assert baseline["R1 ours"] == pytest.approx(35.0)  # mean of 30 and 40 %
    assert baseline["R1 ours std"] == pytest.approx(statistics.stdev([30.0, 40.0]))
    assert baseline["R1 paper"] == pytest.approx(29.6) and baseline["R1 diff"] == pytest.approx(35.0 - 29.6)
    assert baseline["mAP ours"] == pytest.approx(26.0) and baseline["mAP diff"] == pytest.approx(26.0 - 27.4)
    assert baseline["Seeds"] == 2 and baseline["Compared"] == "reference row" and pd.isna(baseline["R1 p"])
    assert (baseline["Profile"], baseline["Dataset"], baseline["Setting"], baseline["Gallery"]) == (
        "embedded",
        "prcc",
        "cc",
        "multi-shot",
    )

    same = row(frame, "+Ca")
    assert same["R1 vs ref"] == 0.0 and same["R1 p"] == 1.0 and same["R1 vs ref low"] <= 0 <= same["R1 vs ref high"]
    assert same["mAP p"] == 1.0

    full = row(frame, "+Ca+Ci+Cs (Sync-Person-Cloud)")
    assert full["R1 ours"] == pytest.approx(85.0) and full["R1 diff"] == pytest.approx(85.0 - 43.7)
    # 5 of 10 queries gain a hit in each seed: +50 points; all ten nonzero pairs point the same way.
    assert full["R1 vs ref"] == pytest.approx(50.0) and full["R1 p"] < 0.01
    assert 0 < full["R1 vs ref low"] <= 50.0 <= full["R1 vs ref high"] <= 100.0
    assert full["mAP vs ref"] == pytest.approx(11.0) and full["mAP p"] < 0.001
    assert full["Compared"] == "2 seeds x 10 queries"
    assert (full["Ca"], full["Ci"], full["Cs"]) == ("✓", "✓", "✓")
    assert (baseline["Ca"], baseline["Ci"], baseline["Cs"]) == ("", "", "")


def test_reference_rows_form_their_own_labelled_block(params, metrics_dir):
    frame = build_table(params, "table3", metrics_dir, PAPER)
    assert frame["Source"].tolist() == ["ours"] * 4 + ["reference: upper bound"] + ["reference: lower bound"] * 2
    oracle = row(
        frame,
        "Supervised oracle (true identity labels, same backbone and budget)",
        "Sampling",
        "reference: upper bound",
    )
    assert oracle["R1 ours"] == pytest.approx(95.0) and oracle["R1 ours std"] == pytest.approx(math.sqrt(50))
    assert pd.isna(oracle["R1 paper"]) and pd.isna(oracle["R1 p"])
    histogram = row(frame, "Colour histogram", "Sampling", "reference: lower bound")
    # Deterministic: one run, seed 0, no spread.
    assert histogram["R1 ours"] == pytest.approx(10.0) and pd.isna(histogram["R1 ours std"])
    assert histogram["Seeds"] == 1
    # Table 1 spans two datasets and settings: one reference row each.
    table1 = build_table(params, "table1", metrics_dir, PAPER)
    oracle_rows = table1[table1["Source"] == "reference: upper bound"]
    assert sorted(zip(oracle_rows["Dataset"], oracle_rows["Setting"])) == [
        ("prcc", "cc"),
        ("prcc", "sc"),
        ("vcclothes", "cc"),
        ("vcclothes", "sc"),
    ]


def test_table1_quotes_literature_without_ours(params, metrics_dir):
    frame = build_table(params, "table1", metrics_dir, PAPER)
    quoted = frame[frame["Source"] == "quoted"]
    assert len(quoted) == (read_paper_table(PAPER, "table1")["source"] == "quoted").sum()
    assert quoted["R1 ours"].isna().all() and quoted["R1 diff"].isna().all()
    sgps = quoted[(quoted["Method"].str.startswith("SGPS")) & (quoted["Setting"] == "cc")].iloc[0]
    assert sgps["R1 paper"] == pytest.approx(65.8) and sgps["mAP paper"] == pytest.approx(61.2)
    ours = frame[frame["Source"] == "ours"]
    assert len(ours) == 4
    prcc_sc = ours[(ours["Dataset"] == "prcc") & (ours["Setting"] == "sc")].iloc[0]
    assert prcc_sc["R1 ours"] == pytest.approx(80.0)
    assert prcc_sc["R1 diff"] == pytest.approx(80.0 - 87.4) and prcc_sc["mAP diff"] == pytest.approx(72.0 - 82.1)


def test_prcc_multi_and_single_shot_rows_headline_is_multi(params, tmp_path):
    root = tmp_path / "metrics"
    for run in [*runs(params), *reference_runs(params)]:
        write_run(root, run, layout="modes", single=run.dataset == "prcc")
    frame = build_table(params, "table1", root, PAPER)
    prcc_cc = frame[(frame["Source"] == "ours") & (frame["Dataset"] == "prcc") & (frame["Setting"] == "cc")]
    assert prcc_cc["Gallery"].tolist() == ["multi-shot", "single-shot (10 trials)"]
    multi, single = prcc_cc.iloc[0], prcc_cc.iloc[1]
    # The headline (compared with the paper) is multi-shot, whose R1 > mAP relation matches the paper.
    assert multi["R1 ours"] == pytest.approx(85.0) and multi["R1 diff"] == pytest.approx(85.0 - 43.7)
    assert single["R1 ours"] == pytest.approx(50.0) and single["mAP ours"] == pytest.approx(60.0)
    assert pd.isna(single["R1 paper"]) and single["R1 trials std"] == pytest.approx(5.0)
    # Rows in the headline mode come first, the single-shot rows after them.
    assert frame[frame["Source"] == "ours"]["Gallery"].tolist() == ["multi-shot"] * 4 + ["single-shot (10 trials)"] * 2
    # The reference rows stay in one block per bound, each with its multi-shot rows first.
    refs = frame[frame["Source"].str.startswith("reference")]
    assert (
        list(zip(refs["Source"], refs["Gallery"], refs["Method"].str[:10]))
        == [("reference: upper bound", "multi-shot", "Supervised")] * 4
        + [("reference: upper bound", "single-shot (10 trials)", "Supervised")] * 2
        + [("reference: lower bound", "multi-shot", "Pretrained")] * 4
        + [("reference: lower bound", "multi-shot", "Colour his")] * 4
        + [("reference: lower bound", "single-shot (10 trials)", "Pretrained")] * 2
        + [("reference: lower bound", "single-shot (10 trials)", "Colour his")] * 2
    )
    # Paired tests run within a gallery mode: single-shot rows against the single-shot reference row.
    table2 = build_table(params, "table2", root, PAPER)
    singles = table2[(table2["Source"] == "ours") & (table2["Gallery"] != "multi-shot")]
    assert len(singles) == 6 and (singles.loc[singles["Method"] != "Baseline", "R1 p"] == 1.0).all()


def test_single_seed_has_no_std(params, metrics_dir):
    params["profiles"]["embedded"]["seeds"] = [1]
    frame = build_table(params, "table3", metrics_dir, PAPER)
    both = row(frame, "Both", "Sampling")
    assert both["R1 ours"] == pytest.approx(80.0) and pd.isna(both["R1 ours std"])


def test_written_files_csv_markdown_booktabs_html_and_summary(params, metrics_dir, tmp_path):
    out = tmp_path / "tables"
    write_tables(params, metrics_dir, PAPER, out)
    for table in ("table1", "table2", "table3", "table4"):
        for fmt in ("csv", "md", "tex", "html"):
            assert (out / f"{table}.{fmt}").stat().st_size > 0
    csv = pd.read_csv(out / "table2.csv")
    assert list(csv.columns[:9]) == ["Method", "Ca", "Ci", "Cs", "Profile", "Source", "Dataset", "Setting", "Gallery"]
    assert set(csv["Profile"]) == {"embedded"} and set(csv["Dataset"]) == {"prcc"} and set(csv["Setting"]) == {"cc"}
    for column in ("R1 ours", "R1 ours std", "R1 paper", "R1 diff", "R1 vs ref", "R1 vs ref low", "R1 p", "mAP p"):
        assert column in csv.columns

    markdown = (out / "table2.md").read_text()
    assert "[profile embedded, seeds 1, 2 (pipeline check at a 48-iteration budget" in markdown
    assert (
        "| Baseline |  |  |  | 35.0 ± 7.1 | 29.6 | +5.4 | ref | ref | ref | ref | 26.0 ± 1.4 | 27.4 | -1.4 | ref |"
        in markdown
    )
    # Identical runs: no difference, p 1 before and after Holm; zero seed-to-seed spread, so any effect is detectable.
    assert "| +Ca | ✓ |  |  | 35.0 ± 7.1 | 30.3 | +4.7 | +0.0 [+0.0, +0.0; +0.0, +0.0] | 1.000 (1.000) | 0.0 |" in (
        markdown
    )
    # +50 points in both seeds: the seed-level p is 0, the intervals come from resampling the queries of each seed
    # (5 of 10 queries gain a hit); the query-level p is the exact sign-flip 2 / 2**10.
    assert (
        "| +Ca+Ci+Cs (Sync-Person-Cloud) | ✓ | ✓ | ✓ | 85.0 ± 7.1 | 43.7 | +41.3 | +50.0 [+30.0, +70.0; +25.0, +80.0] "
        "| <0.001 (<0.001) | 0.0 | 0.002 |" in markdown
    )
    assert (
        markdown.index("*Ours*")
        < markdown.index("*Reference row, upper bound*")
        < markdown.index("*Reference rows, lower bounds*")
    )
    assert "with the training seed as the unit" in markdown and "query-level p (secondary)" in markdown

    latex = (out / "table2.tex").read_text()
    assert r"\toprule" in latex and r"\bottomrule" in latex and r"\hline" not in latex
    assert r"35.0 $\pm$ 7.1" in latex and r"\checkmark" in latex and r"+Ca+Ci+Cs (Sync-Person-Cloud)" in latex
    assert r"\multicolumn{18}{l}{\textit{Reference rows, lower bounds}} \\" in latex
    assert latex.count(r"\midrule") == 3  # the header rule opens "Ours"; one more per block (upper, lower)
    assert "quoted" in (out / "table1.md").read_text().lower()
    assert "<h4>Reference row, upper bound</h4>" in (out / "table4.html").read_text()

    summary = json.loads((out / "summary.json").read_text())
    # The DVC metrics: headline cells only, mean R1 / mAP to four decimals; spreads and seed counts stay in the CSV.
    assert summary["table4"]["0.4"] == {"prcc_cc": {"R1": 85.0, "mAP": 37.0}}
    # A compared cell also carries its seed-level difference from the table's compare_to row: +50 in both seeds.
    compared = summary["table2"]["+Ca+Ci+Cs (Sync-Person-Cloud)"]["prcc_cc"]
    assert set(compared) == {"R1", "mAP", "R1_vs_ref", "mAP_vs_ref"} and compared["R1_vs_ref"] == 50.0
    assert set(summary["table2"]["Baseline"]["prcc_cc"]) == {"R1", "mAP"}  # the compared-to row itself
    # Reference rows once, not once per table; the single-shot rows of the PRCC cells are not metrics.
    assert summary["references"]["supervised"]["prcc_cc"]["R1"] == pytest.approx(95.0)
    assert set(summary["references"]) == {"supervised", "pretrained-start", "colour-histogram"}
    assert not any(set(summary[table]) & set(summary["references"]) for table in ("table1", "table2", "table3"))
    keys = {key for rows in summary.values() for cells in rows.values() for cell in cells.values() for key in cell}
    assert keys == {"R1", "mAP", "R1_vs_ref", "mAP_vs_ref"}
    verdict = pd.read_csv(out / "verdict.csv").set_index(["Claim", "Metric"])["Verdict"]
    assert verdict["Sync-Person-Cloud beats the baseline", "R1"] == "confirmed"  # +50 in both seeds
    assert verdict["Ca adds to the baseline", "R1"] == "unresolved"  # identical runs
    assert "| components | Sync-Person-Cloud beats the baseline |" in (out / "verdict.md").read_text()
    # Literature rows and the paper's constants are not metrics of this reproduction.
    assert set(summary["table1"]) == {"Sync-Person-Cloud"}
    assert "paper" not in json.dumps(summary)


# ---- Refusals --------------------------------------------------------------------------------------------------


def test_metrics_of_another_profile_are_refused_naming_the_file(params, metrics_dir):
    write_run(metrics_dir, Run("prcc", "ca", 2), profile="paper")
    with pytest.raises(
        SpcreidError,
        match=r"prcc/ca/seed2\.json is a run of profile 'paper', but these tables are "
        r"for profile 'embedded'",
    ):
        build_table(params, "table2", metrics_dir, PAPER)
    # A file that does not say which profile made it cannot be trusted either.
    path = metrics_dir / "prcc/ca/seed2.json"
    data = json.loads(path.read_text())
    del data["profile"]
    path.write_text(json.dumps(data))
    with pytest.raises(SpcreidError, match=r"seed2\.json records no profile"):
        build_table(params, "table2", metrics_dir, PAPER, allow_missing=True)


def test_metrics_of_another_run_are_refused(params, metrics_dir):
    shutil.copy(metrics_dir / "prcc/baseline/seed1.json", metrics_dir / "prcc/ca/seed1.json")
    with pytest.raises(SpcreidError, match=r"ca/seed1\.json records experiment 'baseline' but its path says 'ca'"):
        build_table(params, "table2", metrics_dir, PAPER)


def test_nan_metrics_are_refused_or_left_out_with_allow_missing(params, metrics_dir, capsys):
    path = metrics_dir / "prcc/full/seed2.json"
    data = json.loads(path.read_text())
    # Only the flat (headline) key: it is what the tables read for the multi-shot rows.
    data["cc"]["rank1"] = float("nan")
    path.write_text(json.dumps(data))  # json writes NaN
    with pytest.raises(
        SpcreidError,
        match=r"prcc/full/seed2\.json: setting 'cc' \(multi\) has rank1 = nan, not a "
        r"fraction in \[0, 1\]",
    ):
        build_table(params, "table3", metrics_dir, PAPER)
    frame = build_table(params, "table3", metrics_dir, PAPER, allow_missing=True)
    both = row(frame, "Both", "Sampling")
    assert both["R1 ours"] == pytest.approx(80.0) and both["Seeds"] == 1  # seed 1 alone
    assert "warning: " in capsys.readouterr().out
    for bad in (None, "0.5", 51.0, float("inf"), True):
        data["cc"]["rank1"] = bad
        path.write_text(json.dumps(data))
        with pytest.raises(
            SpcreidError, match=rf"seed2\.json: setting 'cc' \(multi\) has rank1 = {re.escape(repr(bad))},"
        ):
            build_table(params, "table3", metrics_dir, PAPER)


def test_missing_metrics_name_the_file_or_leave_cells_empty(params, metrics_dir):
    (metrics_dir / "prcc/ca/seed2.json").unlink()
    with pytest.raises(SpcreidError, match=r"prcc/ca/seed2\.json not found"):
        build_table(params, "table2", metrics_dir, PAPER)
    shutil.rmtree(metrics_dir / "prcc/ca")
    frame = build_table(params, "table2", metrics_dir, PAPER, allow_missing=True)
    assert pd.isna(row(frame, "+Ca")["R1 ours"]) and pd.isna(row(frame, "+Ca")["R1 p"])


def test_per_query_file_missing_or_disagreeing_is_reported(params, metrics_dir):
    per_query_path(metrics_dir / "prcc/ca/seed1.json").unlink()
    with pytest.raises(SpcreidError, match=r"prcc/ca/seed1\.per_query\.npz not found.*--allow-missing"):
        build_table(params, "table2", metrics_dir, PAPER)
    frame = build_table(params, "table2", metrics_dir, PAPER, allow_missing=True)
    assert pd.isna(row(frame, "+Ca")["R1 p"]) and row(frame, "+Ca")["R1 ours"] == pytest.approx(35.0)
    # A per-query file from another evaluation than its metrics file.
    save_per_query(
        per_query_path(metrics_dir / "prcc/ca/seed1.json"),
        {
            "cc/query_row": np.arange(N_QUERIES),
            "cc/multi/first_rank": np.where(hits(9) == 1, 1, 2),
            "cc/multi/ap": np.full(N_QUERIES, 0.25),
        },
    )
    with pytest.raises(
        SpcreidError,
        match=r"ca/seed1\.per_query\.npz: mean per-query rank1 is 0\.900000 but "
        r"seed1\.json says 0\.300000",
    ):
        build_table(params, "table2", metrics_dir, PAPER)


def test_bad_paper_file_is_reported(params, metrics_dir, tmp_path):
    paper = tmp_path / "paper"
    shutil.copytree(PAPER, paper)
    (paper / "table3.csv").write_text("row,dataset,setting,R1,mAP,source\nBoth,prcc,cc,43.7,39.8,paper\n")
    with pytest.raises(SpcreidError, match=r"table3\.csv: missing column\(s\) \['rank1'\]"):
        build_table(params, "table3", metrics_dir, paper)


def test_metrics_without_the_setting_is_reported(params, metrics_dir):
    path = metrics_dir / "prcc/full/seed1.json"
    data = json.loads(path.read_text())
    del data["cc"], data["settings"]["cc"]
    path.write_text(json.dumps(data))
    with pytest.raises(SpcreidError, match=r"seed1\.json has no setting 'cc'"):
        build_table(params, "table4", metrics_dir, PAPER)


def test_compare_to_must_name_a_row(params):
    from spcreid.config.experiments import check_params

    params["tables"]["table3"]["compare_to"] = "Bothh"
    with pytest.raises(SpcreidError, match=r"tables\.table3\.compare_to 'Bothh' is not one of its rows"):
        check_params(params)


# ---- Metrics files record their run -----------------------------------------------------------------------------


def test_run_identity_and_config_hash(params):
    from spcreid.config.experiments import run_config

    config = run_config(params, Run("prcc", "full", 3))
    identity = run_identity({**config, "inputs": {"manifest": "/somewhere/else.csv"}})
    assert {k: identity[k] for k in ("profile", "dataset", "experiment", "seed")} == {
        "profile": "embedded",
        "dataset": "prcc",
        "experiment": "full",
        "seed": 3,
    }
    # Machine-specific input paths do not change the hash; any resolved setting does.
    assert identity["config_hash"] == config_hash(config) and len(identity["config_hash"]) == 64
    other = run_config(params, Run("prcc", "full_eps0.2", 3))
    assert config_hash(other) != identity["config_hash"]


def test_both_metrics_layouts_are_read(tmp_path, params):
    flat = read_metrics_file(write_run(tmp_path / "a", Run("prcc", "full", 1), layout="flat"))
    modes = read_metrics_file(write_run(tmp_path / "b", Run("prcc", "full", 1), layout="modes", single=True))
    assert flat.modes("cc") == ["multi"] and modes.modes("cc") == ["multi", "single"]
    assert set(modes.results["cc"]) == {"multi", "single", "single-cmc"}
    assert flat.value("cc", "multi", "rank1") == modes.value("cc", "multi", "rank1") == pytest.approx(0.8)
    assert flat.identity["experiment"] == "full" and "profile" not in flat.results
    assert (flat.per_query, modes.per_query) == (None, "seed1.per_query.npz")


# ---- Plots and the command line ---------------------------------------------------------------------------------


def test_plots_png_svg_pdf_titled_with_profile_and_eps_curve(params, metrics_dir, tmp_path):
    out = tmp_path / "plots"
    written = write_plots(params, metrics_dir, PAPER, out)
    stems = ("ablation_components", "ablation_sampling", "eps_curve")
    assert {p.name for p in written} == {f"{s}.{fmt}" for s in stems for fmt in ("png", "svg", "pdf")} | {
        "eps_curve.csv"
    }
    for stem in stems:
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
        svg = (out / f"{stem}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and "profile embedded" in svg
    # The reference rows are drawn, labelled with their values.
    assert (
        "Supervised oracle (true identity labels, same backbone and budget): 95.0"
        in (out / "ablation_components.svg").read_text()
    )
    curve = pd.read_csv(out / "eps_curve.csv")
    # x is the eps each experiment really uses, sorted; the full model (eps 0.4) carries the known values.
    assert curve["eps"].tolist() == [0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert set(curve["profile"]) == {"embedded"} and set(curve["dataset"]) == {"prcc"}
    point = curve[curve["eps"] == 0.4].iloc[0]
    assert point["R1 ours"] == pytest.approx(85.0) and point["R1 paper"] == pytest.approx(43.7)
    # Same numbers, same vector files: no dates or random ids inside.
    before = {fmt: (out / f"eps_curve.{fmt}").read_bytes() for fmt in ("svg", "pdf")}
    write_plots(params, metrics_dir, PAPER, out)
    assert before == {fmt: (out / f"eps_curve.{fmt}").read_bytes() for fmt in ("svg", "pdf")}


def test_cli_make_tables_and_plots(params, tmp_path):
    params_file = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params_file)
    metrics = tmp_path / "metrics"
    write_all_runs(metrics, load_params(params_file))
    common = ["--params", str(params_file), "--metrics-dir", str(metrics), "--paper-dir", str(PAPER)]
    assert main(["make-tables", *common, "--out", str(tmp_path / "t")]) == 0
    assert main(["make-plots", *common, "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "t/table4.md").is_file() and (tmp_path / "p/eps_curve.svg").is_file()
    assert main(["make-tables", *common, "--metrics-dir", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()  # nothing half-written
    write_run(metrics, Run("prcc", "full", 1), profile="paper")
    assert main(["make-tables", *common, "--out", str(tmp_path / "y")]) == 2
    assert main(["make-plots", *common, "--out", str(tmp_path / "y")]) == 2
    assert not (tmp_path / "y").exists()
