"""The precomputed synthesis cache: a folder of clothing-changed copies and its ``index.csv``.

``index.csv`` has one row per copy with columns ``source, copy, donor, backend, path``. All three
paths are stored relative to the index's folder so that data and cache can move together (the
same rule as manifests); readers get absolute paths back. ``settings.json`` beside it records the
backend, seed and copy count, so a resumed run cannot silently mix two configurations.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from spcreid.errors import SpcreidError
from spcreid.io import atomic_path, atomic_write, resolve_file, write_json

INDEX_NAME = "index.csv"
SETTINGS_NAME = "settings.json"
INDEX_COLUMNS = ["source", "copy", "donor", "backend", "path"]


def _relative(paths, base: Path) -> list[str]:
    """Each path relative to ``base``, in POSIX form; one relpath per folder, not per file (the index is
    rewritten every few hundred sources, and per-file relpath made that a third of a synthesis run)."""
    folders: dict[str, str] = {}
    result = []
    for path in paths:
        folder, name = os.path.split(os.path.abspath(path))
        if folder not in folders:
            folders[folder] = Path(os.path.relpath(folder, base)).as_posix()
        result.append(name if folders[folder] == "." else f"{folders[folder]}/{name}")
    return result


def read_index(folder: str | os.PathLike) -> pd.DataFrame:
    """The index with absolute paths, or an empty frame when the folder has none yet."""
    folder = Path(folder).resolve()
    index_path = folder / INDEX_NAME
    if not index_path.is_file():
        return pd.DataFrame(columns=INDEX_COLUMNS)
    try:
        frame = pd.read_csv(index_path, dtype={"source": str, "donor": str, "backend": str, "path": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SpcreidError(f"synthesis index {index_path} is not a readable CSV ({exc}); delete it and rerun") from exc
    missing = [c for c in INDEX_COLUMNS if c not in frame.columns]
    if missing:
        raise SpcreidError(f"synthesis index {index_path}: missing column(s) {missing}; expected {INDEX_COLUMNS}")
    for column in ("source", "donor", "path"):
        frame[column] = [resolve_file(p, folder) for p in frame[column]]
    return frame[INDEX_COLUMNS]


def write_index(folder: str | os.PathLike, frame: pd.DataFrame) -> None:
    """Write the index atomically, sorted by source then copy, with folder-relative paths."""
    folder = Path(folder).resolve()
    out = frame[INDEX_COLUMNS].copy()
    for column in ("source", "donor", "path"):
        out[column] = _relative(out[column], folder)
    out = out.sort_values(["source", "copy"], kind="stable").reset_index(drop=True)
    with atomic_write(folder / INDEX_NAME, newline="") as handle:
        out.to_csv(handle, index=False)


def write_settings(folder: str | os.PathLike, settings: dict) -> None:
    write_json(Path(folder) / SETTINGS_NAME, settings)


def save_png(image: np.ndarray, path: Path) -> None:
    """Write one copy (H x W x 3 uint8) atomically, as every backend does."""
    with atomic_path(path) as tmp:
        # Level 1: a third of the encode time of the default for a few percent more bytes.
        Image.fromarray(image).save(tmp, format="PNG", compress_level=1)


class SynthesisCache:
    """Read access to a finished cache: the copies of each source image, in copy order."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder).resolve()
        if not (self.folder / INDEX_NAME).is_file():
            raise SpcreidError(
                f"{self.folder / INDEX_NAME} does not exist; build the cache with `spcreid synthesize --out {folder}`"
            )
        frame = read_index(self.folder)
        self._copies: dict[str, list[Path]] = {}
        for source, group in frame.groupby("source", sort=False):
            self._copies[source] = [Path(p) for p in group.sort_values("copy", kind="stable")["path"]]
        counts = {len(v) for v in self._copies.values()}
        if len(counts) > 1:
            raise SpcreidError(
                f"{self.folder / INDEX_NAME}: sources have different numbers of copies {sorted(counts)}; "
                "an interrupted run? rerun `spcreid synthesize` with the same arguments to finish it"
            )
        self.copies_per_source = counts.pop() if counts else 0
        self.backend = ",".join(sorted(set(frame["backend"]))) if len(frame) else ""

    def __len__(self) -> int:
        return len(self._copies)

    def __contains__(self, source: str | os.PathLike) -> bool:
        return resolve_file(source) in self._copies

    def sources(self) -> list[str]:
        return sorted(self._copies)

    def copies(self, source: str | os.PathLike) -> list[Path]:
        """Absolute paths of the S copies of ``source`` (an absolute image path), ordered by copy."""
        key = resolve_file(source)
        if key not in self._copies:
            raise SpcreidError(
                f"image {source} has no synthetic copies in {self.folder / INDEX_NAME} ({len(self._copies)} sources "
                f"have); if `spcreid synthesize` was stopped, rerun it with the same arguments (it resumes), "
                "otherwise synthesize again from this manifest and split"
            )
        return list(self._copies[key])
