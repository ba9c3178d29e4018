"""Short real training runs on a tiny generated toy dataset (CPU, a few seconds each).

The dataset is built with the project's own commands (make-toy-data, prepare-data, synthesize).
Most runs replace the clustering with the ground-truth train identities ("oracle" pseudo labels)
so that what is tested is the training loop, independent of how well random-init features
cluster; the error-path tests use the real clustering.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import spcreid.clustering
from spcreid.cli import main as spcreid_main
from spcreid.config.experiments import Run, run_config
from spcreid.data.manifest import read_manifest
from spcreid.engine.trainer import train_run
from spcreid.errors import SpcreidError

REPO = Path(__file__).resolve().parents[1]
RUN_FILES = {"config.json", "log.jsonl", "checkpoint.pt", "model.pt", "metrics.json", "per_query.npz"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    commands = [
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
        ],
        ["prepare-data", "--dataset", "toy", "--root", str(root / "data"), "--out", str(root / "manifest.csv")],
        ["synthesize", "--manifest", str(root / "manifest.csv"), "--out", str(root / "synth"), "--copies", "2"],
    ]
    for argv in commands:
        assert spcreid_main(argv) == 0
    frame = read_manifest(root / "manifest.csv")
    train_pids = frame.loc[frame["role"] == "train", "pid"].to_numpy()
    return {"root": root, "manifest": root / "manifest.csv", "synth": root / "synth", "train_pids": train_pids}


@pytest.fixture
def oracle_clusters(monkeypatch, toy):
    """Pseudo labels = the true train identities (4 clusters), whatever the features."""
    calls = []

    def fake_pseudo_labels(features, eps, min_samples=4, k1=30, k2=6, device=None):
        assert features.shape[0] == len(toy["train_pids"])
        calls.append(eps)
        return np.unique(toy["train_pids"], return_inverse=True)[1]

    monkeypatch.setattr(spcreid.clustering, "pseudo_labels", fake_pseudo_labels)
    return calls


def tiny_config(experiment: str, seed: int = 1, **overrides) -> dict:
    """The repository's params.yaml run config, shrunk to seconds: 32x16 images, P=4, K=2, S=2."""
    with open(REPO / "params.yaml") as handle:
        params = yaml.safe_load(handle)
    params["profile"] = "embedded"
    config = run_config(params, Run("prcc", experiment, seed))
    # Random init: the profile's pretrained trunk is a workflow output these loop tests do not need.
    config["train"].update(
        height=32, width=16, epochs=1, iters_per_epoch=1, warmup_epochs=1, device="cpu", pretrained=None
    )
    config["method"].update(P=4, K=2, S=2, k1=6, k2=2)
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        config[section][key] = value
    return config


def read_log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


ABLATIONS = {
    # experiment: (augment, self_identity, memories as update rules)
    "baseline": (False, False, ["instance"]),
    "ca": (True, False, ["instance"]),
    "cs": (False, False, ["hardest", "average"]),
    "ca_cs": (True, False, ["hardest", "average"]),
    "ca_ci": (True, True, ["instance"]),
    "ca_ci_average": (True, True, ["average"]),
    "ca_ci_hardest": (True, True, ["hardest"]),
    "full": (True, True, ["hardest", "average"]),
}


