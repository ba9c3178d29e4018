"""Training images: decode, resize, one shared random crop and flip per source and its synthetic copies.

The paper augments with random cropping and horizontal flipping only, without padding or random
erasing, so that the whole person stays visible for the clothing-change copies. A source image and
its S copies must stay pixel-aligned (the self-identity loss compares them), so each group draws
ONE crop window and ONE flip decision and applies them to every member.

The crop is pad-free: images are resized to ``(1 + crop_margin)`` times the target size and a
window of exactly ``height x width`` is cut from it (crop_margin 0 disables cropping). All
randomness comes from the ``torch.Generator`` the caller passes, drawn in index order, so a batch
is a pure function of (indices, generator state) whatever the number of decoding threads.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from spcreid.errors import SpcreidError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LAYOUTS = ("source-major", "copy-major")

# PIL raises many exception types for a damaged file; all of them mean "cannot be decoded".
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError)


def read_rgb(path: str | os.PathLike, height: int, width: int) -> torch.Tensor:
    """Decode ``path`` as RGB resized to ``height x width``; uint8 tensor (3, height, width)."""
    try:
        with Image.open(path) as image:
            resized = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    except FileNotFoundError:
        raise SpcreidError(f"image {path} is missing; rebuild the dataset manifest or synthesis cache") from None
    except _DECODE_ERRORS as exc:
        raise SpcreidError(f"image {path} cannot be decoded ({exc}); re-extract or regenerate it") from None
    return torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1).contiguous()


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> float32 standardised with ImageNet mean/std (what pretrained trunks expect)."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (images.float() / 255.0 - mean) / std


class DecodedImageCache:
    """Least-recently-used cache of decoded, resized uint8 images bounded by total bytes.

    Toy runs revisit the same few hundred images every iteration; decoding dominates otherwise.
    Thread-safe so that a thread pool can fill it.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Path, torch.Tensor] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, path: Path, load: Callable[[Path], torch.Tensor]) -> torch.Tensor:
        with self._lock:
            cached = self._entries.get(path)
            if cached is not None:
                self._entries.move_to_end(path)
                return cached
        image = load(path)  # outside the lock: decoding in parallel is the point of the threads
        size = image.numel() * image.element_size()
        with self._lock:
            if path not in self._entries and size <= self.max_bytes:
                self._entries[path] = image
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, evicted = self._entries.popitem(last=False)
                    self._bytes -= evicted.numel() * evicted.element_size()
        return image

    def __len__(self) -> int:
        return len(self._entries)


class Augmentation(NamedTuple):
    """One group's random choices: crop window offset and whether to mirror."""

    top: int
    left: int
    flip: bool


class TrainImages:
    """Source images (and optionally S synthetic copies each) rendered as augmented training tensors.

    ``copies[i]`` lists the S copies of ``paths[i]`` (every source must have the same S).
    ``sample(i, g)`` returns (1 + S, 3, H, W): the source first, then its copies in order.
    ``batch(indices, g)`` returns (len(indices) * (1 + S), 3, H, W) in ``source-major`` layout
    ``[src0, copy0_0..copy0_S-1, src1, ...]`` (view it as (B, 1 + S, 3, H, W)), or in
    ``copy-major`` layout ``[src0..srcB-1, copy0 of each source, ..., copy S-1 of each]``
    (view it as (1 + S, B, 3, H, W)). ``workers`` > 0 decodes with that many threads.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        copies: Sequence[Sequence[str | os.PathLike]] | None = None,
        height: int = 256,
        width: int = 128,
        crop_margin: float = 0.125,
        flip_prob: float = 0.5,
        cache_bytes: int = 512 << 20,
        workers: int = 0,
    ):
        if height <= 0 or width <= 0:
            raise SpcreidError(f"image size must be positive, got {height}x{width} (train.height/train.width)")
        if crop_margin < 0:
            raise SpcreidError(f"crop_margin must be >= 0, got {crop_margin}")
        self.paths = [Path(p) for p in paths]
        self.copies = _validated_copies(self.paths, copies)
        self.copies_per_source = len(self.copies[0]) if self.copies else 0
        self.group_size = 1 + self.copies_per_source
        self.height, self.width = height, width
        self.load_height = round(height * (1 + crop_margin))
        self.load_width = round(width * (1 + crop_margin))
        self.flip_prob = flip_prob
        self.workers = workers
        self.cache = DecodedImageCache(cache_bytes)

    def __len__(self) -> int:
        return len(self.paths)

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
        group = [self.paths[index], *(self.copies[index] if self.copies else ())]
        stack = torch.stack([self.cache.get(path, self._load) for path in group])
        top, left = augmentation.top, augmentation.left
        window = stack[:, :, top : top + self.height, left : left + self.width]
        if augmentation.flip:
            window = window.flip(-1)
        return normalise(window)

    def batch(
        self, indices: Sequence[int], generator: torch.Generator, layout: str = "source-major"
    ) -> torch.Tensor:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        indices = [int(i) for i in indices]
        # Draw all random choices before any decoding so threads cannot reorder the generator.
        augmentations = [self.draw(generator) for _ in indices]
        if self.workers > 0 and len(indices) > 1:
            with ThreadPoolExecutor(max_workers=self.workers) as pool:
                groups = list(pool.map(self.render, indices, augmentations))
        else:
            groups = [self.render(i, a) for i, a in zip(indices, augmentations)]
        if not groups:
            return torch.empty(0, 3, self.height, self.width)
        stacked = torch.stack(groups)  # (B, 1 + S, 3, H, W)
        if layout == "copy-major":
            stacked = stacked.transpose(0, 1)
        return stacked.reshape(-1, 3, self.height, self.width)

    def _load(self, path: Path) -> torch.Tensor:
        return read_rgb(path, self.load_height, self.load_width)


def _validated_copies(
    paths: list[Path], copies: Sequence[Sequence[str | os.PathLike]] | None
) -> list[list[Path]] | None:
    if copies is None:
        return None
    if len(copies) != len(paths):
        raise SpcreidError(
            f"got synthetic copies for {len(copies)} source images but {len(paths)} sources; "
            "the synthesis cache does not match the training manifest, rebuild it"
        )
    result = [[Path(c) for c in group] for group in copies]
    expected = len(result[0]) if result else 0
    for source, group in zip(paths, result):
        if len(group) != expected:
            raise SpcreidError(
                f"source image {source} has {len(group)} synthetic copies, others have {expected}; "
                "rebuild the synthesis cache so every source has the same number S"
            )
    return result
