"""Training images: decoded once into a uint8 store, augmented as batched tensor ops on the device.

The paper augments with random cropping and horizontal flipping only, without padding or random
erasing, so that the whole person stays visible for the clothing-change copies. A source image and
its S copies must stay pixel-aligned (the self-identity loss compares them), so each group draws
ONE crop window and ONE flip decision and applies them to every member.

The crop is pad-free: images are resized to ``(1 + crop_margin)`` times the target size and a
window of exactly ``height x width`` is cut from it (crop_margin 0 disables cropping).

Every source and copy is decoded exactly once, before the first batch, into one contiguous uint8
tensor ``(N, 1 + S, 3, H', W')`` (see ``engine/store.py``); a batch is then a gather, a crop/flip by
index arithmetic and a normalisation, all on the store's device, so a GPU is never waiting for
PIL. All randomness comes from the ``torch.Generator`` the caller passes, three CPU draws per group
in index order, so a batch is a pure function of (indices, generator state) wherever it is built.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

import torch

from spcreid.engine.store import ImageStore, check_location, load_packed
from spcreid.errors import SpcreidError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LAYOUTS = ("source-major", "copy-major")


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> float32 standardised with ImageNet mean/std (what pretrained trunks expect).

    In place on one fresh float32 copy: the same three roundings as ``(x / 255 - mean) / std``, but a
    batch of 160 images is one 63 MB buffer instead of four (a 4x faster CPU data path).
    """
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(3, 1, 1)
    result = images.to(torch.float32, copy=True)
    return result.div_(255.0).sub_(mean).div_(std)


class Augmentation(NamedTuple):
    """One group's random choices: crop window offset and whether to mirror."""

    top: int
    left: int
    flip: bool


