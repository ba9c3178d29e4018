"""The run's epoch log: ``log.jsonl``, one JSON object per finished epoch, and its one printed line.

The file is rewritten atomically after every epoch, so it always holds whole lines, and after a
resume it holds exactly the epochs the checkpoint contains (lines of an epoch that was interrupted
after logging but before checkpointing are dropped).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from spcreid.clustering.dbscan import adjusted_rand_index, normalized_mutual_information
from spcreid.errors import SpcreidError
from spcreid.io import write_text


class EpochLog:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._records: list[dict[str, Any]] = []

    @property
    def records(self) -> list[dict[str, Any]]:
        return list(self._records)

    def load(self, keep_epochs: int) -> None:
        """Read the existing log, keeping the first ``keep_epochs`` epochs (1-based ``epoch`` field)."""
        self._records = [r for r in read_epoch_log(self.path) if r.get("epoch", 0) <= keep_epochs]
        self._write()

    def reset(self) -> None:
        self._records = []
        self._write()

    def append(self, record: dict[str, Any]) -> None:
        self._records.append(record)
        self._write()

    def _write(self) -> None:
        write_text(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in self._records))


def read_epoch_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SpcreidError(
                    f"{path} line {number} is not JSON ({exc}); delete the run folder and retrain"
                ) from exc
    return records


def label_quality(labels: np.ndarray, pids: np.ndarray | None, outfits: np.ndarray | None) -> dict[str, float]:
    """ARI and NMI of pseudo-labels against identities and against outfits (logging only).

    Outliers (-1) count as singleton clusters, one each: a clustering that discards half the
    images cannot score well by being right about the other half. Empty when no ground truth.
    """
    if pids is None or outfits is None:
        return {}
    labels = np.asarray(labels, dtype=np.int64)
    singletons = labels.copy()
    outliers = labels < 0
    singletons[outliers] = labels.max(initial=-1) + 1 + np.arange(int(outliers.sum()))
    values = {}
    for name, truth in (("identity", pids), ("outfit", outfits)):
        values[f"ari_{name}"] = round(adjusted_rand_index(truth, singletons), 4)
        values[f"nmi_{name}"] = round(normalized_mutual_information(truth, singletons), 4)
    return values


def epoch_summary(record: dict[str, Any], epochs: int) -> str:
    """The one line per epoch printed while training (the full record goes to log.jsonl)."""
    line = (
        f"epoch {record['epoch']}/{epochs}: loss {record['loss']:.3f}, {record['n_clusters']} clusters, "
        f"{record['n_outliers']}/{record['n_images']} outliers"
    )
    if "ari_identity" in record:
        line += (
            f", ARI id {record['ari_identity']:.2f} outfit {record['ari_outfit']:.2f}, "
            f"NMI id {record['nmi_identity']:.2f} outfit {record['nmi_outfit']:.2f}"
        )
    if "lr" in record:
        line += f", lr {record['lr']:.2e}"
    return line + f", {record['seconds']:.1f}s"
