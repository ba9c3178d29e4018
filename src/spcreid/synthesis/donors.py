"""Deterministic, label-free choice of clothing donors.

The method is unsupervised, so the donors of a copy must not be picked with the identity or outfit
labels of the train split. Each source image gets ``copies`` distinct donors drawn uniformly from
the *other* images of the split. Nothing but the image keys enters the draw: permuting, hiding or
corrupting the pid and clothes columns changes no donor.

What that costs: a donor can happen to be the same person, or even the same outfit. With n images
and m images per outfit the chance per copy is about m / n (PRCC and VC-Clothes: well under 1 %;
the embedded toy set: 3 / 1199), and such a copy only repeats an outfit the person already wears,
it never gives the wrong person's clothes a positive label.

The draw for a source depends only on the seed, that source's own key and the set of keys, not on
iteration order, so a resumed or partial run picks exactly the donors a full run would.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from spcreid.errors import SpcreidError


def _source_rng(seed: int, key: str) -> np.random.Generator:
    # crc32 is stable across processes and platforms, unlike Python's salted hash().
    return np.random.default_rng([int(seed), zlib.crc32(key.encode("utf-8"))])


def choose_donors(keys: Sequence[str], copies: int, seed: int) -> list[list[int]]:
    """For every image i, ``copies`` distinct donor indices (into ``keys``), never i itself.

    ``keys`` identify images stably (e.g. paths relative to the dataset root) and must be unique.
    """
    if copies < 1:
        raise SpcreidError(f"--copies must be at least 1, got {copies}")
    keys = list(keys)
    if len(set(keys)) != len(keys):
        raise SpcreidError("donor choice: image keys are not unique; every image needs its own path")
    if len(keys) - 1 < copies:
        raise SpcreidError(
            f"only {len(keys)} images in the split, so fewer than --copies {copies} other images can donate; "
            "lower --copies or add images"
        )
    # Candidates in key order, so the draw does not depend on the order the manifest lists images in.
    order = np.argsort(np.asarray(keys, dtype=object), kind="stable")
    position = np.empty(len(keys), np.int64)
    position[order] = np.arange(len(keys))
    chosen = []
    for i, key in enumerate(keys):
        rng = _source_rng(seed, key)
        # Draw among the n - 1 others: skip the source's own slot in the sorted order.
        picks = rng.choice(len(keys) - 1, size=copies, replace=False)
        picks = picks + (picks >= position[i])
        chosen.append([int(order[p]) for p in picks])
    return chosen
