"""A stand-in for SCHP's LIP parser: same constructor call, forward output and checkpoint layout, tiny.

Used where SCHP's 255 MB checkpoint and a GPU cannot be: tests and the CPU rehearsal. Like SCHP it
works at a quarter of the input resolution and returns ``[[parsing, fusion], [edge]]``; its logits are
1x1 convolutions of the pooled normalised pixels, so a test can set weights that make known colours
come out as known LIP classes.
"""

from __future__ import annotations

import os


def init_model(name: str = "resnet101", num_classes: int = 20, pretrained=None):
    """SCHP's ``networks.init_model`` signature; ``pretrained`` must be None (nothing is downloaded)."""
    from torch import nn
    from torch.nn import functional as F

    if pretrained is not None:
        raise ValueError("the stand-in parser has no pretrained weights")

    class StandInParser(nn.Module):
        def __init__(self):
            super().__init__()
            self.decoder = nn.Conv2d(3, num_classes, 1)
            self.fushion = nn.Conv2d(3, num_classes, 1)  # SCHP's spelling of its fusion branch
            self.edge = nn.Conv2d(3, 2, 1)

        def forward(self, x):
            pooled = F.avg_pool2d(x, 4, ceil_mode=True)
            return [[self.decoder(pooled), self.fushion(pooled)], [self.edge(pooled)]]

    return StandInParser()


def save_checkpoint(model, path: str | os.PathLike) -> None:
    """Write ``model`` in SCHP's checkpoint format: ``{"state_dict": {"module.<name>": tensor}}``."""
    # lazy: torch
    import torch

    from spcreid.io import atomic_path

    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"state_dict": state}, tmp)
