"""The training loop of Algorithm 1 and the run folder it fills.

Per epoch: extract features of the real train images, cluster them into pseudo identities (outliers
dropped), initialise the cluster memories, then ``iters_per_epoch`` iterations of camera-aware
P x K sampling; each image comes with its S synthetic copies (clothing augmentation), all
(1 + S) * P * K images go through the backbone, L = Lq + alpha * Ls is minimised with Adam, and the
memories are updated without gradient after the step. A checkpoint is written after every epoch;
the final weights go to ``model.pt`` and the test-set metrics to ``metrics.json``.

Determinism: on CPU a run is a pure function of its config and seed. Every random choice of the
loop (sampling, crops and flips, memory initialisation) comes from one explicit
``torch.Generator``; model initialisation from ``torch.manual_seed``. The checkpoint stores all
random states so ``--resume`` reproduces an uninterrupted run exactly.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from spcreid import clustering
from spcreid.config.schema import validate_method
from spcreid.device import resolve_device
from spcreid.engine.checkpoint import (
    capture_rng_states,
    load_checkpoint,
    restore_rng_states,
    save_checkpoint,
    save_model,
)
from spcreid.engine.determinism import deterministic_kernels, seed_everything
from spcreid.engine.features import FEATURE_BATCH_SIZE, extract_tensor_features
from spcreid.engine.guards import check_features, check_weights, run_folder_lock
from spcreid.engine.images import TrainImages
from spcreid.engine.logging import EpochLog, epoch_summary, label_quality
from spcreid.engine.sampler import CameraAwarePKSampler
from spcreid.engine.schedule import learning_rate, set_learning_rate
from spcreid.engine.training_data import TrainingData, load_training_data
from spcreid.errors import SpcreidError
from spcreid.evaluation.metrics_file import run_identity
from spcreid.evaluation.run_evaluation import evaluate_model, write_evaluation
from spcreid.guards import check_recorded_settings
from spcreid.io import write_json
from spcreid.method.losses import training_loss
from spcreid.method.memory import ClusterMemory, build_memories
from spcreid.models.backbone import build_model

# Run-config fields a resumed run may change: they decide how long and where it trains, not what it learns.
RESUMABLE_CHANGES = frozenset(
    {"train.epochs", "train.device", "train.workers", "train.image_store", "train.pack_images"}
)


def resolve_config(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a run config (``run_config`` output) with the schema's method defaults filled in and checked."""
    config = copy.deepcopy(config)
    # Defaults, types, ranges and choices: the params schema, their one declaration.
    method = validate_method(config["method"])
    if method["self_identity"] and not method["augment"]:
        raise SpcreidError(
            "method.self_identity is true but method.augment is false: the self-identity loss compares "
            "an image with its synthetic copies, so it needs augment: true"
        )
    for key in ("epochs", "iters_per_epoch"):
        if int(config["train"][key]) < 1:
            raise SpcreidError(f"train.{key} is {config['train'][key]}; it must be >= 1")
    return config


def run_device(config: dict[str, Any], device: str | None, what: str) -> torch.device:
    """The device a run config's job runs on: the command's ``--device`` if given, else ``train.device``."""
    if device:
        return resolve_device(device, what)
    return resolve_device(str(config["train"].get("device", "auto")), what, "train.device")


def relabel(labels: np.ndarray) -> np.ndarray:
    """Map the kept cluster ids onto 0..C-1 in increasing order; -1 stays -1."""
    labels = np.asarray(labels, dtype=np.int64)
    result = np.full_like(labels, -1)
    clustered = labels >= 0
    result[clustered] = np.unique(labels[clustered], return_inverse=True)[1]
    return result


