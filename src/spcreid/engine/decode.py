"""One image file to a uint8 tensor: the decoding shared by the training store and feature extraction.

Its own module so that the store (``engine/store.py``), the training images built on it
(``engine/images.py``) and feature extraction (``engine/features.py``) all read pixels the same way
without importing one another for it.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from spcreid.data.images import DECODE_ERRORS
from spcreid.errors import SpcreidError


def read_rgb(path: str | os.PathLike, height: int, width: int) -> torch.Tensor:
    """Decode ``path`` as RGB resized to ``height x width``; uint8 tensor (3, height, width)."""
    try:
        with Image.open(path) as image:
            resized = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    except FileNotFoundError:
        raise SpcreidError(f"image {path} is missing; rebuild the dataset manifest or synthesis cache") from None
    except DECODE_ERRORS as exc:
        raise SpcreidError(f"image {path} cannot be decoded ({exc}); re-extract or regenerate it") from None
    return torch.from_numpy(np.asarray(resized).copy()).permute(2, 0, 1).contiguous()
