"""Learning-rate schedule: linear warm-up (Section 4.1), then constant or step decay.

The paper warms up linearly over the first E_warmup epochs "from R/E_warmup to R" and says nothing
about what follows; ``constant`` (the default) keeps R, ``step`` multiplies it by ``gamma`` at each
epoch listed in ``steps`` (the usual ReID multi-step schedule). Epochs count from 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from spcreid.errors import SpcreidError

LR_SCHEDULES = ("constant", "step")


def learning_rate(
    epoch: int,
    base_lr: float,
    warmup_epochs: int,
    schedule: str = "constant",
    steps: Sequence[int] = (),
    gamma: float = 0.1,
) -> float:
    """The learning rate of (0-based) ``epoch``: base_lr * (epoch + 1) / warmup_epochs while warming up."""
    if schedule not in LR_SCHEDULES:
        raise SpcreidError(f"method.lr_schedule is '{schedule}'; use one of {list(LR_SCHEDULES)}")
    if warmup_epochs > 0 and epoch < warmup_epochs:
        return base_lr * (epoch + 1) / warmup_epochs
    if schedule == "step":
        return base_lr * gamma ** sum(1 for step in steps if epoch >= step)
    return base_lr


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
