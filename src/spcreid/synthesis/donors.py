"""Deterministic choice of clothing donors.

Each source image gets ``copies`` donors whose outfit differs from the source's. Donors are drawn
outfit first, then one image of each drawn outfit, so the copies of one source show as many
*different* outfits as the split allows (two images of the same outfit would make two near-identical
copies). Preference order: other identities' outfits; then the same identity's other outfits; and
only when the split has fewer outfits than ``copies``, several images of one outfit.

The draw for a source depends only on the seed and that source's own key, not on iteration order,
so a resumed or partial run picks exactly the donors a full run would.
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np

from spcreid.errors import SpcreidError


def _source_rng(seed: int, key: str) -> np.random.Generator:
    # crc32 is stable across processes and platforms, unlike Python's salted hash().
    return np.random.default_rng([int(seed), zlib.crc32(key.encode("utf-8"))])


class _Outfits:
    """Images grouped by outfit (pid, clothes_id), each group in key order."""

    def __init__(self, keys: Sequence[str], pids: np.ndarray, clothes: np.ndarray):
        order = np.argsort(np.asarray(keys, dtype=object), kind="stable")
        groups: dict[tuple[int, int], list[int]] = {}
        for i in order:
            groups.setdefault((int(pids[i]), int(clothes[i])), []).append(int(i))
        self.names = sorted(groups)
        self.members = [np.array(groups[name]) for name in self.names]
        self.pid = np.array([name[0] for name in self.names])
        self.clothes = np.array([name[1] for name in self.names])


def choose_donors(
    keys: Sequence[str], pids: Sequence[int], clothes: Sequence[int], copies: int, seed: int
) -> list[list[int]]:
    """For every image i, ``copies`` distinct donor indices (into the same sequences).

    ``keys`` identify images stably (e.g. paths relative to the dataset root); ``pids`` and
    ``clothes`` (outfit number within the identity) define who wears what.
    """
    if copies < 1:
        raise SpcreidError(f"--copies must be at least 1, got {copies}")
    pids, clothes = np.asarray(pids), np.asarray(clothes)
    outfits = _Outfits(keys, pids, clothes)
    chosen = []
    for i, key in enumerate(keys):
        other_person = np.flatnonzero(outfits.pid != pids[i])
        same_person = np.flatnonzero((outfits.pid == pids[i]) & (outfits.clothes != clothes[i]))
        rng = _source_rng(seed, key)
        if len(other_person) + len(same_person) >= copies:
            picked = list(rng.choice(other_person, size=min(copies, len(other_person)), replace=False))
            if len(picked) < copies:
                picked += list(rng.choice(same_person, size=copies - len(picked), replace=False))
            chosen.append([int(outfits.members[o][rng.integers(len(outfits.members[o]))]) for o in picked])
            continue
        # Fewer outfits than copies: fall back to distinct images, other identities first.
        images = [np.concatenate([outfits.members[o] for o in group]) if len(group) else np.array([], int)
                  for group in (other_person, same_person)]
        if len(images[0]) + len(images[1]) < copies:
            raise SpcreidError(
                f"image {key}: only {len(images[0]) + len(images[1])} images wear another outfit, fewer than "
                f"--copies {copies}; lower --copies or add images"
            )
        picked = list(rng.choice(images[0], size=min(copies, len(images[0])), replace=False))
        if len(picked) < copies:
            picked += list(rng.choice(images[1], size=copies - len(picked), replace=False))
        chosen.append([int(p) for p in picked])
    return chosen
