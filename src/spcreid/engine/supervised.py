"""The supervised upper bound: Algorithm 1 with the pseudo-labels replaced by the true identities.

Everything else is the unsupervised run's: backbone and its pretrained start, input size, epochs,
iterations, camera-aware P x K sampling, the cluster-memory InfoNCE loss (one memory slot per
identity, initialised from that identity's features each epoch, momentum-updated), optimiser,
schedule and evaluation. Only the labels differ, so the gap between this row and a method row is
what better labels alone could buy on the same budget. It reads the train ``pid`` column, which the
unsupervised runs use for the pseudo-label monitor only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spcreid.engine.checkpoint import save_model
from spcreid.engine.determinism import deterministic_kernels
from spcreid.engine.trainer import Trainer, relabel, run_device, train_run
from spcreid.engine.training_data import load_training_data
from spcreid.errors import SpcreidError
from spcreid.evaluation.metrics_file import run_identity
from spcreid.evaluation.run_evaluation import evaluate_model, write_evaluation
from spcreid.io import write_json
from spcreid.models.backbone import build_model

EXPERIMENT = "supervised"
# The memory recipe of the Table 2 baseline (Cluster Contrast): no synthesis, no self-identity loss.
METHOD_OVERRIDES = {"augment": False, "self_identity": False, "sampling": "none"}


class SupervisedTrainer(Trainer):
    def pseudo_label(self, epoch: int) -> tuple[np.ndarray, torch.Tensor]:
        if self.data.pids is None:
            raise SpcreidError("supervised training needs the train images' pid column in the manifest")
        features = self.train_features(epoch)
        labels = relabel(self.data.pids)
        if labels.max(initial=-1) < 1:
            raise SpcreidError("supervised training needs at least 2 train identities in the manifest")
        return labels, features.to(self.device)


def supervised_config(config: dict[str, Any]) -> dict[str, Any]:
    """A run config (``run_config`` output) turned into the supervised upper bound's."""
    config = {**config, "experiment": EXPERIMENT, "labels": "identity (ground truth)"}
    config["method"] = {**config["method"], **METHOD_OVERRIDES}
    return config


def train_supervised_run(
    config: dict[str, Any],
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    resume: bool = False,
    device: str | None = None,
    evaluate: bool = True,
    packed_images: str | os.PathLike | None = None,
) -> dict[str, dict[str, Any]] | None:
    """Train (and evaluate) the upper bound; same run folder as ``train_run`` (model.pt, metrics.json)."""
    return train_run(
        supervised_config(config),
        manifest,
        out_dir,
        None,
        resume=resume,
        device=device,
        evaluate=evaluate,
        trainer_class=SupervisedTrainer,
        packed_images=packed_images,
    )


def pretrained_start_run(
    config: dict[str, Any], manifest: str | os.PathLike, out_dir: str | os.PathLike, device: str | None = None
) -> dict[str, dict[str, Any]]:
    """The lower bound "pretrained start, no training": the run folder of a zero-epoch run.

    The model is exactly what every training run starts from (``train.pretrained`` loaded into
    ``train.arch``, the method's pooling), saved as model.pt and evaluated under the dataset's protocol.
    """
    config = {**config, "experiment": "pretrained-start", "labels": "none (no training)"}
    config["train"] = {**config["train"], "epochs": 0}
    train = config["train"]
    torch_device = run_device(config, device, "the pretrained-start evaluation")
    data = load_training_data(manifest, None, 0)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("metrics.json", "per_query.npz"):
        (out_dir / stale).unlink(missing_ok=True)
    with deterministic_kernels(torch_device):
        torch.manual_seed(int(config["seed"]))
        model = build_model(train["arch"], train.get("pretrained"), config["method"]["pooling"], last_stride=1)
        model.to(torch_device)
        write_json(out_dir / "config.json", {**config, "inputs": {"manifest": str(Path(manifest).resolve())}})
        meta = {
            "arch": train["arch"],
            "pooling": config["method"]["pooling"],
            "height": int(train["height"]),
            "width": int(train["width"]),
            "feature_dim": int(model.feature_dim),
            "dataset": config["dataset"],
            "experiment": config["experiment"],
            "seed": int(config["seed"]),
        }
        save_model(out_dir / "model.pt", model, meta)
        metrics, per_query = evaluate_model(
            model,
            data.test_rows,
            config["dataset_spec"]["protocol"],
            int(train["height"]),
            int(train["width"]),
            torch_device,
            workers=int(train.get("workers", 0)),
        )
    metrics = {**run_identity(config), **metrics}
    write_evaluation(metrics, per_query, out_dir / "metrics.json", out_dir / "per_query.npz")
    return {**metrics, "per_query": "per_query.npz"}
