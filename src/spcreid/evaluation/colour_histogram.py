"""A clothing-sensitive hand-crafted feature: a joint HSV colour histogram.

It knows nothing about body shape, so it finds the same outfit easily and fails when the outfit
changes. That makes it the yardstick for a clothing-change dataset: same-clothes retrieval should
be high and clothing-change retrieval near chance.

Given parsing maps it counts only the person's pixels. Without them the camera's backdrop (most of
a pedestrian crop) dominates, and strangers seen by the same camera look alike.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from spcreid.data.parsing_labels import BACKGROUND
from spcreid.errors import SpcreidError


def colour_histogram(rgb: np.ndarray, bins: int = 8, mask: np.ndarray | None = None) -> np.ndarray:
    """L2-normalised joint HSV histogram (``bins**3`` values) of an ``(H, W, 3)`` uint8 image.

    HSV rather than RGB so that a camera's brightness change moves pixels along V only and leaves
    the hue and saturation bins of a garment where they were. ``mask`` (H, W) bool selects pixels.
    """
    hsv = np.asarray(Image.fromarray(rgb, "RGB").convert("HSV"), np.int64)
    index = (hsv * bins) // 256  # 0..bins-1 per channel
    flat = (index[..., 0] * bins + index[..., 1]) * bins + index[..., 2]
    if mask is not None:
        flat = flat[mask]
    counts = np.bincount(flat.ravel(), minlength=bins**3).astype(np.float32)
    # Square root (Hellinger) so a few large bins (skin, a plain shirt) do not swamp the rest.
    counts = np.sqrt(counts)
    return counts / max(float(np.linalg.norm(counts)), 1e-12)


def colour_histogram_features(
    paths: Sequence[str | os.PathLike],
    bins: int = 8,
    parsing: Sequence[str | os.PathLike] | None = None,
    progress: bool = False,
) -> np.ndarray:
    """``(len(paths), bins**3)`` float32 matrix of L2-normalised colour histograms, in ``paths`` order.

    ``parsing``: optional parsing maps (one per image, 8-class PNGs); only non-background pixels count.
    """
    if not 2 <= bins <= 64:
        raise SpcreidError(f"bins {bins} is out of range: use 2..64 (the feature has bins**3 dimensions)")
    if parsing is not None and len(parsing) != len(paths):
        raise SpcreidError(f"got {len(parsing)} parsing maps for {len(paths)} images; give one per image")
    features = np.zeros((len(paths), bins**3), np.float32)
    for row, path in enumerate(tqdm(paths, desc="colour histograms", unit="img", disable=None if progress else True)):
        rgb = np.asarray(_open(path).convert("RGB"))
        mask = None
        if parsing is not None:
            mask = np.asarray(_open(parsing[row])) != BACKGROUND
            if mask.shape != rgb.shape[:2]:
                raise SpcreidError(
                    f"{parsing[row]}: parsing map is {mask.shape[::-1]} but its image {path} is "
                    f"{rgb.shape[1::-1]} (W, H); regenerate the parsing maps"
                )
        features[row] = colour_histogram(rgb, bins, mask)
    return features


def _open(path: str | os.PathLike) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except FileNotFoundError as exc:
        raise SpcreidError(f"{path}: image is missing") from exc
    except (OSError, UnidentifiedImageError) as exc:
        raise SpcreidError(f"{path}: not a decodable image ({exc})") from exc