def crop_and_flip(
    groups: torch.Tensor, top: torch.Tensor, left: torch.Tensor, flip: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Cut one window per group from uint8 ``(B, G, 3, H', W')``, mirrored where ``flip``: (B, G, 3, H, W).

    One gather with per-group row and column indices: every member of a group shares its window
    and flip, and the batch never leaves the device. A mirrored window reads columns
    ``left + W-1 .. left``, which is "crop, then flip".
    """
    device = groups.device
    top, left, flip = top.to(device), left.to(device), flip.to(device)
    rows = top[:, None] + torch.arange(height, device=device)
    columns = torch.arange(width, device=device)
    columns = torch.where(flip[:, None], width - 1 - columns, columns) + left[:, None]
    batch = torch.arange(groups.shape[0], device=device)[:, None, None]
    moved = groups.permute(0, 3, 4, 1, 2)  # (B, H', W', G, 3): the indexed dims first
    window = moved[batch, rows[:, :, None], columns[:, None, :]]  # (B, H, W, G, 3)
    return window.permute(0, 3, 4, 1, 2).contiguous()


class TrainImages:
    """Source images (and optionally S synthetic copies each) rendered as augmented training tensors.

    ``copies[i]`` lists the S copies of ``paths[i]`` (every source must have the same S).
    ``sample(i, g)`` returns (1 + S, 3, H, W): the source first, then its copies in order.
    ``batch(indices, g)`` returns (len(indices) * (1 + S), 3, H, W) in ``source-major`` layout
    ``[src0, copy0_0..copy0_S-1, src1, ...]`` (view it as (B, 1 + S, 3, H, W)), or in
    ``copy-major`` layout ``[src0..srcB-1, copy0 of each source, ..., copy S-1 of each]``
    (view it as (1 + S, B, 3, H, W)). Tensors come out float32 on ``device``.

    The store is decoded on first use (or by ``build()``) with ``workers`` decoding processes, or read
    from ``packed``, a file written by ``spcreid pack-images`` for these images, and kept at ``store``
    (``auto``, ``cpu``, ``pinned`` or ``device``; see ``engine/store.py``).
    ``plain=True`` also keeps every source at exactly ``height x width`` (``plain_images``), the
    input of feature extraction, so clustering sees what evaluation sees without decoding again.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        copies: Sequence[Sequence[str | os.PathLike]] | None = None,
        height: int = 256,
        width: int = 128,
        crop_margin: float = 0.125,
        flip_prob: float = 0.5,
        workers: int = 0,
        device: str | torch.device = "cpu",
        store: str = "auto",
        plain: bool = False,
        progress: bool = False,
        packed: str | os.PathLike | None = None,
    ):
        if height <= 0 or width <= 0:
            raise SpcreidError(f"image size must be positive, got {height}x{width} (train.height/train.width)")
        if crop_margin < 0:
            raise SpcreidError(f"crop_margin must be >= 0, got {crop_margin}")
        if workers < 0:
            raise SpcreidError(f"workers must be >= 0, got {workers} (train.workers)")
        check_location(store)
        self.paths = [os.fspath(p) for p in paths]
        self.copies = _validated_copies(self.paths, copies)
        self.copies_per_source = len(self.copies[0]) if self.copies else 0
        self.group_size = 1 + self.copies_per_source
        self.height, self.width = height, width
        self.load_height = round(height * (1 + crop_margin))
        self.load_width = round(width * (1 + crop_margin))
        self.flip_prob = flip_prob
        self.workers = workers
        self.device = torch.device(device)
        self.location = store
        self.keep_plain = plain
        self.progress = progress
        self.packed = packed
        self._store = None

    def __len__(self) -> int:
        return len(self.paths)

    def build(self) -> ImageStore:
        """Decode (or load) every image once (idempotent); returns the ``ImageStore``."""
        if self._store is not None:
            return self._store
        sizes = dict(
            load_size=(self.load_height, self.load_width),
            plain_size=(self.height, self.width) if self.keep_plain else None,
            device=self.device,
            location=self.location,
        )
        if self.packed is not None:
            self._store = load_packed(self.packed, self.groups(), **sizes)
        else:
            self._store = ImageStore.decode(self.groups(), workers=self.workers, progress=self.progress, **sizes)
        return self._store

    def groups(self) -> list[list[str]]:
        """Per source: its path, then its copies' (the rows of the store)."""
        return [[p, *(self.copies[i] if self.copies else ())] for i, p in enumerate(self.paths)]

    @property
    def plain_images(self) -> torch.Tensor:
        """uint8 (N, 3, height, width): every source resized without crop, as feature extraction reads it."""
        store = self.build()
        if store.plain is None:
            raise SpcreidError("TrainImages was built without plain=True; it keeps no uncropped sources")
        return store.plain

    def draw(self, generator: torch.Generator) -> Augmentation:
        """Draw one group's crop offset and flip from ``generator`` (always three draws, in order)."""
        top = int(torch.randint(0, self.load_height - self.height + 1, (1,), generator=generator))
        left = int(torch.randint(0, self.load_width - self.width + 1, (1,), generator=generator))
        flip = bool(torch.rand((), generator=generator) < self.flip_prob)
        return Augmentation(top, left, flip)

    def sample(self, index: int, generator: torch.Generator) -> torch.Tensor:
        return self.render(index, self.draw(generator))

    def render(self, index: int, augmentation: Augmentation) -> torch.Tensor:
        """The group of ``index`` with the given augmentation: (1 + S, 3, H, W) float32."""
        return self._augment([int(index)], [augmentation])[0]

    def batch(self, indices: Sequence[int], generator: torch.Generator, layout: str = "source-major") -> torch.Tensor:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        indices = [int(i) for i in indices]
        augmentations = [self.draw(generator) for _ in indices]
        if not indices:
            return torch.empty(0, 3, self.height, self.width, device=self.device)
        stacked = self._augment(indices, augmentations)  # (B, 1 + S, 3, H, W)
        if layout == "copy-major":
            stacked = stacked.transpose(0, 1)
        return stacked.reshape(-1, 3, self.height, self.width)

    def _augment(self, indices: list[int], augmentations: Sequence[Augmentation]) -> torch.Tensor:
        if min(indices) < 0 or max(indices) >= len(self.paths):
            raise SpcreidError(f"image indices {min(indices)}..{max(indices)} out of range: {len(self.paths)} sources")
        groups = self.build().gather(indices)
        top, left, flip = (torch.tensor(values) for values in zip(*augmentations))
        window = crop_and_flip(groups, top, left, flip, self.height, self.width)
        return normalise(window)


def _validated_copies(paths: list[str], copies: Sequence[Sequence[str | os.PathLike]] | None) -> list[list[str]] | None:
    if copies is None:
        return None
    if len(copies) != len(paths):
        raise SpcreidError(
            f"got synthetic copies for {len(copies)} source images but {len(paths)} sources; "
            "the synthesis cache does not match the training manifest, rebuild it"
        )
    result = [[os.fspath(c) for c in group] for group in copies]
    expected = len(result[0]) if result else 0
    for source, group in zip(paths, result):
        if len(group) != expected:
            raise SpcreidError(
                f"source image {source} has {len(group)} synthetic copies, others have {expected}; "
                "rebuild the synthesis cache so every source has the same number S"
            )
    return result