@pytest.mark.parametrize("experiment", sorted(ABLATIONS))
def test_every_ablation_trains_and_fills_the_run_folder(experiment, toy, oracle_clusters, tmp_path):
    augment, self_identity, rules = ABLATIONS[experiment]
    config = tiny_config(experiment)
    synthesis = toy["synth"] if augment else None  # non-augmenting runs must not need the cache
    metrics = train_run(config, toy["manifest"], tmp_path, synthesis)

    assert {p.name for p in tmp_path.iterdir()} >= RUN_FILES
    assert set(metrics["settings"]) == {"general", "sc", "cc"} <= set(metrics)
    assert (metrics["headline_gallery_mode"], metrics["per_query"]) == ("multi", "per_query.npz")
    assert json.loads((tmp_path / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    (record,) = read_log(tmp_path)
    assert record["epoch"] == 1 and record["n_clusters"] == 4 and record["n_outliers"] == 0
    assert np.isfinite(record["loss"])
    assert (record["loss_self_identity"] > 0) == self_identity
    assert record["loss"] == pytest.approx(record["loss_contrast"] + 0.3 * record["loss_self_identity"], rel=1e-5)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert [m["update_rule"] for m in checkpoint["memories"]] == rules
    assert all(m["features"].shape[0] == 4 for m in checkpoint["memories"])
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["method"]["augment"] == augment and saved["method"]["memory_combination"] == "mean"


def test_optional_variants_train(toy, oracle_clusters, tmp_path):
    config = tiny_config(
        "full",
        method__memory_combination="union",
        method__kl_distribution="memory",
        method__hard_measure="cosine",
        method__lr_schedule="step",
        method__lr_steps=[1],
        train__epochs=2,
    )
    train_run(config, toy["manifest"], tmp_path, toy["synth"])
    log = read_log(tmp_path)
    # warm-up over 1 epoch reaches lr at epoch 0; the step at epoch 1 multiplies it by 0.1
    assert [r["lr"] for r in log] == pytest.approx([3.5e-4, 3.5e-5])
    assert all(r["loss_self_identity"] > 0 for r in log)


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(toy, oracle_clusters, tmp_path):
    config = tiny_config("full", train__epochs=3, train__iters_per_epoch=2, train__warmup_epochs=2)
    train_run(config, toy["manifest"], tmp_path / "straight", toy["synth"])

    interrupted = copy.deepcopy(config)
    interrupted["train"]["epochs"] = 2
    train_run(interrupted, toy["manifest"], tmp_path / "resumed", toy["synth"])
    assert len(read_log(tmp_path / "resumed")) == 2
    train_run(config, toy["manifest"], tmp_path / "resumed", toy["synth"], resume=True)

    straight = torch.load(tmp_path / "straight" / "model.pt", weights_only=True)["state_dict"]
    resumed = torch.load(tmp_path / "resumed" / "model.pt", weights_only=True)["state_dict"]
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key

    def without_time(records):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in records]

    assert without_time(read_log(tmp_path / "straight")) == without_time(read_log(tmp_path / "resumed"))
    assert len(oracle_clusters) == 3 + 2 + 1  # the resumed run re-clustered only for epoch 3


def test_packed_images_train_the_same_weights_as_decoding(toy, oracle_clusters, tmp_path, capsys):
    packed = tmp_path / "packed.pt"
    argv = ["pack-images", "--manifest", str(toy["manifest"]), "--synthesis", str(toy["synth"]), "--copies", "2"]
    assert spcreid_main([*argv, "--height", "32", "--width", "16", "--out", str(packed)]) == 0
    assert json.loads(capsys.readouterr().out)["groups_shape"] == [len(toy["train_pids"]), 3, 3, 36, 18]

    def weights(experiment, run, **packed_images):
        synthesis = toy["synth"] if experiment == "full" else None
        train_run(tiny_config(experiment), toy["manifest"], tmp_path / run, synthesis, **packed_images)
        return torch.load(tmp_path / run / "model.pt", weights_only=True)["state_dict"]

    # The augmenting model reads the whole rows, the baseline only their sources: both as if decoded.
    for experiment in ("full", "baseline"):
        decoded = weights(experiment, f"{experiment}-decoded")
        from_pack = weights(experiment, f"{experiment}-packed", packed_images=packed)
        assert all(torch.equal(decoded[key], from_pack[key]) for key in decoded), experiment
    no_cache = ["pack-images", "--manifest", str(toy["manifest"]), "--copies", "2", "--height", "32", "--width", "16"]
    assert spcreid_main([*no_cache, "--out", str(tmp_path / "other.pt")]) == 2
    assert "give --synthesis DIR together with --copies S >= 1, or neither" in capsys.readouterr().err


def test_other_seed_other_weights(toy, oracle_clusters, tmp_path):
    # (same seed, same weights is what the resume test checks)
    def weights(seed):
        train_run(tiny_config("full", seed=seed), toy["manifest"], tmp_path / str(seed), toy["synth"])
        return torch.load(tmp_path / str(seed) / "model.pt", weights_only=True)["state_dict"]["trunk.conv1.weight"]

    assert not torch.equal(weights(1), weights(2))


def test_resume_refuses_a_checkpoint_of_another_configuration(toy, oracle_clusters, tmp_path):
    train_run(tiny_config("full"), toy["manifest"], tmp_path, toy["synth"])
    with pytest.raises(SpcreidError, match="method.alpha"):
        train_run(tiny_config("full", method__alpha=0.5), toy["manifest"], tmp_path, toy["synth"], resume=True)


def test_fewer_than_two_clusters_stops_naming_eps(toy, tmp_path):
    # Real clustering: at eps 1e-6 no image has min_samples neighbours, so every image is an outlier.
    with pytest.raises(SpcreidError, match=r"eps=1e-06 found 0 cluster"):
        train_run(tiny_config("baseline", method__eps=1e-6), toy["manifest"], tmp_path)
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "model.pt").exists()


