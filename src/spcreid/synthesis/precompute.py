"""Precompute the synthesis cache for one split of a manifest (``spcreid synthesize``).

The run is idempotent and resumable: a copy is skipped when it is both listed in ``index.csv`` and
present on disk; every PNG is written to a temporary name and renamed, and the index is rewritten
atomically every few hundred sources and when the run stops, so an interrupted run leaves only
finished copies behind and the next run carries on from there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from spcreid.data.manifest import read_manifest
from spcreid.errors import SpcreidError
from spcreid.guards import guard_output
from spcreid.synthesis.base import get_synthesizer, load_person
from spcreid.synthesis.cache import (
    INDEX_COLUMNS,
    INDEX_NAME,
    SETTINGS_NAME,
    read_index,
    save_png,
    write_index,
    write_settings,
)
from spcreid.synthesis.donors import choose_donors

COPIES_FOLDER = "copies"
# Backend options that change the pixels; the rest (weight paths, device, batch size) may differ
# between a run and its resumption without mixing two configurations in one cache.
OUTPUT_OPTIONS = {
    "shading_strength",
    "shading_sigma",
    "pise_label_map",
    "pise_network",
    "keypoint_min_size",
    "pise_fit",
}
INDEX_FLUSH_EVERY = 200  # sources between index rewrites: bounds lost work without rewriting per image


@dataclass(frozen=True)
class CopyJob:
    """One synthetic copy to make: which source, which donor, where the PNG goes."""

    source: Path
    source_parsing: Path
    copy: int
    donor: Path
    donor_parsing: Path
    out_path: Path


def split_rows(manifest_path: str | os.PathLike, split: str) -> pd.DataFrame:
    """The manifest rows of ``split``, sorted by path, each with a usable parsing map path."""
    manifest_path = Path(manifest_path)
    check_parsing_column(manifest_path)
    frame = read_manifest(manifest_path)
    rows = frame[frame["split"] == split].sort_values("path", kind="stable").reset_index(drop=True)
    if rows.empty:
        raise SpcreidError(
            f"manifest {manifest_path} has no rows with split '{split}' (it has {sorted(set(frame['split']))})"
        )
    # Checked up front: finding a missing map hours into a run would waste the run.
    missing = [(img, par) for img, par in zip(rows["path"], rows["parsing"]) if not os.path.isfile(par)]
    if missing:
        raise SpcreidError(
            f"manifest {manifest_path}: parsing map {missing[0][1]} of image {missing[0][0]} does not exist "
            f"({len(missing)} of {len(rows)} '{split}' maps missing); "
            "rerun `spcreid parse` (it resumes) or restore the maps"
        )
    return rows


def check_parsing_column(manifest_path: Path) -> None:
    """Fail with the offending CSV line when the parsing column is absent or has empty cells."""
    if not manifest_path.is_file():
        return  # read_manifest gives the standard "does not exist" message
    try:
        raw = pd.read_csv(manifest_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return  # read_manifest reports the unreadable CSV
    if "parsing" not in raw.columns:
        raise SpcreidError(
            f"manifest {manifest_path} has no 'parsing' column; synthesis needs a parsing map per image: "
            "run `spcreid parse --manifest ... --out DIR` (human parsing, or --maps for your own maps) and "
            "pass DIR/manifest.csv"
        )
    empty = raw.index[raw["parsing"].str.strip() == ""]
    if len(empty):
        line = int(empty[0]) + 2  # +1 for the header, +1 for 1-based line numbers
        raise SpcreidError(
            f"manifest {manifest_path} line {line} ({raw.loc[empty[0], 'path']}): empty 'parsing' cell; "
            f"{len(empty)} row(s) lack a parsing map"
        )


def plan_jobs(rows: pd.DataFrame, copies: int, seed: int, out: Path) -> list[CopyJob]:
    """All copies the split needs, in source order, with output names mirroring the dataset tree."""
    paths = [Path(p) for p in rows["path"]]
    root = Path(os.path.commonpath([str(p.parent) for p in paths]))
    keys = [p.relative_to(root).as_posix() for p in paths]
    donors = choose_donors(keys, copies, seed)
    parsing = [Path(p) for p in rows["parsing"]]
    jobs = []
    for i, (path, key) in enumerate(zip(paths, keys)):
        stem = Path(key).with_suffix("")
        for copy, d in enumerate(donors[i]):
            out_path = out / COPIES_FOLDER / stem.parent / f"{stem.name}_c{copy}.png"
            jobs.append(CopyJob(path, parsing[i], copy, paths[d], parsing[d], out_path))
    return jobs


def pending_jobs(jobs: list[CopyJob], index: pd.DataFrame) -> list[CopyJob]:
    """Jobs whose copy is not both listed in the index and present on disk."""
    listed = {(s, int(c)) for s, c, p in zip(index["source"], index["copy"], index["path"]) if os.path.isfile(p)}
    return [j for j in jobs if (str(j.source), j.copy) not in listed]


def _row(job: CopyJob, backend: str) -> dict[str, Any]:
    return {
        "source": str(job.source),
        "copy": job.copy,
        "donor": str(job.donor),
        "backend": backend,
        "path": str(job.out_path),
    }


def synthesize_in_process(
    jobs: list[CopyJob], synthesizer, backend: str, on_progress: Callable[[list[dict]], None]
) -> int:
    """Run an in-process backend source by source; returns the number of sources processed."""
    by_source: dict[Path, list[CopyJob]] = {}
    for job in jobs:
        by_source.setdefault(job.source, []).append(job)
    done_rows: list[dict] = []
    try:
        for n, source_jobs in enumerate(
            tqdm(list(by_source.values()), desc=f"synthesize ({backend})", unit="img", disable=None), 1
        ):
            source = load_person(source_jobs[0].source, source_jobs[0].source_parsing)
            donors = [load_person(j.donor, j.donor_parsing) for j in source_jobs]
            for job, image in zip(source_jobs, synthesizer.synthesize(source, donors)):
                save_png(image, job.out_path)
                done_rows.append(_row(job, backend))
            if n % INDEX_FLUSH_EVERY == 0:
                on_progress(done_rows)
                done_rows = []
    finally:
        # Also on errors and Ctrl-C: list what was finished so the next run resumes after it.
        on_progress(done_rows)
    return len(by_source)


def precompute(
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    backend: str = "parsing-swap",
    copies: int = 4,
    seed: int = 0,
    split: str = "train",
    backend_options: dict[str, Any] | None = None,
    replace_changed: bool = False,
) -> dict[str, Any]:
    """Fill ``out`` with ``copies`` synthetic copies of every ``split`` image; returns run figures.

    ``replace_changed``: a cache built with other settings is deleted and built again instead of refused
    (``guards.clear_if_changed``; the workflow's choice).
    """
    out = Path(out).resolve()
    backend_options = dict(backend_options or {})
    rows = split_rows(manifest, split)
    settings = {
        "backend": backend,
        "copies": int(copies),
        "seed": int(seed),
        "split": split,
        "backend_options": {k: str(v) for k, v in sorted(backend_options.items()) if k in OUTPUT_OPTIONS},
    }
    guard_output(
        out,
        SETTINGS_NAME,
        settings,
        (COPIES_FOLDER, INDEX_NAME, SETTINGS_NAME),
        f"{out} holds a cache built with other settings",
        "building it afresh",
        sorted(settings),
        replace_changed,
    )
    synthesizer = get_synthesizer(backend, **backend_options)
    jobs = plan_jobs(rows, copies, seed, out)
    out.mkdir(parents=True, exist_ok=True)
    write_settings(out, settings)

    index = read_index(out)
    todo = pending_jobs(jobs, index)
    # Keep the rows this plan wants and that are done; rows of redone copies are re-added when written.
    keep = {(str(j.source), j.copy) for j in jobs} - {(str(j.source), j.copy) for j in todo}
    mask = np.array([(s, int(c)) in keep for s, c in zip(index["source"], index["copy"])], dtype=bool)
    state = {"index": index.loc[mask].reset_index(drop=True)}

    def flush(new_rows: list[dict]) -> None:
        if new_rows:
            state["index"] = pd.concat(
                [state["index"], pd.DataFrame(new_rows, columns=INDEX_COLUMNS)], ignore_index=True
            )
        write_index(out, state["index"])

    start = time.perf_counter()
    if hasattr(synthesizer, "run_jobs"):  # batch backends (PISE) run many copies per forward pass
        n_sources = synthesizer.run_jobs(todo, out, on_progress=flush)
    else:
        n_sources = synthesize_in_process(todo, synthesizer, backend, on_progress=flush)
    elapsed = time.perf_counter() - start
    extra = {"clothing_codes": synthesizer.region_counts} if hasattr(synthesizer, "region_counts") else {}
    return {
        "backend": backend,
        "split": split,
        "sources": len(rows),
        "copies_per_source": int(copies),
        "sources_synthesized": n_sources,
        "copies_written": len(todo),
        "copies_skipped": len(jobs) - len(todo),
        "seconds": round(elapsed, 3),
        "images_per_s": round(n_sources / elapsed, 2) if n_sources and elapsed > 0 else None,
        "copies_per_s": round(len(todo) / elapsed, 2) if todo and elapsed > 0 else None,
        **extra,
    }
