"""PISE (Zhang et al., CVPR 2021) texture transfer as an in-process synthesis backend.

PISE's generator is imported from its pinned source tree and run under spcreid's own torch, on the GPU:

* ``keypoints`` - 18 OpenPose-order keypoints per image from torchvision's keypoint R-CNN, batched;
* ``inputs``    - PISE's input layout as tensors: padded 256x256 images, one-hot parsing in PISE's label
  order, pose heatmaps; and the inverse for its outputs;
* ``adapter``   - imports PISE's generator, loads its checkpoint, runs the texture transfer;
* ``standin``   - a tiny generator with PISE's interface, for CPU tests and rehearsals;
* ``runner``    - the ``pise`` backend: batches of copies into the synthesis cache.
"""

from __future__ import annotations

import os
from pathlib import Path

from spcreid.errors import SpcreidError
from spcreid.io import sha256_file


def require_weights(path: str | os.PathLike | None, what: str, hint: str, sha256: str | None = None) -> Path:
    """Check that a weights file exists (and matches ``sha256`` when given); return its path."""
    if path is None:
        raise SpcreidError(f"{what}: no weights file given; {hint}")
    path = Path(path)
    if not path.is_file():
        raise SpcreidError(f"{what}: weights file {path} does not exist; {hint}")
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256.lower():
            raise SpcreidError(
                f"{what}: weights file {path} has sha256 {actual}, expected {sha256.lower()}; "
                f"the download is corrupt or a different file - delete it and fetch again ({hint})"
            )
    return path