def test_diverging_loss_stops_naming_epoch_and_iteration(toy, oracle_clusters, tmp_path):
    # lr 1e30: the first Adam step throws the weights out of float range, the next loss is not finite.
    config = tiny_config("baseline", method__lr=1e30, train__iters_per_epoch=2)
    with pytest.raises(SpcreidError, match=r"epoch 1, iteration 2: loss is nan"):
        train_run(config, toy["manifest"], tmp_path)
    assert not (tmp_path / "metrics.json").exists()


def test_config_errors_name_the_field(toy, tmp_path):
    with pytest.raises(SpcreidError, match="method.sampling"):
        train_run(tiny_config("full", method__sampling="random"), toy["manifest"], tmp_path, toy["synth"])
    with pytest.raises(SpcreidError, match="--synthesis"):
        train_run(tiny_config("full"), toy["manifest"], tmp_path)
    with pytest.raises(SpcreidError, match="method.self_identity"):
        train_run(tiny_config("baseline", method__self_identity=True), toy["manifest"], tmp_path)


def argv_train(params_path, toy, run):
    return [
        "train",
        "--params",
        str(params_path),
        "--dataset",
        "prcc",
        "--experiment",
        "full",
        "--seed",
        "3",
        "--manifest",
        str(toy["manifest"]),
        "--synthesis",
        str(toy["synth"]),
        "--out",
        str(run),
        "--epochs",
        "1",
        "--iters",
        "1",
    ]


