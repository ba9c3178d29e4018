"""Evaluating a trained model: features of a manifest's query and gallery rows, scored under the dataset's
protocol, written as the metrics file and its per-query arrays.

What ``spcreid train`` does after its last epoch, ``spcreid pretrained-start`` for the untrained model and
``spcreid evaluate`` for saved runs: one code path, so a run scored again gives the numbers its training wrote.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from spcreid.engine.features import FEATURE_BATCH_SIZE, extract_features, extract_tensor_features
from spcreid.errors import SpcreidError
from spcreid.evaluation.per_query import save_per_query
from spcreid.evaluation.protocols import evaluate_report
from spcreid.io import write_json


def evaluate_model(
    model: torch.nn.Module,
    test_rows: pd.DataFrame,
    protocol: str,
    height: int,
    width: int,
    device: torch.device,
    gallery_mode: str | None = None,
    workers: int = 0,
    images: torch.Tensor | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Features of the query and gallery rows, extracted once, scored in every gallery mode of the protocol.

    ``images``: the rows' images already decoded at ``height x width`` (uint8, row order), for scoring
    several models on one decoding; otherwise they are read from the files.
    Returns the metrics report (``{setting: headline metrics, ..., "settings": {setting: {mode: ...}}}``)
    and the per-query arrays (see ``spcreid.evaluation.evaluate_report``).
    """
    if test_rows.empty:
        raise SpcreidError("the manifest has no query/gallery rows (role query or gallery); nothing to evaluate")
    if images is not None:
        features = extract_tensor_features(model, images, batch_size=FEATURE_BATCH_SIZE, device=device, desc="test")
    else:
        features = extract_features(
            model, test_rows["path"].tolist(), height, width, batch_size=FEATURE_BATCH_SIZE, device=device,
            workers=workers, desc="test",
        )  # fmt: skip
    # Bars on a terminal only, as in training: a rule log keeps one line per epoch.
    return evaluate_report(
        protocol, features.numpy(), test_rows, gallery_mode=gallery_mode, progress=sys.stderr.isatty()
    )


def write_evaluation(
    metrics: dict[str, Any], per_query: dict[str, np.ndarray], out: str | os.PathLike, per_query_out: str | os.PathLike
) -> None:
    """The per-query arrays (compressed .npz), then the metrics JSON naming them; both atomic, JSON last."""
    per_query_out = Path(per_query_out)
    if per_query_out.suffix != ".npz":
        raise SpcreidError(f"per-query results file {per_query_out} must end in .npz")
    save_per_query(per_query_out, per_query)
    relative = os.path.relpath(per_query_out, Path(out).parent)
    write_json(out, {**metrics, "per_query": relative})
