"""Builders of tiny dataset trees in the real on-disk layouts (shared by the test_data_* files).

Each tree lists its files as paths relative to the root, with the labels a person reading the
dataset's documentation would assign by hand; tests compare the loaders' output against these.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

# (path relative to root, pid, camid, clothes_id, split, role)
PRCC_FILES = [
    ("prcc/rgb/train/001/A_cropped_rgb001.jpg", 1, 0, 0, "train", "train"),
    ("prcc/rgb/train/001/B_cropped_rgb010.jpg", 1, 1, 0, "train", "train"),
    ("prcc/rgb/train/001/C_cropped_rgb100.jpg", 1, 2, 1, "train", "train"),
    ("prcc/rgb/train/012/A_cropped_rgb002.jpg", 12, 0, 0, "train", "train"),
    ("prcc/rgb/train/012/C_cropped_rgb003.jpg", 12, 2, 1, "train", "train"),
    ("prcc/rgb/val/001/B_cropped_rgb200.jpg", 1, 1, 0, "val", "val"),
    ("prcc/rgb/val/012/C_cropped_rgb201.jpg", 12, 2, 1, "val", "val"),
    ("prcc/rgb/test/A/005/cropped_rgb001.jpg", 5, 0, 0, "test", "gallery"),
    ("prcc/rgb/test/A/007/cropped_rgb002.jpg", 7, 0, 0, "test", "gallery"),
    ("prcc/rgb/test/B/005/cropped_rgb003.jpg", 5, 1, 0, "test", "query"),
    ("prcc/rgb/test/C/005/cropped_rgb004.jpg", 5, 2, 1, "test", "query"),
    ("prcc/rgb/test/C/007/cropped_rgb005.jpg", 7, 2, 1, "test", "query"),
]

VCCLOTHES_FILES = [
    ("VC-Clothes/train/0001-01-01-01.jpg", 1, 1, 1, "train", "train"),
    ("VC-Clothes/train/0001-02-01-02.jpg", 1, 2, 1, "train", "train"),
    ("VC-Clothes/train/0001-04-02-01.jpg", 1, 4, 2, "train", "train"),
    ("VC-Clothes/train/0002-03-01-01.jpg", 2, 3, 1, "train", "train"),
    ("VC-Clothes/query/0300-03-01-05.jpg", 300, 3, 1, "test", "query"),
    ("VC-Clothes/query/0301-04-02-01.jpg", 301, 4, 2, "test", "query"),
    ("VC-Clothes/gallery/0300-02-01-01.jpg", 300, 2, 1, "test", "gallery"),
    ("VC-Clothes/gallery/0300-04-03-02.jpg", 300, 4, 3, "test", "gallery"),
    ("VC-Clothes/gallery/0301-01-01-07.jpg", 301, 1, 1, "test", "gallery"),
]

LTCC_FILES = [
    ("LTCC_ReID/train/001_1_c11_015833.png", 1, 11, 1, "train", "train"),
    ("LTCC_ReID/train/001_2_c3_000120.png", 1, 3, 2, "train", "train"),
    ("LTCC_ReID/train/094_1_c1_000001.png", 94, 1, 1, "train", "train"),
    ("LTCC_ReID/query/120_3_c12_000040.png", 120, 12, 3, "test", "query"),
    ("LTCC_ReID/test/120_1_c5_000010.png", 120, 5, 1, "test", "gallery"),
    ("LTCC_ReID/test/120_3_c7_000011.png", 120, 7, 3, "test", "gallery"),
    ("LTCC_ReID/test/131_2_c2_000500.png", 131, 2, 2, "test", "gallery"),
]

TREES = {"prcc": PRCC_FILES, "vcclothes": VCCLOTHES_FILES, "ltcc": LTCC_FILES}


def write_image(path: Path, seed: int = 0, size: tuple[int, int] = (8, 16)) -> None:
    """A tiny real image (format from the suffix) whose pixels differ per seed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def write_parsing(path: Path, size: tuple[int, int] = (8, 16), top_label: int = 7) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = (np.arange(size[0] * size[1]) % (top_label + 1)).reshape(size[1], size[0]).astype(np.uint8)
    Image.fromarray(labels, mode="L").save(path)


def build_tree(root: Path, files: list[tuple], reverse: bool = False) -> Path:
    """Write the listed images under ``root`` (optionally in reverse creation order); return root."""
    entries = list(enumerate(files))
    for seed, (rel, *_labels) in reversed(entries) if reverse else entries:
        write_image(root / rel, seed=seed)
    return root


def expected_rows(root: Path, files: list[tuple]) -> list[tuple]:
    """The hand labels as (absolute path, pid, camid, clothes_id, split, role), in manifest order."""
    rows = [(str(root / rel), pid, cam, clothes, split, role) for rel, pid, cam, clothes, split, role in files]
    return sorted(rows, key=lambda r: (r[4], r[5], r[0]))


def data_parser() -> argparse.ArgumentParser:
    """A parser holding only this package's subcommands, as `spcreid` registers them."""
    from spcreid.data import commands

    parser = argparse.ArgumentParser(prog="spcreid")
    subparsers = parser.add_subparsers(dest="command", required=True)
    commands.register(subparsers)
    return parser


def run_cli(argv: list[str]) -> int:
    """Run a subcommand the way spcreid.cli.main does: SpcreidError -> exit status 2."""
    from spcreid.errors import SpcreidError

    args = data_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpcreidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
