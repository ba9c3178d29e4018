"""Bring PISE's outputs back into the synthesis cache (same layout and index as parsing-swap).

PISE names each result after its input pair (``<from stem>_<to name>_vis0.<ext>`` in the released
code); we only rely on the prefix ``jNNNNNN_``, which :mod:`.inputs` made unique per copy, and
prefer files whose name contains ``vis`` (the generated image, as opposed to saved inputs).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from spcreid.errors import SpcreidError
from spcreid.synthesis.base import load_image
from spcreid.synthesis.pise.inputs import JOBS_FILE, from_pise_image

BACKEND = "pise"
_RESULT_NAME = re.compile(r"^(j\d{6})(?:[._].*)?\.(png|jpg|jpeg)$", re.IGNORECASE)


def find_results(results_dir: str | os.PathLike) -> dict[str, Path]:
    """Map job stem (``j000123``) -> PISE's generated image for it, searching ``results_dir`` recursively."""
    found: dict[str, Path] = {}
    for path in sorted(Path(results_dir).rglob("*")):
        match = _RESULT_NAME.match(path.name)
        if not match or not path.is_file():
            continue
        stem = match.group(1)
        if stem not in found or ("vis" in path.name and "vis" not in found[stem].name):
            found[stem] = path
    return found


def collect(dataroot: str | os.PathLike, results_dir: str | os.PathLike) -> list[dict]:
    """Crop/resize every job's PISE output to its source's size and write it to the job's cache path.

    Returns index rows (``source, copy, donor, backend, path``). Raises when any job has no output,
    before writing anything, so a partial PISE run is reported instead of half-collected.
    """
    from spcreid.synthesis.precompute import save_png

    jobs_path = Path(dataroot) / JOBS_FILE
    if not jobs_path.is_file():
        raise SpcreidError(f"{jobs_path} does not exist; stage the PISE inputs first (spcreid synthesize --backend pise)")
    jobs = pd.read_csv(jobs_path, dtype={"name": str, "source": str, "donor": str, "out_path": str})
    results = find_results(results_dir)
    missing = [name for name in jobs["name"] if Path(name).stem not in results]
    if missing:
        raise SpcreidError(
            f"PISE produced no output for {len(missing)} of {len(jobs)} staged copies in {results_dir} "
            f"(first: {missing[0]}); check the PISE log, then rerun to finish"
        )
    rows = []
    for job in tqdm(jobs.itertuples(index=False), total=len(jobs), desc="collect PISE outputs", unit="copy"):
        result_path = results[Path(job.name).stem]
        image = from_pise_image(np.asarray(load_image(result_path)), (int(job.height), int(job.width)))
        save_png(image, Path(job.out_path))
        rows.append({"source": job.source, "copy": int(job.copy), "donor": job.donor, "backend": BACKEND,
                     "path": job.out_path})
    return rows
