"""Dataset archives in the real PRCC, VC-Clothes and LTCC layouts, made of toy-rendered people.

The toy generator already writes the VC-Clothes layout with VC-Clothes' camera semantics (cameras 2 and 3
show the same outfit, camera 4 another, camera 1 either), so each real layout is a renaming of it:

- PRCC: camera A = toy camera 2, B = toy camera 3 (same clothes as A), C = toy camera 4 (other clothes);
  train/val hold the train identities (one image per camera and identity goes to val), test/{A,B,C} the test
  identities.
- VC-Clothes: the toy tree as it is.
- LTCC: train / query / test (= gallery), names PID_CLOTH_cCAM_FRAME.png.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

from PIL import Image

from spcreid.data.registry import load_dataset
from spcreid.io import atomic_path
from spcreid.toy.generator import ToyConfig, generate_toy_dataset

PRCC_CAMERAS = {2: "A", 3: "B", 4: "C"}
# The archive each fetch rule is pointed at, by dataset: (file name, top folder inside it, format).
ARCHIVES = {
    "prcc": ("prcc.zip", "prcc", "zip"),
    "vcclothes": ("VC-Clothes.zip", "VC-Clothes", "zip"),
    "ltcc": ("LTCC_ReID.tar.gz", "LTCC_ReID", "tar.gz"),
}


def _prcc_tree(frame, toy_root: Path, out: Path) -> None:
    counters: dict[tuple, int] = {}

    def next_index(key) -> int:
        counters[key] = counters.get(key, 0) + 1
        return counters[key]

    for row in frame.sort_values("path").itertuples():
        camera = PRCC_CAMERAS.get(int(row.camid))
        if camera is None:
            continue
        source = toy_root / row.path
        n = next_index("all")
        if row.split == "train":
            first = next_index(("train", row.pid, camera)) == 1
            split = "val" if first else "train"
            target = out / "prcc/rgb" / split / f"{row.pid:03d}" / f"{camera}_cropped_rgb{n:03d}.jpg"
        else:
            target = out / "prcc/rgb/test" / camera / f"{row.pid:03d}" / f"cropped_rgb{n:03d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _vcclothes_tree(frame, toy_root: Path, out: Path) -> None:
    shutil.copytree(toy_root / "VC-Clothes", out / "VC-Clothes")


def _ltcc_tree(frame, toy_root: Path, out: Path) -> None:
    folders = {"train": "train", "query": "query", "gallery": "test"}
    for n, row in enumerate(frame.sort_values("path").itertuples()):
        folder = folders[row.role]
        target = out / "LTCC_ReID" / folder / f"{row.pid:03d}_{row.clothes_id}_c{row.camid}_{n:06d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(toy_root / row.path).save(target)


TREES = {"prcc": _prcc_tree, "vcclothes": _vcclothes_tree, "ltcc": _ltcc_tree}


def _pack(tree: Path, top: str, archive: Path, fmt: str) -> None:
    files = sorted(p for p in (tree / top).rglob("*") if p.is_file())
    with atomic_path(archive) as tmp:
        if fmt == "zip":
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
                for path in files:
                    # A fixed timestamp: the same inputs give the same archive bytes (and sha256).
                    info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), date_time=(2020, 1, 1, 0, 0, 0))
                    zf.writestr(info, path.read_bytes())
        else:
            with tarfile.open(tmp, "w:gz") as tf:
                for path in files:
                    info = tf.gettarinfo(str(path), path.relative_to(tree).as_posix())
                    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
                    with path.open("rb") as handle:
                        tf.addfile(info, handle)


def build_archives(out: str | os.PathLike, config: ToyConfig, datasets=tuple(ARCHIVES)) -> dict[str, Path]:
    """Write one archive per dataset into ``out``; returns dataset -> archive path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    with tempfile.TemporaryDirectory(dir=out, prefix=".rehearsal.") as scratch:
        toy_root = Path(scratch) / "toy"
        generate_toy_dataset(toy_root, config, progress=False)
        frame = load_dataset("toy", toy_root)
        frame["path"] = [os.path.relpath(p, toy_root) if os.path.isabs(p) else p for p in frame["path"]]
        for name in datasets:
            file_name, top, fmt = ARCHIVES[name]
            tree = Path(scratch) / name
            TREES[name](frame, toy_root, tree)
            _pack(tree, top, out / file_name, fmt)
            written[name] = out / file_name
    return written
