"""Guards around a training run: one trainer per run folder, and a stop when the weights run away.

The run-folder lock is an ``fcntl.flock`` on ``<run>/train.lock`` held for as long as the training
process lives: the kernel releases it when the process ends, however it ends (SIGKILL included), so a
stale lock never blocks a rerun, while a leftover trainer that is still alive keeps a second one out.
The file itself stays (deleting it would let two processes lock two different inodes of one name).
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from spcreid.errors import SpcreidError

LOCK_NAME = "train.lock"
# Largest |weight| a healthy run reaches is of order 10 (ImageNet ResNets: < 5). An Adam step moves every
# weight by about lr, so a run whose lr is off by orders of magnitude passes this within its first epoch.
WEIGHT_LIMIT = 1e4


class RunFolderLocked(SpcreidError):
    """Another live process is training in the same run folder."""


class TrainingDiverged(SpcreidError):
    """Weights or features became non-finite or exploded."""


@contextlib.contextmanager
def run_folder_lock(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold ``run_dir``'s lock for the duration of the block; refuse at once if another process holds it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunFolderLocked(
                f"run folder {run_dir} is in use by another training process (pid {holder}, lock {path}); "
                "wait for it to finish or stop it, then rerun"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock


def check_weights(model: torch.nn.Module, epoch: int, method: dict[str, Any]) -> None:
    """Stop the run when a parameter is NaN/inf or larger than WEIGHT_LIMIT in magnitude."""
    worst_name, worst = "", 0.0
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            value = parameter.detach().abs().max().item() if parameter.numel() else 0.0
            if not math.isfinite(value) or value > worst:
                worst_name, worst = name, value
            if not math.isfinite(value):
                break
    if not math.isfinite(worst) or worst > WEIGHT_LIMIT:
        raise TrainingDiverged(
            f"epoch {epoch + 1}: weight '{worst_name}' reached |w| = {worst:.3g} (limit {WEIGHT_LIMIT:g}); "
            f"training diverged: lower method.lr (now {method['lr']}) and train again; the checkpoint of the "
            "last healthy epoch is kept"
        )


def check_features(features: torch.Tensor, epoch: int, method: dict[str, Any]) -> None:
    """Stop the run when the extracted features hold NaN or inf (clustering them would be meaningless)."""
    bad = int((~torch.isfinite(features)).any(dim=1).sum()) if features.numel() else 0
    if bad:
        raise TrainingDiverged(
            f"epoch {epoch + 1}: {bad} of {features.shape[0]} train features are NaN or inf; training diverged: "
            f"lower method.lr (now {method['lr']}) and train again"
        )
