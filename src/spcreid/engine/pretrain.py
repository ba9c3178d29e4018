"""Supervised pretraining of a backbone trunk on a toy dataset: the embedded profile's ImageNet stand-in.

The paper (and Cluster Contrast before it) starts from ImageNet weights: clustering in epoch 1 only
works when the features already separate people. From random weights the toy's per-camera
backgrounds dominate and DBSCAN finds one cluster. Downloading weights is not possible on a bare
machine, so the embedded profile pretrains the trunk on a separately generated toy set (its own
seed: no person of it appears in any evaluation set), with labels.

The label of an image is its *outfit*, the pair (pid, clothes_id): each outfit of each person is its
own class. Like ImageNet or ordinary (same-clothes) ReID features, the result separates people but
is clothing-sensitive; it must not already know that two outfits can belong to one person, or the
clothing-change gains of the method (Ca, Ci, Cs) would be given away by the initialisation.

The same recipe with ``labels="identity"`` on the *train split* of an evaluation set is the
classifier oracle of docs/TOY_DATASET.md: the standard supervised ReID recipe (ID loss + triplet) with
true identity labels, scored with ``spcreid pretrained-start --pretrained``. It answers whether
identity can be learned across clothes on that set with this backbone and input size at all.

Loss: cross-entropy through a cosine classifier on the model's L2-normalised features, plus an
optional batch-hard triplet term; batches are P outfits x K images so the triplet term always has
positives. Only the trunk is saved, under torchvision's key names, which is what
``build_model(arch, pretrained=path)`` loads with its strict key check.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from spcreid.data.registry import load_dataset
from spcreid.engine.determinism import deterministic_kernels, seed_everything
from spcreid.engine.images import TrainImages
from spcreid.errors import SpcreidError
from spcreid.io import atomic_path
from spcreid.models.backbone import build_model


@dataclass(frozen=True)
class PretrainSettings:
    """Everything that determines the pretrained weights besides the dataset."""

    arch: str = "resnet18-small"
    height: int = 64
    width: int = 32
    epochs: int = 20
    seed: int = 0
    classes_per_batch: int = 16  # P
    images_per_class: int = 4  # K
    lr: float = 1e-3
    weight_decay: float = 5e-4
    # Cosine logits live in [-1, 1]; the scale makes a confident softmax reachable (NormFace-style).
    logit_scale: float = 16.0
    triplet_weight: float = 1.0
    triplet_margin: float = 0.3

    def validate(self) -> None:
        for name in ("epochs", "classes_per_batch", "images_per_class", "height", "width"):
            if int(getattr(self, name)) < 1:
                raise SpcreidError(f"pretraining {name.replace('_', '-')} is {getattr(self, name)}; it must be >= 1")
        if self.images_per_class < 2 and self.triplet_weight > 0:
            raise SpcreidError(
                "pretraining with a triplet term needs --images-per-class >= 2 (positives in every batch); "
                "raise it or pass --triplet-weight 0"
            )
        for name in ("lr", "logit_scale"):
            if not float(getattr(self, name)) > 0:
                raise SpcreidError(f"pretraining {name.replace('_', '-')} is {getattr(self, name)}; it must be > 0")
        for name in ("weight_decay", "triplet_weight", "triplet_margin"):
            if float(getattr(self, name)) < 0:
                raise SpcreidError(f"pretraining {name.replace('_', '-')} is {getattr(self, name)}; it must be >= 0")
        if self.seed < 0:
            raise SpcreidError(f"pretraining seed is {self.seed}; use a non-negative integer")


@dataclass
class PretrainingSet:
    paths: list[str]
    labels: np.ndarray  # class per image, 0..n_classes-1
    n_identities: int
    label_kind: str = "outfit"

    @property
    def n_classes(self) -> int:
        return int(self.labels.max()) + 1 if self.labels.size else 0


def outfit_classes(pids: np.ndarray, clothes_ids: np.ndarray) -> np.ndarray:
    """One class per (pid, clothes_id) pair, numbered 0..C-1 in sorted (pid, clothes_id) order."""
    pairs = np.stack([np.asarray(pids, np.int64), np.asarray(clothes_ids, np.int64)], axis=1)
    if pairs.size == 0:
        return np.empty(0, np.int64)
    return np.unique(pairs, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


LABELS = ("outfit", "identity")
SPLITS = ("all", "train")


def load_pretraining_set(data_dir: str | os.PathLike, labels: str = "outfit", split: str = "all") -> PretrainingSet:
    """The images of a toy dataset folder, labelled by outfit (pid, clothes_id) or by identity (pid).

    ``split="all"``: train, query and gallery alike; the pretraining folder exists only for
    pretraining, none of its people is ever evaluated. ``split="train"``: only the train split, the
    one choice that may be used on an evaluation set (the classifier oracle).
    """
    if labels not in LABELS:
        raise SpcreidError(f"--labels {labels!r}: choose one of {list(LABELS)}")
    if split not in SPLITS:
        raise SpcreidError(f"--split {split!r}: choose one of {list(SPLITS)}")
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise SpcreidError(
            f"--data {data_dir} is not a folder; generate the pretraining set first with "
            f"`spcreid make-toy-data --out {data_dir} --seed N` (a seed no evaluation set uses)"
        )
    frame = load_dataset("toy", data_dir)
    if split == "train":
        frame = frame[frame["split"] == "train"].reset_index(drop=True)
    clothes = frame["clothes_id"].to_numpy() if labels == "outfit" else np.zeros(len(frame), np.int64)
    classes = outfit_classes(frame["pid"].to_numpy(), clothes)
    dataset = PretrainingSet(frame["path"].tolist(), classes, int(frame["pid"].nunique()), labels)
    if dataset.n_classes < 2:
        raise SpcreidError(
            f"--data {data_dir} holds {dataset.n_classes} {labels} class(es) in split {split!r}; supervised "
            "pretraining needs at least 2. Generate it with more --identities"
        )
    return dataset


def class_balanced_batches(
    labels: np.ndarray, classes_per_batch: int, images_per_class: int, generator: torch.Generator
) -> list[list[int]]:
    """One epoch: every class once, in random order, P classes x K images per batch.

    A class with at least K images gives K distinct ones; a smaller class repeats images (with
    crop/flip augmentation the repeats still differ), so every class carries the same weight.
    """
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    n_classes = int(labels.max()) + 1
    members = [torch.nonzero(labels == c).flatten() for c in range(n_classes)]
    order = torch.randperm(n_classes, generator=generator).tolist()
    batches = []
    for start in range(0, n_classes, classes_per_batch):
        batch: list[int] = []
        for c in order[start : start + classes_per_batch]:
            pool = members[c]
            if len(pool) >= images_per_class:
                picks = pool[torch.randperm(len(pool), generator=generator)[:images_per_class]]
            else:
                picks = pool[torch.randint(0, len(pool), (images_per_class,), generator=generator)]
            batch.extend(picks.tolist())
        batches.append(batch)
    return batches


class CosineClassifier(nn.Module):
    """Logits = scale * cos(feature, class weight): matches the unit-length features the model emits."""

    def __init__(self, feature_dim: int, n_classes: int, scale: float, generator: torch.Generator):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, feature_dim, generator=generator) * 0.01)
        self.scale = scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(features, dim=1) @ F.normalize(self.weight, dim=1).T


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over anchors of relu(d(hardest positive) - d(hardest negative) + margin), Euclidean distances.

    Anchors without a positive or without a negative in the batch are left out.
    """
    distances = torch.cdist(features, features)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    positive = same & ~eye
    valid = positive.any(1) & (~same).any(1)
    if not bool(valid.any()):
        return features.new_zeros(())
    hardest_positive = distances.masked_fill(~positive, float("-inf")).amax(1)
    hardest_negative = distances.masked_fill(same, float("inf")).amin(1)
    return F.relu(hardest_positive - hardest_negative + margin)[valid].mean()