class Trainer:
    """Runs Algorithm 1 for one run config, writing checkpoint and log into ``out_dir``."""

    def __init__(
        self,
        config: dict[str, Any],
        data: TrainingData,
        out_dir: str | os.PathLike,
        device: torch.device,
        packed_images: str | os.PathLike | None = None,
    ):
        self.config = config
        self.method = config["method"]
        self.train_cfg = config["train"]
        self.data = data
        self.out_dir = Path(out_dir)
        self.device = device
        self.on_cuda = device.type == "cuda"
        self.generator = seed_everything(int(config["seed"]))
        self.model = build_model(
            self.train_cfg["arch"], self.train_cfg.get("pretrained"), self.method["pooling"], last_stride=1
        ).to(device, memory_format=torch.channels_last)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(
            trainable, lr=float(self.method["lr"]), weight_decay=float(self.method["weight_decay"])
        )
        # Decoded once, on first use, into a uint8 store on (or pinned for) the training device;
        # ``plain`` keeps the uncropped sources that pseudo-labelling extracts features from.
        self.images = TrainImages(
            data.paths,
            data.copies if self.method["augment"] else None,
            height=int(self.train_cfg["height"]),
            width=int(self.train_cfg["width"]),
            workers=int(self.train_cfg.get("workers", 0)),
            device=device,
            store=str(self.train_cfg.get("image_store", "auto")),
            plain=True,
            progress=sys.stderr.isatty(),  # a bar on a terminal only, as for the epochs
            packed=packed_images,
        )
        self.memories: list[ClusterMemory] = []
        self.start_epoch = 0
        self.log = EpochLog(self.out_dir / "log.jsonl")

    # --- checkpointing -------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.pt"

    def save_checkpoint(self, epochs_done: int) -> None:
        save_checkpoint(
            self.checkpoint_path,
            {
                "epoch": epochs_done,
                "config": self.config,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "memories": [m.state_dict() for m in self.memories],
                "rng": capture_rng_states(self.generator),
            },
        )

    def resume(self) -> None:
        """Continue from checkpoint.pt; it must come from the same config (train.epochs may grow)."""
        state = load_checkpoint(self.checkpoint_path)
        check_recorded_settings(
            state["config"],
            self.config,
            f"{self.checkpoint_path} was written with a different configuration",
            "rerun without --resume to start over",
            may_change=RESUMABLE_CHANGES,
        )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.memories = [ClusterMemory.from_state_dict(m).to(self.device) for m in state["memories"]]
        restore_rng_states(state["rng"], self.generator)
        self.start_epoch = int(state["epoch"])
        if self.start_epoch > int(self.train_cfg["epochs"]):
            raise SpcreidError(
                f"{self.checkpoint_path} holds {self.start_epoch} epochs but train.epochs is "
                f"{self.train_cfg['epochs']}; rerun without --resume to train {self.train_cfg['epochs']} epochs"
            )
        self.log.load(keep_epochs=self.start_epoch)

    # --- Algorithm 1 ---------------------------------------------------------------------------

    def fit(self) -> None:
        if self.start_epoch == 0:
            self.log.reset()
        epochs = int(self.train_cfg["epochs"])
        for epoch in range(self.start_epoch, epochs):
            record = self.train_epoch(epoch)
            self.log.append(record)
            self.save_checkpoint(epoch + 1)

    def train_epoch(self, epoch: int) -> dict[str, Any]:
        started = time.perf_counter()
        lr = learning_rate(
            epoch,
            float(self.method["lr"]),
            int(self.train_cfg["warmup_epochs"]),
            self.method["lr_schedule"],
            self.method["lr_steps"],
            float(self.method["lr_gamma"]),
        )
        set_learning_rate(self.optimizer, lr)
        labels, features = self.pseudo_label(epoch)
        kept = labels >= 0
        self.memories = [
            m.to(self.device)
            for m in build_memories(
                self.method["sampling"],
                features[torch.from_numpy(kept).to(features.device)],
                torch.from_numpy(labels[kept]),
                float(self.method["momentum"]),
                self.generator,
                self.method["hard_measure"],
                float(self.method["kl_temperature"]),
            )
        ]
        sampler = CameraAwarePKSampler(
            labels,
            self.data.camids,
            int(self.method["P"]),
            int(self.method["K"]),
            int(self.train_cfg["iters_per_epoch"]),
            self.generator,
        )
        label_tensor = torch.from_numpy(labels)
        totals = {"loss": 0.0, "loss_contrast": 0.0, "loss_self_identity": 0.0}
        self.model.train()
        epochs = int(self.train_cfg["epochs"])
        # disable=None: a bar on a terminal only; rule logs get the summary line per epoch instead.
        progress = tqdm(sampler, desc=f"epoch {epoch + 1}/{epochs}", unit="it", leave=False, disable=None)
        for iteration, indices in enumerate(progress, start=1):
            terms = self.train_step(indices, label_tensor[indices], epoch, iteration)
            values = {
                "loss": terms.total.item(),
                "loss_contrast": terms.contrast.item(),
                "loss_self_identity": terms.self_identity.item(),
            }
            for key, value in values.items():
                totals[key] += value
            progress.set_postfix(loss=f"{values['loss']:.3f}")
        check_weights(self.model, epoch, self.method)  # before the epoch's checkpoint can keep them
        iterations = len(sampler)
        record = {
            "epoch": epoch + 1,
            "lr": lr,
            "n_clusters": int(labels.max()) + 1,
            "n_outliers": int((~kept).sum()),
            "n_images": int(labels.size),
            **{key: value / iterations for key, value in totals.items()},
            **label_quality(labels, self.data.pids, self.data.outfits),
            "seconds": round(time.perf_counter() - started, 3),
        }
        tqdm.write(epoch_summary(record, epochs), file=sys.stderr)  # stdout carries the command's JSON
        return record

    def train_features(self, epoch: int) -> torch.Tensor:
        """Eq. 1: features of the real train images (uncropped, as evaluation sees images), on the CPU."""
        features = extract_tensor_features(
            self.model,
            self.images.plain_images,
            batch_size=FEATURE_BATCH_SIZE,
            device=self.device,
            desc=f"epoch {epoch + 1} features",
        )
        check_features(features, epoch, self.method)
        return features

    def pseudo_label(self, epoch: int) -> tuple[np.ndarray, torch.Tensor]:
        """Eq. 1-2: features of the real train images and their DBSCAN pseudo labels (0..C-1, -1)."""
        features = self.train_features(epoch)
        labels = relabel(
            clustering.pseudo_labels(
                features,
                eps=float(self.method["eps"]),
                min_samples=int(self.method["min_samples"]),
                k1=int(self.method["k1"]),
                k2=int(self.method["k2"]),
                device=self.device,
            )
        )
        n_clusters = int(labels.max()) + 1 if labels.size else 0
        if n_clusters < 2:
            raise SpcreidError(
                f"epoch {epoch + 1}: clustering with eps={self.method['eps']} found {n_clusters} cluster(s) "
                f"among {labels.size} images (min_samples={self.method['min_samples']}); contrastive training "
                "needs at least 2. Change method.eps (too small: everything is an outlier; too large: one cluster)"
            )
        return labels, features.to(self.device)

    def train_step(self, indices: list[int], labels: torch.Tensor, epoch: int, iteration: int):
        """One iteration: forward all (1 + S) * P * K images, Adam step, then the memory update."""
        # Built on self.device from the decoded store: source-major [src0, copies of 0, src1, ...].
        images = self.images.batch(indices, self.generator)
        views = self.images.group_size
        images = images.contiguous(memory_format=torch.channels_last)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.on_cuda else contextlib.nullcontext()
        with autocast:
            features = self.model(images)
        # The losses run in float32 whatever the forward precision.
        features = torch.nn.functional.normalize(features.float(), dim=1).view(len(indices), views, -1)
        labels = labels.to(self.device)
        terms = training_loss(
            features,
            labels,
            [m.features for m in self.memories],
            temperature=float(self.method["temperature"]),
            alpha=float(self.method["alpha"]),
            use_self_identity=bool(self.method["self_identity"]),
            memory_combination=self.method["memory_combination"],
            kl_distribution=self.method["kl_distribution"],
            kl_temperature=float(self.method["kl_temperature"]),
        )
        if not torch.isfinite(terms.total):
            raise SpcreidError(
                f"epoch {epoch + 1}, iteration {iteration}: loss is {terms.total.item()}; "
                f"training diverged (method.lr={self.method['lr']}, method.temperature={self.method['temperature']})"
            )
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        self.optimizer.step()
        flat = features.detach().reshape(-1, features.shape[-1])
        view_labels = labels.repeat_interleave(views)
        for memory in self.memories:
            memory.update(flat, view_labels)
        return terms

    # --- final artefacts -----------------------------------------------------------------------

    def model_meta(self) -> dict[str, Any]:
        return {
            "arch": self.train_cfg["arch"],
            "pooling": self.method["pooling"],
            "height": int(self.train_cfg["height"]),
            "width": int(self.train_cfg["width"]),
            "feature_dim": int(self.model.feature_dim),
            "dataset": self.config["dataset"],
            "experiment": self.config["experiment"],
            "seed": int(self.config["seed"]),
        }


