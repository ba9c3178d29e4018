"""Dataset name -> where it lives under a root, how to read it, and its published size.

:func:`load_dataset` is the one way the rest of spcreid turns a dataset tree into a manifest.
The published counts are what :mod:`spcreid.acquisition.verify` compares a local copy against.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from spcreid.data import ltcc, prcc, vcclothes
from spcreid.data.images import list_dirs
from spcreid.data.manifest import make_manifest
from spcreid.errors import SpcreidError

Counts = dict[str, dict[str, int]]  # group -> {"ids": n, "images": n}; either key may be absent
MAX_LISTED = 20


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    title: str
    dataset_dir: Path  # relative to the root the user passes
    split_folders: tuple[str, ...]
    scan: Callable[[Path], tuple[list[dict], list[str]]]
    count_groups: Callable[[pd.DataFrame], dict[str, pd.DataFrame]]
    published_counts: Counts | None
    # False where the published figures are only approximately known: mismatches warn, not fail.
    counts_exact: bool = True
    allowed_extra_folders: tuple[str, ...] = ()
    # Folder under the root holding parsing maps when --parsing-root is not given (toy data only).
    default_parsing_subdir: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def _prcc_groups(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    test = frame[frame["split"] == "test"]
    groups = {split: frame[frame["split"] == split] for split in ("train", "val", "test")}
    for camera, camid in prcc.CAMERAS.items():
        groups[f"test/{camera}"] = test[test["camid"] == camid]
    return groups


def _folder_groups(folder_roles: dict[str, tuple[str, str]]) -> Callable[[pd.DataFrame], dict[str, pd.DataFrame]]:
    """Groups named after the dataset's own folders, plus the whole test side and everything."""

    def groups(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
        out = {
            folder: frame[(frame["split"] == split) & (frame["role"] == role)]
            for folder, (split, role) in folder_roles.items()
        }
        test_folders = "+".join(f for f, (split, _) in folder_roles.items() if split == "test")
        out[test_folders] = frame[frame["split"] == "test"]
        out["all"] = frame
        return out

    return groups


DATASETS: dict[str, DatasetSpec] = {
    "prcc": DatasetSpec(
        name="prcc",
        title="PRCC",
        dataset_dir=prcc.DATASET_DIR,
        split_folders=prcc.SPLIT_FOLDERS,
        scan=prcc.scan,
        count_groups=_prcc_groups,
        published_counts={
            "train": {"ids": 150, "images": 17896},
            "val": {"images": 5002},
            "test": {"ids": 71, "images": 10800},
            "test/A": {"images": 3384},
            "test/B": {"images": 3873},
            "test/C": {"images": 3543},
        },
    ),
    "vcclothes": DatasetSpec(
        name="vcclothes",
        title="VC-Clothes",
        dataset_dir=vcclothes.DATASET_DIR,
        split_folders=vcclothes.SPLIT_FOLDERS,
        scan=vcclothes.scan,
        count_groups=_folder_groups(vcclothes.FOLDER_ROLES),
        published_counts={
            "train": {"ids": 256, "images": 9449},
            "query": {"images": 1020},
            "gallery": {"images": 8591},
            "query+gallery": {"ids": 256},
            "all": {"ids": 512, "images": 19060},
        },
        counts_exact=False,
        notes=("VC-Clothes per-folder image counts are only weakly verified; mismatches are warnings.",),
    ),
    "ltcc": DatasetSpec(
        name="ltcc",
        title="LTCC",
        dataset_dir=ltcc.DATASET_DIR,
        split_folders=ltcc.SPLIT_FOLDERS,
        scan=ltcc.scan,
        count_groups=_folder_groups(ltcc.FOLDER_ROLES),
        published_counts={
            "train": {"ids": 77, "images": 9576},
            "query": {"images": 493},
            "test": {"images": 7050},
            "query+test": {"ids": 75},
            "all": {"ids": 152, "images": 17119},
        },
        allowed_extra_folders=ltcc.ALLOWED_EXTRA_FOLDERS,
    ),
    "toy": DatasetSpec(
        name="toy",
        title="toy (VC-Clothes layout)",
        dataset_dir=vcclothes.DATASET_DIR,
        split_folders=vcclothes.SPLIT_FOLDERS,
        scan=vcclothes.scan,
        count_groups=_folder_groups(vcclothes.FOLDER_ROLES),
        published_counts=None,
        default_parsing_subdir="parsing",
    ),
}


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise SpcreidError(f"unknown dataset '{name}'; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


def default_parsing_root(spec: DatasetSpec, root: str | os.PathLike) -> Path | None:
    return Path(root) / spec.default_parsing_subdir if spec.default_parsing_subdir else None


def locate_dataset_dirs(
    search_root: Path, spec: DatasetSpec, max_depth: int = 4, accept: Callable[[Path], bool] | None = None
) -> list[Path]:
    """Folders below ``search_root`` that hold all of the dataset's split folders.

    PRCC ships ``rgb``, ``sketch`` and ``contour`` trees with the same split folders, so where
    several match, those named like the expected folder (``rgb``) win.
    """
    found: list[Path] = []
    frontier = [search_root]
    for _ in range(max_depth + 1):
        next_frontier = []
        for folder in frontier:
            if all((folder / split).is_dir() for split in spec.split_folders):
                if accept is None or accept(folder):
                    found.append(folder)
            else:
                next_frontier += list_dirs(folder)
        frontier = next_frontier
    preferred = [f for f in found if f.name == spec.dataset_dir.name]
    return preferred or found


def layout_problems(spec: DatasetSpec, root: str | os.PathLike) -> tuple[list[str], list[str]]:
    """Problems (fatal) and warnings about the folders above the images.

    An empty problem list means the dataset folder exists, is non-empty and has every split folder.
    """
    root = Path(root)
    if not root.is_dir():
        return [
            f"root folder {root} {'is a file, not a folder' if root.exists() else 'does not exist'}; pass --root "
            f"pointing at the folder that holds {spec.dataset_dir}/"
        ], []
    dataset_dir = root / spec.dataset_dir
    if not dataset_dir.is_dir():
        expected = f"expected {spec.title} at <root>/{spec.dataset_dir.as_posix()}/"
        return [f"missing folder {dataset_dir}: {expected}" + _hint(root, spec)], []
    if not any(dataset_dir.iterdir()):
        return [f"folder {dataset_dir} is empty; extract the {spec.title} archive there (see docs/DATASETS.md)"], []
    problems = [
        f"missing folder {dataset_dir / split} (expected {', '.join(spec.split_folders)} under {dataset_dir})"
        for split in spec.split_folders
        if not (dataset_dir / split).is_dir()
    ]
    warnings = [
        f"unexpected folder {extra} ignored (expected only {', '.join(spec.split_folders)})"
        for extra in list_dirs(dataset_dir)
        if extra.name not in spec.split_folders + spec.allowed_extra_folders
    ]
    return problems, warnings


def _hint(root: Path, spec: DatasetSpec) -> str:
    # Only folders whose split folders hold images this dataset's scan accepts: a parsing-map tree mirrors
    # the split folders too, and pointing --root at it would only trade one error for many.
    candidates = locate_dataset_dirs(root, spec, max_depth=3, accept=lambda folder: _holds_images(folder, spec))
    if not candidates:
        return ""
    found = candidates[0]
    rel = spec.dataset_dir.parts
    if found.parts[-len(rel) :] == rel:
        return f"; found it at {found}, so pass --root {Path(*found.parts[: -len(rel)])}"
    return f"; the split folders are in {found}: move that folder to {root / spec.dataset_dir}"


def _holds_images(folder: Path, spec: DatasetSpec) -> bool:
    try:
        rows, problems = spec.scan(folder)
    except OSError:
        return False
    return bool(rows) and len(problems) <= len(rows)


def summarise(lines: list[str], limit: int = MAX_LISTED) -> str:
    """A bounded multi-line listing: the first ``limit`` problems and how many more there are."""
    if len(lines) == 1:
        return " " + lines[0]  # one problem, one line
    shown = lines[:limit]
    more = f"\n  ... and {len(lines) - limit} more" if len(lines) > limit else ""
    return "\n  " + "\n  ".join(shown) + more


def parsing_path(image: str | os.PathLike, root: Path, parsing_root: Path) -> Path:
    """The parsing map of ``image``: the parsing root mirrors the dataset root, with a .png suffix."""
    return (parsing_root / Path(image).relative_to(root)).with_suffix(".png")


def load_dataset(name: str, root: str | os.PathLike, parsing_root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Manifest (see :mod:`spcreid.data.manifest`) of the dataset ``name`` found under ``root``.

    Raises SpcreidError listing every layout or naming problem rather than skipping files, since a
    silently dropped image would change the evaluation.
    """
    spec = get_spec(name)
    root = Path(root).absolute()
    problems, _ = layout_problems(spec, root)
    if problems:
        raise SpcreidError(f"{spec.title} at {root} is not usable:" + summarise(problems))
    rows, problems = spec.scan(root / spec.dataset_dir)
    if problems:
        raise SpcreidError(
            f"{spec.title} at {root}: {len(problems)} problem(s); fix them or re-extract the dataset:"
            + summarise(problems)
        )
    if not rows:
        raise SpcreidError(f"{spec.title} at {root}: no images found under {root / spec.dataset_dir}")
    if parsing_root is None:
        parsing_root = default_parsing_root(spec, root)
    if parsing_root is not None:
        attach_parsing(rows, root, Path(parsing_root).absolute())
    return make_manifest(rows)


def attach_parsing(rows: list[dict], root: Path, parsing_root: Path) -> None:
    """Add each row's parsing-map path; fail naming the missing maps rather than train without them."""
    missing = []
    for row in rows:
        row["parsing"] = str(parsing_path(row["path"], root, parsing_root))
        if not os.path.isfile(row["parsing"]):
            missing.append(row["parsing"])
    if missing:
        raise SpcreidError(
            f"{len(missing)} of {len(rows)} parsing maps are missing under {parsing_root} "
            "(expected <parsing-root>/<image path relative to --root>.png); "
            "compute them or pass the right --parsing-root:" + summarise(missing)
        )