def trunk_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The trunk's parameters and buffers under torchvision ResNet names (``layer1.0.conv1.weight``)."""
    return {key: value.detach().cpu().clone() for key, value in model.trunk.state_dict().items()}


def pretrain_trunk(
    dataset: PretrainingSet, settings: PretrainSettings, progress: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train model + cosine classifier on the outfit labels; returns the trunk state dict and a summary."""
    settings.validate()
    device = torch.device("cpu")
    with deterministic_kernels(device):
        generator = seed_everything(settings.seed)
        # Channels-last as in training (spcreid.engine.trainer): faster on the CPU too.
        model = build_model(settings.arch, None, "avg", last_stride=1).to(memory_format=torch.channels_last)
        head = CosineClassifier(model.feature_dim, dataset.n_classes, settings.logit_scale, generator)
        parameters = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
        optimizer = torch.optim.Adam(parameters, lr=settings.lr, weight_decay=settings.weight_decay)
        images = TrainImages(dataset.paths, None, height=settings.height, width=settings.width)
        labels = torch.from_numpy(dataset.labels)
        model.train()
        started = time.perf_counter()
        steps, correct, seen, loss_sum = 0, 0, 0, 0.0
        bar = tqdm(range(settings.epochs), desc="pretrain", unit="epoch", disable=None if progress else True)
        for epoch in bar:
            epoch_loss, epoch_correct, epoch_seen = 0.0, 0, 0
            batches = class_balanced_batches(
                dataset.labels, settings.classes_per_batch, settings.images_per_class, generator
            )
            for indices in batches:
                batch_labels = labels[indices]
                features = model(images.batch(indices, generator).contiguous(memory_format=torch.channels_last))
                logits = head(features)
                loss = F.cross_entropy(logits, batch_labels)
                if settings.triplet_weight > 0:
                    loss = loss + settings.triplet_weight * batch_hard_triplet(
                        features, batch_labels, settings.triplet_margin
                    )
                if not torch.isfinite(loss):
                    raise SpcreidError(
                        f"pretraining epoch {epoch + 1}: loss is {loss.item()}; lower --lr (now {settings.lr})"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                steps += 1
                epoch_loss += loss.item() * len(indices)
                epoch_correct += int((logits.argmax(1) == batch_labels).sum())
                epoch_seen += len(indices)
            bar.set_postfix(loss=f"{epoch_loss / epoch_seen:.3f}", acc=f"{epoch_correct / epoch_seen:.2f}")
            loss_sum, correct, seen = epoch_loss, epoch_correct, epoch_seen
    summary = {
        "settings": asdict(settings),
        "images": len(dataset.paths),
        "identities": dataset.n_identities,
        "classes": dataset.n_classes,
        "label": "outfit (pid, clothes_id)" if dataset.label_kind == "outfit" else "identity (pid)",
        "steps": steps,
        "last_epoch_loss": round(loss_sum / max(seen, 1), 4),
        "last_epoch_train_accuracy": round(correct / max(seen, 1), 4),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return trunk_state_dict(model), summary


def save_trunk(state: dict[str, torch.Tensor], out: str | os.PathLike, arch: str) -> None:
    """Write the trunk weights atomically, after checking they load with build_model's strict key check."""
    # Serialised in memory first: torch.save names the archive after the file it writes to, and the
    # temporary name is random, so saving straight to it would make identical weights differ in bytes.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(out) as tmp:
        tmp.write_bytes(buffer.getvalue())
        # Exactly what training will do with the file, done before the file is published.
        build_model(arch, pretrained=tmp)


def pretrain_backbone(
    data_dir: str | os.PathLike,
    out: str | os.PathLike,
    settings: PretrainSettings,
    progress: bool = True,
    labels: str = "outfit",
    split: str = "all",
) -> dict[str, Any]:
    """Pretrain on the toy folder ``data_dir`` and write the trunk to ``out``; returns the summary."""
    settings.validate()
    dataset = load_pretraining_set(data_dir, labels, split)
    state, summary = pretrain_trunk(dataset, settings, progress)
    save_trunk(state, out, settings.arch)
    return {**summary, "data": str(data_dir), "split": split, "out": str(out)}
