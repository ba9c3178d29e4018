"""The one manifest format every dataset is turned into.

One row per image with columns ``path, pid, camid, clothes_id, split, role`` (and optionally
``parsing``, the 8-class human-parsing PNG of that image). ``clothes_id`` numbers the outfits
*within* an identity: two images show the same clothes iff they share ``pid`` and ``clothes_id``.
``split`` is train/val/test; ``role`` is train/val/query/gallery.

On disk a manifest is a CSV whose paths are relative to the CSV's own folder, so a data folder can
be moved or DVC-checked-out elsewhere; :func:`read_manifest` returns absolute paths.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from spcreid.errors import SpcreidError
from spcreid.io import atomic_write, resolve_file

COLUMNS = ["path", "pid", "camid", "clothes_id", "split", "role"]
OPTIONAL_COLUMNS = ["parsing"]
SPLITS = {"train", "val", "test"}
ROLES = {"train", "val", "query", "gallery"}
INT_COLUMNS = ("pid", "camid", "clothes_id")


def make_manifest(rows: list[dict]) -> pd.DataFrame:
    """Build a validated manifest from row dicts, sorted deterministically by role then path."""
    frame = pd.DataFrame(rows, columns=COLUMNS + [c for c in OPTIONAL_COLUMNS if rows and c in rows[0]])
    validate_manifest(frame, source="<in memory>")
    return frame.sort_values(["split", "role", "path"], kind="stable").reset_index(drop=True)


def validate_manifest(frame: pd.DataFrame, source: str) -> None:
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise SpcreidError(f"manifest {source}: missing column(s) {missing}; expected {COLUMNS}")
    for column in INT_COLUMNS:
        if not pd.api.types.is_integer_dtype(frame[column]):
            raise SpcreidError(f"manifest {source}: column '{column}' must hold integers")
    bad_split = sorted(set(frame["split"]) - SPLITS)
    if bad_split:
        raise SpcreidError(f"manifest {source}: unknown split value(s) {bad_split}; allowed {sorted(SPLITS)}")
    bad_role = sorted(set(frame["role"]) - ROLES)
    if bad_role:
        raise SpcreidError(f"manifest {source}: unknown role value(s) {bad_role}; allowed {sorted(ROLES)}")


def write_manifest(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write atomically, storing image paths relative to the manifest's folder."""
    path = Path(path)
    validate_manifest(frame, source=str(path))
    base = path.parent.resolve()
    out = frame.copy()
    for column in ["path"] + [c for c in OPTIONAL_COLUMNS if c in out.columns]:
        out[column] = [os.path.relpath(Path(p).resolve(), base) for p in out[column]]
    with atomic_write(path, newline="") as handle:
        out.to_csv(handle, index=False)


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest CSV, validate it and resolve its paths to absolute ones."""
    path = Path(path)
    if not path.is_file():
        raise SpcreidError(f"manifest {path} does not exist; build it with `spcreid prepare-data`")
    try:
        frame = pd.read_csv(path, dtype={"split": str, "role": str, "path": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SpcreidError(f"manifest {path} is not a readable CSV ({exc})") from exc
    validate_manifest(frame, source=str(path))
    base = path.parent.resolve()
    for column in ["path"] + [c for c in OPTIONAL_COLUMNS if c in frame.columns]:
        empty = frame[column].isna().to_numpy().nonzero()[0]
        if len(empty):
            raise SpcreidError(
                f"manifest {path} line {empty[0] + 2}: empty '{column}' cell; rebuild it with `spcreid prepare-data`"
            )
        frame[column] = [resolve_file(p, base) for p in frame[column]]
    return frame
