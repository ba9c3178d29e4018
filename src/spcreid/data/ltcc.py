"""LTCC (Qian et al., ACCV 2020) as distributed: ``<root>/LTCC_ReID/{train,query,test}``.

Images are named ``PID_CLOTH_cCAM_FRAME.png`` (e.g. ``001_1_c11_015833.png``); ``test`` is the
gallery. Person, outfit and camera (1..12) numbers are kept as the dataset gives them. The
distribution's ``info/`` folder (cloth-change id lists) is not needed: outfits come from the names.
"""

from __future__ import annotations

import re
from pathlib import Path

from spcreid.data.vcclothes import scan_flat_dataset

DATASET_DIR = Path("LTCC_ReID")
SPLIT_FOLDERS = ("train", "query", "test")
ALLOWED_EXTRA_FOLDERS = ("info",)
FOLDER_ROLES = {"train": ("train", "train"), "query": ("test", "query"), "test": ("test", "gallery")}
NAME_PATTERN = re.compile(r"(?P<pid>\d+)_(?P<clothes>\d+)_c(?P<cam>\d+)_(?P<frame>\d+)\.png", re.IGNORECASE | re.ASCII)
NAME_EXAMPLE = "PID_CLOTH_cCAM_FRAME.png, e.g. 001_1_c11_015833.png"
CAMERA_RANGE = range(1, 13)


def scan(dataset_dir: Path) -> tuple[list[dict], list[str]]:
    """Rows of every image under ``dataset_dir`` (``.../LTCC_ReID``) and a message per bad entry."""
    # LTCC shares VC-Clothes' flat one-folder-per-split layout; only the name pattern differs.
    return scan_flat_dataset(dataset_dir, FOLDER_ROLES, NAME_PATTERN, NAME_EXAMPLE, CAMERA_RANGE)
