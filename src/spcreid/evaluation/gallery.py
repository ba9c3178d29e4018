"""Gallery modes: which gallery images each query is ranked against.

* ``multi``: the whole gallery (multi-shot).
* ``single``: per trial, one random image per gallery identity; CMC and mAP on that reduced gallery,
  averaged over trials (the PRCC paper protocol).
* ``single-cmc``: CMC as in ``single``, mAP on the whole gallery (what "cuhk03-style" toolkit
  evaluations report). Only this mode and ``multi`` can give rank-1 above mAP: with one positive per
  query, AP = 1 / rank >= the rank-1 hit.
"""

from __future__ import annotations

import numpy as np

from spcreid.errors import SpcreidError

GALLERY_MODES = ("multi", "single", "single-cmc")
SINGLE_SHOT_MODES = ("single", "single-cmc")


def check_gallery_mode(mode: str) -> None:
    if mode not in GALLERY_MODES:
        raise SpcreidError(f"unknown gallery mode '{mode}'; choose one of {list(GALLERY_MODES)}")


def single_shot_gallery(g_pids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one gallery index per identity, in increasing pid order.

    The gallery is grouped by a stable sort on pid, so a draw depends only on the seed and the
    gallery's own order (which manifests fix by sorting on path), never on hashing or set order.
    """
    order = np.argsort(g_pids, kind="stable")
    _, first, counts = np.unique(g_pids[order], return_index=True, return_counts=True)
    return order[first + rng.integers(0, counts)]


def check_trials(trials: int) -> None:
    if int(trials) != trials or trials < 1:
        raise SpcreidError(f"trials must be a positive integer for single-shot gallery modes, got {trials!r}")
