"""VC-Clothes (Wan et al., CVPRW 2020) as distributed: ``<root>/VC-Clothes/{train,query,gallery}``.

Every image is named ``PID-CAM-CLOTHES-IDX.jpg`` (e.g. ``0001-01-01-01.jpg``); all labels come from
the name. Cameras are kept as the dataset numbers them (1..4) and so are person and outfit ids.
"""

from __future__ import annotations

import re
from pathlib import Path

from spcreid.data.images import list_dirs, list_files

DATASET_DIR = Path("VC-Clothes")
SPLIT_FOLDERS = ("train", "query", "gallery")
# folder -> (split, role) in the manifest
FOLDER_ROLES = {"train": ("train", "train"), "query": ("test", "query"), "gallery": ("test", "gallery")}
# Labels are stored as int64 and compared as integers; a 20-digit id would not fit (and no dataset has one).
MAX_ID = 2**31 - 1
NAME_PATTERN = re.compile(r"(?P<pid>\d+)-(?P<cam>\d+)-(?P<clothes>\d+)-(?P<idx>\d+)\.jpg", re.IGNORECASE | re.ASCII)
NAME_EXAMPLE = "PID-CAM-CLOTHES-IDX.jpg, e.g. 0001-01-01-01.jpg"
CAMERA_RANGE = range(1, 5)


def scan(dataset_dir: Path) -> tuple[list[dict], list[str]]:
    """Rows of every image under ``dataset_dir`` (``.../VC-Clothes``) and a message per bad entry."""
    return scan_flat_dataset(dataset_dir, FOLDER_ROLES, NAME_PATTERN, NAME_EXAMPLE, CAMERA_RANGE)


def scan_flat_dataset(
    dataset_dir: Path,
    folder_roles: dict[str, tuple[str, str]],
    pattern: re.Pattern,
    example: str,
    cameras: range,
) -> tuple[list[dict], list[str]]:
    """Rows and problems of a dataset with one flat folder per split whose file names carry every label."""
    rows: list[dict] = []
    problems: list[str] = []
    for folder_name, (split, role) in folder_roles.items():
        folder = dataset_dir / folder_name
        if folder.is_dir():
            rows += scan_flat_folder(folder, split, role, pattern, example, cameras, problems)
    return rows, problems


def scan_flat_folder(
    folder: Path,
    split: str,
    role: str,
    pattern: re.Pattern,
    example: str,
    cameras: range,
    problems: list[str],
) -> list[dict]:
    """Rows for a folder of images whose names carry every label (groups ``pid``, ``cam``, ``clothes``).

    Only the basename is matched, and in full: a parent folder that happens to look like an image
    name must never leak into the labels.
    """
    for sub in list_dirs(folder):
        problems.append(f"{sub}: unexpected folder; {folder.name}/ holds only images named {example}")
    rows = []
    for image in list_files(folder, problems):
        match = pattern.fullmatch(image.name)
        if match is None:
            problems.append(f"{image}: file name does not match {example}")
            continue
        if max(int(match[group]) for group in ("pid", "cam", "clothes")) > MAX_ID:
            problems.append(f"{image}: a number in its name exceeds {MAX_ID}; rename it as {example}")
            continue
        camid = int(match["cam"])
        if camid not in cameras:
            problems.append(f"{image}: camera {camid} is outside {cameras.start}..{cameras.stop - 1}")
            continue
        rows.append(
            {
                "path": str(image),
                "pid": int(match["pid"]),
                "camid": camid,
                "clothes_id": int(match["clothes"]),
                "split": split,
                "role": role,
            }
        )
    return rows