def train_run(
    config: dict[str, Any],
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    synthesis: str | os.PathLike | None = None,
    resume: bool = False,
    device: str | None = None,
    evaluate: bool = True,
    trainer_class: type[Trainer] = Trainer,
    packed_images: str | os.PathLike | None = None,
) -> dict[str, dict[str, Any]] | None:
    """Train one run and fill its folder: config.json, log.jsonl, checkpoint.pt, model.pt, metrics.json
    (+ per_query.npz).

    ``metrics.json`` is written last, so its presence marks a finished run. Without ``resume`` any
    earlier state in ``out_dir`` is discarded; with it, training continues from checkpoint.pt
    (or starts afresh when there is none); a checkpoint of the last epoch is only finalised (model.pt,
    metrics.json), not trained further. ``evaluate=False`` stops after ``model.pt`` (the workflow
    evaluates every model once, in its own job) and returns None. The folder is locked for the whole
    call: a second trainer in the same folder fails at once instead of racing this one.
    ``packed_images``: the decoded train images (``spcreid pack-images``) instead of decoding them here.
    """
    config = resolve_config(config)
    out_dir = Path(out_dir)
    torch_device = run_device(config, device, "training")
    method = config["method"]
    data = load_training_data(manifest, synthesis, int(method["S"]) if method["augment"] else 0)
    inputs = {
        "manifest": str(Path(manifest).resolve()),
        "synthesis": str(Path(synthesis).resolve()) if synthesis else None,
    }
    # Locked before anything in the folder is read or removed, until metrics.json is written.
    with run_folder_lock(out_dir), deterministic_kernels(torch_device):
        trainer = trainer_class(config, data, out_dir, torch_device, packed_images=packed_images)
        if resume and trainer.checkpoint_path.is_file():
            trainer.resume()  # refuses a checkpoint of another config before anything is touched
        # From here the folder describes a run in progress: drop the previous run's final outputs.
        for stale in ("model.pt", "metrics.json", "per_query.npz"):
            (out_dir / stale).unlink(missing_ok=True)
        write_json(out_dir / "config.json", {**config, "inputs": inputs})
        trainer.fit()
        save_model(out_dir / "model.pt", trainer.model, trainer.model_meta())
        if not evaluate:
            return None
        metrics, per_query = evaluate_model(
            trainer.model,
            data.test_rows,
            config["dataset_spec"]["protocol"],
            int(config["train"]["height"]),
            int(config["train"]["width"]),
            torch_device,
            workers=int(config["train"].get("workers", 0)),
        )
        metrics = {**run_identity(config), **metrics}
        write_evaluation(metrics, per_query, out_dir / "metrics.json", out_dir / "per_query.npz")
    return {**metrics, "per_query": "per_query.npz"}
