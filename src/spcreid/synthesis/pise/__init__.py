"""PISE (Zhang et al., CVPR 2021) as a batch backend, run in its own container.

PISE needs Python 3.6 / PyTorch 1.2 and a GPU, so it cannot run inside spcreid's environment. The
pipeline is therefore split into steps that each run where they can:

* ``keypoints`` - 18 OpenPose-order keypoints per image from torchvision's keypoint R-CNN (our env);
* ``inputs``    - PISE's input layout: padded 256x256 images, 8-class parsing in PISE's label
  order, keypoint and pair CSVs (our env);
* ``runner``    - the command that runs PISE's texture transfer in ``containers/pise`` (GPU host);
* ``collect``   - PISE's outputs cropped back to the ReID size and listed in the synthesis cache.
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
