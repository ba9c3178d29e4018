"""Reference runs (supervised upper bound, untrained pretrained start) and the pseudo-label monitor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from spcreid.cli import main as spcreid_main
from spcreid.engine.logging import epoch_summary, label_quality, read_epoch_log

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_monitor_values_match_a_hand_computed_example():
    labels = np.array([0, 0, 1, 1, -1, -1])  # two clusters, two outliers
    pids = np.array([1, 1, 2, 2, 3, 3])
    outfits = np.array([10, 10, 11, 12, 13, 13])
    quality = label_quality(labels, pids, outfits)
    # Outliers are singletons: clusters {0,1} {2,3} {4} {5}. Pair counts: agreeing pairs 2, cluster
    # pairs 2, identity pairs 3 of 15: ARI = (2 - 0.4) / (2.5 - 0.4); outfit: (1 - 4/15) / (2 - 4/15).
    assert quality["ari_identity"] == pytest.approx(1.6 / 2.1, abs=1e-4)
    assert quality["ari_outfit"] == pytest.approx((1 - 4 / 15) / (2 - 4 / 15), abs=1e-4)
    # NMI (arithmetic mean): MI = ln 3, H(identity) = ln 3, H(clusters) = 2/3 ln 3 + 1/3 ln 6.
    h_clusters = 2 / 3 * np.log(3) + 1 / 3 * np.log(6)
    assert quality["nmi_identity"] == pytest.approx(np.log(3) / ((np.log(3) + h_clusters) / 2), abs=1e-4)
    # Outfits: H(outfit) = H(clusters), MI = 1/3 ln 3 + 4 * 1/6 ln 3 = ln 3.
    assert quality["nmi_outfit"] == pytest.approx(np.log(3) / h_clusters, abs=1e-4)
    # Everything an outlier: no pair agrees, ARI 0, however the truth looks.
    assert label_quality(np.full(6, -1), pids, outfits)["ari_identity"] == pytest.approx(0.0, abs=1e-9)
    assert label_quality(labels, None, None) == {}
    line = epoch_summary(
        {
            "epoch": 2,
            "loss": 1.5,
            "n_clusters": 2,
            "n_outliers": 2,
            "n_images": 6,
            "lr": 0.00035,
            "seconds": 0.5,
            **quality,
        },
        epochs=6,
    )
    assert line == (
        "epoch 2/6: loss 1.500, 2 clusters, 2/6 outliers, ARI id 0.76 outfit 0.42, "
        "NMI id 0.90 outfit 0.83, lr 3.50e-04, 0.5s"
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    assert (
        spcreid_main(
            [
                "make-toy-data",
                "--out",
                str(root / "data"),
                "--seed",
                "5",
                "--identities",
                "8",
                "--images-per-camera",
                "2",
                "--height",
                "64",
                "--width",
                "32",
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        spcreid_main(
            ["prepare-data", "--dataset", "toy", "--root", str(root / "data"), "--out", str(root / "manifest.csv")]
        )
        == 0
    )
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["profile"] = "embedded"
    train = params["profiles"]["embedded"]["train"]
    train.update(height=32, width=16, epochs=2, iters_per_epoch=1, warmup_epochs=1, pretrained=None)
    params["profiles"]["embedded"]["method"].update(k1=6, k2=2)
    params["method"].update(P=4, K=2)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


def test_train_supervised_writes_a_run_that_evaluate_scores_the_same(tiny, capsys):
    run = tiny / "supervised"
    argv = [
        "train-supervised",
        "--params",
        str(tiny / "params.yaml"),
        "--dataset",
        "prcc",
        "--seed",
        "1",
        "--manifest",
        str(tiny / "manifest.csv"),
        "--out",
        str(run),
    ]
    assert spcreid_main(argv) == 0
    assert {p.name for p in run.iterdir()} >= {"config.json", "log.jsonl", "checkpoint.pt", "model.pt", "metrics.json"}
    config = json.loads((run / "config.json").read_text())
    assert config["experiment"] == "supervised" and config["labels"].startswith("identity")
    assert config["method"]["augment"] is False and config["method"]["sampling"] == "none"
    log = read_epoch_log(run / "log.jsonl")
    # Labels are the 4 train identities themselves: the monitor must say so.
    assert [r["n_clusters"] for r in log] == [4, 4] and all(r["n_outliers"] == 0 for r in log)
    assert all(r["ari_identity"] == 1.0 and r["nmi_identity"] == 1.0 for r in log)
    assert all(r["ari_outfit"] < 1.0 for r in log)
    assert "ARI id 1.00" in capsys.readouterr().err
    metrics = json.loads((run / "metrics.json").read_text())
    assert (
        spcreid_main(
            [
                "evaluate",
                "--run",
                str(run),
                "--manifest",
                str(tiny / "manifest.csv"),
                "--protocol",
                "vcclothes",
                "--device",
                "cpu",
                "--out",
                str(tiny / "again.json"),
            ]
        )
        == 0
    )
    again = json.loads((tiny / "again.json").read_text())
    for setting in ("sc", "cc"):
        assert again[setting]["rank1"] == pytest.approx(metrics[setting]["rank1"])
        assert again[setting]["mAP"] == pytest.approx(metrics[setting]["mAP"])


def test_pretrained_start_is_a_zero_epoch_run(tiny):
    run = tiny / "start"
    argv = [
        "pretrained-start",
        "--params",
        str(tiny / "params.yaml"),
        "--dataset",
        "prcc",
        "--manifest",
        str(tiny / "manifest.csv"),
        "--out",
        str(run),
    ]
    assert spcreid_main(argv) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["epochs"] == 0 and config["experiment"] == "pretrained-start"
    metrics = json.loads((run / "metrics.json").read_text())
    assert (
        spcreid_main(
            [
                "evaluate",
                "--run",
                str(run),
                "--manifest",
                str(tiny / "manifest.csv"),
                "--protocol",
                "vcclothes",
                "--device",
                "cpu",
                "--out",
                str(tiny / "start.json"),
            ]
        )
        == 0
    )
    assert json.loads((tiny / "start.json").read_text())["cc"]["rank1"] == pytest.approx(metrics["cc"]["rank1"])


def test_pretrained_start_scores_another_trunk_given_with_pretrained(tiny, capsys):
    """The classifier oracle's path: an identity-trained trunk scored by pretrained-start --pretrained."""
    trunk = tiny / "oracle.pth"
    assert (
        spcreid_main(
            [
                "pretrain-backbone",
                "--data",
                str(tiny / "data"),
                "--labels",
                "identity",
                "--split",
                "train",
                "--arch",
                yaml.safe_load((tiny / "params.yaml").read_text())["profiles"]["embedded"]["train"]["arch"],
                "--height",
                "32",
                "--width",
                "16",
                "--epochs",
                "1",
                "--classes-per-batch",
                "4",
                "--images-per-class",
                "2",
                "--threads",
                "1",
                "--out",
                str(trunk),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    base = ["pretrained-start", "--params", str(tiny / "params.yaml"), "--dataset", "prcc"]
    base += ["--manifest", str(tiny / "manifest.csv")]
    assert spcreid_main([*base, "--out", str(tiny / "oracle"), "--pretrained", str(trunk)]) == 0
    config = json.loads((tiny / "oracle" / "config.json").read_text())
    assert config["train"]["pretrained"] == str(trunk)
    assert (tiny / "oracle" / "metrics.json").is_file()
    assert spcreid_main([*base, "--out", str(tiny / "missing"), "--pretrained", str(tiny / "nope.pth")]) == 2
    err = capsys.readouterr().err
    assert "--pretrained" in err and "nope.pth" in err and "Traceback" not in err
    assert not (tiny / "missing").exists()