def test_cli_train_then_evaluate_agree(toy, oracle_clusters, tmp_path, capsys):
    with open(REPO / "params.yaml") as handle:
        params = yaml.safe_load(handle)
    params["profiles"]["embedded"]["train"].update(height=32, width=16, pretrained=None)
    params["method"].update(P=4, K=2, S=2)
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    run = tmp_path / "run"
    assert spcreid_main(argv_train(params_path, toy, run)) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["train"]["epochs"] == 1 and config["train"]["iters_per_epoch"] == 1 and config["seed"] == 3

    out = tmp_path / "metrics_again.json"
    argv = [
        "evaluate",
        "--run",
        str(run),
        "--manifest",
        str(toy["manifest"]),
        "--protocol",
        "vcclothes",
        "--out",
        str(out),
    ]
    assert spcreid_main(argv) == 0
    again, first = json.loads(out.read_text()), json.loads((run / "metrics.json").read_text())
    assert again.pop("per_query") == "metrics_again.per_query.npz" and first.pop("per_query") == "per_query.npz"
    assert again == first
    with np.load(tmp_path / "metrics_again.per_query.npz") as a, np.load(run / "per_query.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        assert all(np.array_equal(a[k], b[k]) for k in a.files if not k.endswith("/query_path"))
        # Query paths are relative to each file's folder; both name the same images.
        assert all(
            [os.path.normpath(tmp_path / p) for p in a[k]] == [os.path.normpath(run / p) for p in b[k]]
            for k in a.files
            if k.endswith("/query_path")
        )
    # Several runs in one call (the workflow's seeds of a configuration) share one decoding of the test images
    # and give each run's own numbers.
    twice = [str(tmp_path / "twice_a.json"), str(tmp_path / "twice_b.json")]
    both = [*argv[:7], "--out", twice[0], "--run", str(run), "--out", twice[1]]
    assert spcreid_main(both) == 0
    for path in twice:
        scored = json.loads(Path(path).read_text())
        assert scored.pop("per_query") == Path(path).stem + ".per_query.npz" and scored == again
    capsys.readouterr()
    assert spcreid_main([*both[:-2]] + ["--per-query", str(tmp_path / "x.npz")]) == 2
    assert "got 2 --run, 1 --out and 1 --per-query" in capsys.readouterr().err
    # The metrics name their run, so tables can refuse files of another profile or run.
    recorded = json.loads(out.read_text())
    assert {key: recorded[key] for key in ("profile", "dataset", "experiment", "seed")} == {
        "profile": "embedded",
        "dataset": "prcc",
        "experiment": "full",
        "seed": 3,
    }
    assert len(recorded["config_hash"]) == 64

    skipped = tmp_path / "skipped"
    assert spcreid_main([*argv_train(params_path, toy, skipped), "--skip-evaluation"]) == 0
    assert (skipped / "model.pt").is_file() and not (skipped / "metrics.json").exists()

    capsys.readouterr()
    assert (
        spcreid_main(
            [
                "train",
                "--params",
                str(params_path),
                "--dataset",
                "prcc",
                "--experiment",
                "full",
                "--seed",
                "3",
                "--manifest",
                str(toy["manifest"]),
                "--out",
                str(run),
            ]
        )
        == 2
    )
    assert "--synthesis" in capsys.readouterr().err


def test_rule_log_gets_one_summary_line_per_epoch_and_no_bars(toy, oracle_clusters, tmp_path, capsys):
    # stderr is not a terminal here, as under Snakemake's `log:`: no progress-bar redraws, one line per epoch.
    config = tiny_config("full", train__epochs=2, train__warmup_epochs=0)
    train_run(config, toy["manifest"], tmp_path, toy["synth"])
    err = capsys.readouterr().err
    assert "\r" not in err and "it/s" not in err
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 2, err
    for record, line in zip(read_log(tmp_path), lines):
        assert line.startswith(f"epoch {record['epoch']}/2: loss {record['loss']:.3f}, 4 clusters, 0/32 outliers")
        assert line.endswith(f", lr {record['lr']:.2e}, {record['seconds']:.1f}s")


@pytest.mark.parametrize("setting", ["--device", "train.device"])
def test_training_refuses_a_gpu_this_torch_has_no_kernels_for(setting, toy, tmp_path, capsys, monkeypatch):
    # No GPU needed: a V100 (sm_70) under a torch built for sm_75+, as spcreid.device sees it. The error is
    # spcreid.device.resolve_device's capability check, so training resolves its device there like every command.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_90"])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla V100-SXM2-32GB")
    with open(REPO / "params.yaml") as handle:
        params = yaml.safe_load(handle)
    params["profiles"]["embedded"]["train"].update(height=32, width=16, pretrained=None)
    if setting == "train.device":
        params["profiles"]["embedded"]["train"]["device"] = "cuda"
    params["method"].update(P=4, K=2, S=2)
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(params))
    run = tmp_path / "run"
    extra = ["--device", "cuda"] if setting == "--device" else []
    assert spcreid_main([*argv_train(params_path, toy, run), *extra]) == 2
    err = capsys.readouterr().err
    assert f"{setting} cuda: Tesla V100-SXM2-32GB is sm_70, but this torch" in err, err
    assert "run on a GPU of a supported generation" in err
    assert not run.exists()  # refused before the run folder is made
