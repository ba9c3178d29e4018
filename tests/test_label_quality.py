"""The pseudo-label quality monitor's table and figure, from run folders in the trainer's layout."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from spcreid.cli import main as spcreid_main
from spcreid.errors import SpcreidError
from spcreid.report.label_quality import collect, summarise, write_label_quality


def make_run(root: Path, dataset: str, experiment: str, seed: int, epochs: list[dict], profile="embedded") -> Path:
    """A run folder as `spcreid train` leaves it: config.json and log.jsonl (one JSON record per epoch)."""
    run = root / dataset / experiment / f"seed{seed}"
    run.mkdir(parents=True)
    config = {"profile": profile, "dataset": dataset, "experiment": experiment, "seed": seed, "method": {}}
    (run / "config.json").write_text(json.dumps(config))
    lines = []
    for number, values in enumerate(epochs, start=1):
        record = {"epoch": number, "loss": 1.0, "lr": 3.5e-4, "seconds": 0.5, "n_images": 100, **values}
        lines.append(json.dumps(record))
    (run / "log.jsonl").write_text("\n".join(lines) + "\n")
    return run


def epoch(ari_id, ari_outfit, nmi_id, nmi_outfit, clusters, outliers):
    return {
        "ari_identity": ari_id,
        "ari_outfit": ari_outfit,
        "nmi_identity": nmi_id,
        "nmi_outfit": nmi_outfit,
        "n_clusters": clusters,
        "n_outliers": outliers,
    }


@pytest.fixture
def runs(tmp_path):
    return [
        make_run(tmp_path, "prcc", "full", 1, [epoch(0.2, 0.8, 0.5, 0.9, 10, 20), epoch(0.4, 0.6, 0.6, 0.8, 12, 10)]),
        make_run(tmp_path, "prcc", "full", 2, [epoch(0.4, 0.6, 0.7, 0.7, 14, 40), epoch(0.6, 0.4, 0.8, 0.6, 16, 30)]),
        make_run(tmp_path, "prcc", "baseline", 1, [epoch(0.1, 0.9, 0.4, 0.95, 30, 0)]),
    ]


def test_table_has_one_row_per_run_and_epoch_with_means_and_stds_by_hand(runs):
    frame = collect(runs)
    assert len(frame) == 5
    assert frame[["experiment", "seed", "epoch"]].values.tolist() == [
        ["baseline", 1, 1],
        ["full", 1, 1],
        ["full", 1, 2],
        ["full", 2, 1],
        ["full", 2, 2],
    ]
    summary = summarise(frame).set_index(["experiment", "epoch"])
    first = summary.loc[("full", 1)]
    # Seeds 1 and 2 at epoch 1: ARI id 0.2 and 0.4 -> mean 0.3, sample std |0.2 - 0.4| / sqrt(2).
    assert first["ari_identity mean"] == pytest.approx(0.3)
    assert first["ari_identity std"] == pytest.approx(0.2 / 2**0.5)
    assert first["ari_outfit mean"] == pytest.approx(0.7)
    assert first["nmi_outfit mean"] == pytest.approx(0.8)
    # Outliers 20 and 40 of 100 images.
    assert first["outlier_fraction mean"] == pytest.approx(0.3)
    assert first["n_clusters mean"] == pytest.approx(12) and first["seeds"] == 2
    # One seed: no spread to show.
    assert pd.isna(summary.loc[("baseline", 1), "ari_identity std"])


def test_cli_writes_the_csv_and_the_figure_in_every_format(runs, tmp_path, capsys):
    out = tmp_path / "plots"
    assert spcreid_main(["make-label-quality", "--runs", *map(str, runs), "--out", str(out)]) == 0
    assert "3 runs" in capsys.readouterr().out
    table = pd.read_csv(out / "label_quality.csv")
    assert list(table.columns[:4]) == ["dataset", "experiment", "seed", "epoch"]
    assert table.loc[(table["experiment"] == "full") & (table["seed"] == 2), "ari_identity"].tolist() == [0.4, 0.6]
    for fmt in ("png", "svg", "pdf"):
        assert (out / f"label_quality.{fmt}").stat().st_size > 2000
    svg = (out / "label_quality.svg").read_text()
    assert "prcc / full (2 seeds)" in svg and "ARI vs outfit" in svg and "epoch" in svg
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_same_logs_give_identical_vector_files(runs, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    write_label_quality(runs, one)
    write_label_quality(runs, two)
    for name in ("label_quality.csv", "label_quality.svg", "label_quality.pdf"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_missing_log_names_the_run(runs, tmp_path, capsys):
    (runs[0] / "log.jsonl").unlink()
    assert spcreid_main(["make-label-quality", "--runs", *map(str, runs), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(runs[0] / "log.jsonl") in err and "Traceback" not in err
    assert not (tmp_path / "o" / "label_quality.csv").exists()


def test_log_without_ground_truth_says_what_is_missing(tmp_path):
    run = make_run(tmp_path, "prcc", "full", 1, [{"n_clusters": 3, "n_outliers": 0}])
    with pytest.raises(SpcreidError, match=r"line 1 lacks ari_identity, ari_outfit, nmi_identity, nmi_outfit"):
        collect([run])


def test_empty_or_broken_logs_and_mixed_profiles_are_refused(runs, tmp_path):
    empty = make_run(tmp_path / "e", "prcc", "full", 3, [])
    with pytest.raises(SpcreidError, match="holds no epoch"):
        collect([empty])
    (runs[1] / "log.jsonl").write_text('{"epoch": 1\n')
    with pytest.raises(SpcreidError, match="line 1 is not JSON"):
        collect([runs[1]])
    other = make_run(tmp_path / "p", "prcc", "full", 1, [epoch(0.1, 0.2, 0.3, 0.4, 5, 5)], profile="paper")
    with pytest.raises(SpcreidError, match="several profiles"):
        collect([runs[0], other])
