"""What a training run reads from its inputs: the manifest's train images, their synthetic copies, the test rows."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from spcreid.data.manifest import read_manifest
from spcreid.engine.pretrain import outfit_classes
from spcreid.errors import SpcreidError
from spcreid.synthesis.cache import SynthesisCache


@dataclass
class TrainingData:
    """The manifest's train images (with their synthetic copies when augmenting) and test rows."""

    paths: list[str]
    camids: np.ndarray
    copies: list[list[str]] | None
    test_rows: pd.DataFrame
    # Ground truth of the train images, read for the pseudo-label monitor (and the supervised upper
    # bound) only; the unsupervised method never sees it.
    pids: np.ndarray | None = None
    outfits: np.ndarray | None = None


def load_training_data(manifest: str | os.PathLike, synthesis: str | os.PathLike | None, copies: int) -> TrainingData:
    """Read the manifest; ``copies`` > 0 also looks up that many synthetic copies per train image."""
    frame = read_manifest(manifest)
    train = frame[frame["role"] == "train"]
    if train.empty:
        raise SpcreidError(f"manifest {manifest} has no rows with role 'train'; nothing to train on")
    test_rows = frame[frame["role"].isin(["query", "gallery"])].reset_index(drop=True)
    paths = train["path"].tolist()
    copy_paths = None
    if copies > 0:
        if synthesis is None:
            raise SpcreidError(
                "method.augment is true but no --synthesis folder was given; build the cache with "
                "`spcreid synthesize` and pass --synthesis DIR (or train an experiment without augmentation)"
            )
        cache = SynthesisCache(synthesis)
        if cache.copies_per_source < copies:
            raise SpcreidError(
                f"synthesis cache {synthesis} holds {cache.copies_per_source} copies per image but method.S is "
                f"{copies}; rebuild the cache with {copies} copies or lower method.S"
            )
        copy_paths = [[str(p) for p in cache.copies(path)[:copies]] for path in paths]
    pids = train["pid"].to_numpy(np.int64)
    outfits = outfit_classes(pids, train["clothes_id"].to_numpy(np.int64))
    return TrainingData(paths, train["camid"].to_numpy(np.int64), copy_paths, test_rows, pids, outfits)
