"""Hostile inputs to `spcreid evaluate-dist` (.npz files) and `spcreid make-tables` (metrics files).

Each probe asserts one error line naming the file and the key or field, exit status 2, and no output
(--out JSON, table folder) written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hostile_helpers import assert_refused, spcreid

REPO = Path(__file__).resolve().parents[1]


def labels(nq=3, ng=4):
    return {
        "q_pids": np.array([1, 2, 3][:nq]),
        "g_pids": np.array([1, 2, 3, 4][:ng]),
        "q_camids": np.zeros(nq, dtype=np.int64),
        "g_camids": np.ones(ng, dtype=np.int64),
    }


def valid(**changes):
    arrays = {"distmat": np.arange(12, dtype=np.float32).reshape(3, 4), **labels()}
    arrays.update(changes)
    return {key: value for key, value in arrays.items() if value is not None}


NAN_DIST = np.arange(12, dtype=np.float64).reshape(3, 4)
NAN_DIST[1, 2] = np.nan
INF_FEATURES = np.ones((3, 8), dtype=np.float32)
INF_FEATURES[0, 0] = np.inf

NPZ_PROBES = {
    # probe: (arrays to save, extra arguments, fragments of the error line)
    "float pids": (valid(q_pids=np.array([1.0, 2.0, 3.5])), [], ["q_pids has dtype float64", "astype(numpy.int64)"]),
    "string pids": (valid(g_pids=np.array(["1", "2", "3", "4"])), [], ["g_pids has dtype <U1", "must be integers"]),
    "float camera ids": (valid(q_camids=np.zeros(3)), [], ["q_camids has dtype float64"]),
    "NaN in the distance matrix": (valid(distmat=NAN_DIST), [], ["1 NaN/inf entries", "query 1, gallery 2"]),
    "inf in the query features": (
        {"qf": INF_FEATURES, "gf": np.ones((4, 8), dtype=np.float32), **labels()},
        [],
        ["qf contains NaN or inf"],
    ),
    "feature dimensions differ": (
        {"qf": np.ones((3, 8)), "gf": np.ones((4, 6)), **labels()},
        [],
        ["qf has 8-d features but gf has 6-d"],
    ),
    "labels shorter than the matrix": (valid(g_pids=np.array([1, 2, 3])), [], ["g_pids has 3 entries", "4 columns"]),
    "2-d pids": (valid(q_pids=np.array([[1, 2, 3]])), [], ["q_pids must be a 1-d array, got shape (1, 3)"]),
    "1-d distance matrix": (valid(distmat=np.ones(12)), [], ["(n_query, n_gallery) array, got shape (12,)"]),
    "complex distance matrix": (valid(distmat=np.ones((3, 4), dtype=complex)), [], ["must hold real numbers"]),
    "pickled objects": (
        valid(q_pids=np.array([1, "a", None], dtype=object)),
        [],
        ["key 'q_pids' holds Python objects"],
    ),
    "missing label key": (valid(g_camids=None), [], ["missing key(s) ['g_camids']"]),
    "clothes ids missing for the cc setting": (
        valid(),
        ["--setting", "cc"],
        ["missing key(s) ['q_clothes', 'g_clothes']"],
    ),
}


@pytest.mark.parametrize("probe", sorted(NPZ_PROBES))
def test_bad_npz_is_refused_naming_the_key(probe, tmp_path, capsys):
    arrays, extra, fragments = NPZ_PROBES[probe]
    path = tmp_path / "scores.npz"
    np.savez(path, **arrays)
    out = tmp_path / "metrics.json"
    outcome = spcreid(capsys, "evaluate-dist", path, *extra, "--out", out)
    assert_refused(outcome, "evaluate-dist", path, *fragments)
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["scores.npz"]


def test_float_pids_used_to_read_as_no_positive_gallery_image(tmp_path, capsys):
    # Defect 10: float ids of values that never compare equal (0.1 + 0.2 vs 0.3) gave a misleading message.
    path = tmp_path / "scores.npz"
    np.savez(path, **valid(q_pids=np.array([0.1 + 0.2, 2.0, 3.0]), g_pids=np.array([0.3, 2.5, 3.5, 4.0])))
    line = assert_refused(spcreid(capsys, "evaluate-dist", path), "evaluate-dist", "q_pids has dtype float64")
    assert "positive gallery" not in line


@pytest.mark.parametrize("content", [b"not a zip", None])
def test_unreadable_or_missing_npz(content, tmp_path, capsys):
    path = tmp_path / "scores.npz"
    if content is not None:
        path.write_bytes(content)
    outcome = spcreid(capsys, "evaluate-dist", path)
    line = outcome.error("evaluate-dist")
    assert outcome.code == 2 and str(path) in line


# ---------------------------------------------------------------------------- make-tables


@pytest.fixture
def metrics_dir(tmp_path):
    """Every run's metrics file of the repository's params, as `spcreid evaluate` writes them, to spoil one of."""
    from spcreid.config.experiments import load_params
    from test_tables import write_all_runs

    write_all_runs(tmp_path / "metrics", load_params(REPO / "params.yaml"))
    return tmp_path / "metrics"


SPOILED = "prcc/full_eps0.3/seed1.json"


def spoil_value(value):
    def spoil(metrics: dict) -> None:
        metrics["cc"]["rank1"] = value

    return spoil


METRICS_PROBES = {
    # probe: (edit of the parsed metrics, or raw text; fragment of the error line)
    "NaN rank1": (spoil_value(float("nan")), "setting 'cc' (multi) has rank1 = nan, not a fraction in [0, 1]"),
    "null rank1": (spoil_value(None), "has rank1 = None"),
    "rank1 as a string": (spoil_value("0.5"), "has rank1 = '0.5'"),
    "rank1 in percent, not a fraction": (spoil_value(51.0), "has rank1 = 51.0, not a fraction in [0, 1]"),
    "infinite rank1": (spoil_value(float("inf")), "has rank1 = inf"),
    "truncated JSON": ('{"cc": {"rank1": 0.', "is not valid JSON"),
    "setting missing": (lambda m: [m.pop("cc"), m["settings"].pop("cc")], "has no setting 'cc'"),
}


def write_spoiled(path: Path, spoil) -> None:
    if isinstance(spoil, str):
        path.write_text(spoil)
        return
    metrics = json.loads(path.read_text())
    spoil(metrics)
    path.write_text(json.dumps(metrics))  # json writes NaN/Infinity, as a NumPy float would


@pytest.mark.parametrize("probe", sorted(METRICS_PROBES))
def test_unusable_metrics_stop_the_tables(probe, metrics_dir, tmp_path, capsys):
    spoil, fragment = METRICS_PROBES[probe]
    write_spoiled(metrics_dir / SPOILED, spoil)
    out = tmp_path / "tables"
    outcome = spcreid(
        capsys,
        "make-tables",
        "--params",
        REPO / "params.yaml",
        "--metrics-dir",
        metrics_dir,
        "--paper-dir",
        REPO / "results/published",
        "--out",
        out,
    )
    assert_refused(outcome, "make-tables", metrics_dir / SPOILED, fragment)
    assert not out.exists()


def test_nan_metrics_leave_a_blank_cell_only_with_allow_missing(metrics_dir, tmp_path, capsys):
    # Defect 6: NaN rank1/mAP used to become a '-' cell with exit status 0.
    write_spoiled(metrics_dir / SPOILED, spoil_value(float("nan")))
    out = tmp_path / "tables"
    outcome = spcreid(
        capsys,
        "make-tables",
        "--params",
        REPO / "params.yaml",
        "--metrics-dir",
        metrics_dir,
        "--paper-dir",
        REPO / "results/published",
        "--out",
        out,
        "--allow-missing",
    )
    assert outcome.code == 0, outcome.err
    assert f"warning: {metrics_dir / SPOILED}: setting 'cc' (multi) has rank1 = nan" in outcome.out
    import pandas as pd

    table = pd.read_csv(out / "table4.csv")
    rows = table[table["eps"].astype(str) == "0.3"]  # table4's cells are PRCC clothing-change
    row = rows[rows["Gallery"].astype(str).str.startswith("multi")].iloc[0]
    # The spoiled seed is left out of the cell; the profile's other seeds still fill it.
    others = sorted((metrics_dir / SPOILED).parent.glob("seed*.json"))
    others = [json.loads(path.read_text()) for path in others if path.name != Path(SPOILED).name]
    assert row["Seeds"] == len(others)
    if others:
        assert row["R1 ours"] == pytest.approx(100 * np.mean([m["cc"]["rank1"] for m in others]), abs=0.05)
    else:
        assert pd.isna(row["R1 ours"])
