"""The run's epoch log: ``log.jsonl``, one JSON object per finished epoch.

The file is rewritten atomically after every epoch, so it always holds whole lines, and after a
resume it holds exactly the epochs the checkpoint contains (lines of an epoch that was interrupted
after logging but before checkpointing are dropped).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

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
