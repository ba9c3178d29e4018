"""`spcreid evaluate-dist` on real .npz files and `spcreid bench evaluate` on a tiny matrix."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spcreid.cli import main

# Same hand case as test_evaluation_metrics: q0 first hit at rank 2, AP 0.5; q1 rank 1, AP 1;
# q2 has no positive (skipped) -> rank1 0.5, rank5 1.0, mAP 0.75.
HAND_CASE = dict(
    distmat=np.array([[0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [0.5, 0.9, 0.4, 0.3, 0.2, 0.1], [0.6, 0.5, 0.4, 0.3, 0.2, 0.1]]),
    q_pids=np.array([1, 2, 3]), g_pids=np.array([1, 2, 1, 3, 1, 2]),
    q_camids=np.array([0, 1, 0]), g_camids=np.array([0, 1, 1, 0, 2, 2]),
)  # fmt: skip


def run_cli(capsys, *argv):
    code = main(list(map(str, argv)))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_evaluate_dist_prints_metrics_json(tmp_path, capsys):
    path = tmp_path / "scores.npz"
    np.savez(path, **HAND_CASE)
    out_file = tmp_path / "out" / "metrics.json"
    code, out, _ = run_cli(capsys, "evaluate-dist", path, "--out", out_file)
    assert code == 0
    metrics = json.loads(out)
    assert (metrics["rank1"], metrics["rank5"]) == (0.5, 1.0)
    assert metrics["mAP"] == pytest.approx(0.75)
    assert (metrics["n_valid_queries"], metrics["n_skipped_queries"], metrics["source"]) == (2, 1, "distmat")
    assert json.loads(out_file.read_text()) == metrics


def test_evaluate_dist_from_features_with_single_shot(tmp_path, capsys):
    # q0 at 0 deg, gallery: pid 0 at 0 deg and 60 deg, pid 1 at 30 deg, all on another camera.
    # single-shot draws 0 deg (rank 1) or 60 deg (rank 2): AP = 1/2 + rank1/2 in every trial.
    angles = np.deg2rad([0, 60, 30])
    path = tmp_path / "features.npz"
    np.savez(
        path,
        qf=np.array([[1.0, 0.0]]), gf=np.stack([np.cos(angles), np.sin(angles)], axis=1),
        q_pids=[0], g_pids=[0, 0, 1], q_camids=[1], g_camids=[0, 0, 0], q_clothes=[0], g_clothes=[0, 1, 0],
    )  # fmt: skip
    argv = ["evaluate-dist", path, "--gallery-mode", "single", "--trials", "64", "--seed", "5", "--setting", "general"]
    code, out, _ = run_cli(capsys, *argv)
    assert code == 0
    metrics = json.loads(out)
    assert (metrics["gallery_mode"], metrics["trials"], metrics["source"]) == ("single", 64, "qf/gf (cosine)")
    assert 0 < metrics["rank1"] < 1
    assert metrics["mAP"] == pytest.approx(0.5 + metrics["rank1"] / 2)
    assert json.loads(run_cli(capsys, *argv)[1]) == metrics  # same seed, same draws
    # sc: only the same-clothes image (0 deg) is a positive -> rank 1 whenever it is drawn
    code, out, _ = run_cli(capsys, "evaluate-dist", path, "--setting", "sc")
    assert (code, json.loads(out)["rank1"], json.loads(out)["mAP"]) == (0, 1.0, 1.0)


def test_evaluate_dist_names_missing_keys_and_file(tmp_path, capsys):
    path = tmp_path / "partial.npz"
    np.savez(path, **{k: v for k, v in HAND_CASE.items() if k != "g_camids"})
    code, out, err = run_cli(capsys, "evaluate-dist", path)
    assert (code, out) == (2, "")
    assert str(path) in err and "missing key(s) ['g_camids']" in err
    code, _, err = run_cli(capsys, "evaluate-dist", path.with_name("absent.npz"))
    assert code == 2 and "absent.npz does not exist" in err
    code, _, err = run_cli(capsys, "evaluate-dist", path, "--setting", "cc")
    assert code == 2 and "'q_clothes', 'g_clothes'" in err


def test_evaluate_dist_rejects_bad_files(tmp_path, capsys):
    text = tmp_path / "notes.npz"
    text.write_text("not an archive")
    code, _, err = run_cli(capsys, "evaluate-dist", text)
    assert code == 2 and "is not an .npz archive" in err

    pickled = tmp_path / "objects.npz"
    np.savez(pickled, **(HAND_CASE | {"q_pids": np.array(["a", 1, None], dtype=object)}))
    code, _, err = run_cli(capsys, "evaluate-dist", pickled)
    assert code == 2 and "key 'q_pids' holds Python objects" in err

    short = tmp_path / "short.npz"
    np.savez(short, **(HAND_CASE | {"g_pids": np.array([1, 2])}))
    code, _, err = run_cli(capsys, "evaluate-dist", short)
    assert code == 2 and str(short) in err and "g_pids has 2 entries" in err

    nan = tmp_path / "nan.npz"
    np.savez(nan, **(HAND_CASE | {"distmat": np.full((3, 6), np.nan)}))
    code, _, err = run_cli(capsys, "evaluate-dist", nan)
    assert code == 2 and "NaN/inf" in err


def test_bench_evaluate_prints_timings(capsys):
    code, out, _ = run_cli(capsys, "bench", "evaluate", "--nq", 30, "--ng", 200, "--repeats", 2)
    assert code == 0
    report = json.loads(out)
    assert (report["nq"], report["ng"], report["ids"], report["dtype"]) == (30, 200, 10, "float32")
    assert len(report["seconds_all"]) == 2
    assert report["seconds_median"] == pytest.approx(float(np.median(report["seconds_all"])))
    assert 0.0 <= report["mAP"] <= 1.0


def test_evaluate_refuses_a_per_query_file_that_is_not_npz(tmp_path, capsys):
    argv = [
        "evaluate",
        "--run",
        str(tmp_path),
        "--manifest",
        str(tmp_path / "m.csv"),
        "--protocol",
        "prcc",
        "--out",
        str(tmp_path / "m.json"),
        "--per-query",
        str(tmp_path / "q.csv"),
    ]
    assert main(argv) == 2
    assert "must end in .npz" in capsys.readouterr().err and not (tmp_path / "m.json").exists()
