"""Global pooling of a backbone's feature map into one vector per image.

The paper pools with GAP; Cluster Contrast, the baseline it builds on, uses generalised-mean
(GeM) pooling with a learnable exponent. Both are offered so the difference can be measured.
"""

from __future__ import annotations

import torch
from torch import nn

from spcreid.errors import SpcreidError

POOLINGS = ("avg", "gem", "gem-learnable")


class GeneralizedMeanPool(nn.Module):
    """GeM: ``(mean(x^p))^(1/p)`` over the spatial axes; p=1 is average pooling, p->inf max pooling.

    ``eps`` keeps the fractional power defined where ReLU outputs are exactly zero.
    """

    def __init__(self, p: float = 3.0, learnable: bool = False, eps: float = 1e-6):
        super().__init__()
        if p <= 0:
            raise SpcreidError(f"GeM pooling: exponent p must be positive, got {p}")
        initial = torch.tensor(float(p))
        if learnable:
            self.p = nn.Parameter(initial)
        else:
            self.register_buffer("p", initial)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(-2, -1)).pow(1.0 / self.p)

    def extra_repr(self) -> str:
        return f"p={float(self.p):.3g}, learnable={isinstance(self.p, nn.Parameter)}, eps={self.eps}"


class GlobalAvgPool(nn.Module):
    """GAP, as the paper pools its 2048-d test features."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(-2, -1))


def build_pooling(name: str) -> nn.Module:
    """``avg`` (GAP), ``gem`` (p fixed at 3) or ``gem-learnable`` (p starts at 3, as Cluster Contrast)."""
    if name == "avg":
        return GlobalAvgPool()
    if name == "gem":
        return GeneralizedMeanPool(p=3.0, learnable=False)
    if name == "gem-learnable":
        return GeneralizedMeanPool(p=3.0, learnable=True)
    raise SpcreidError(f"unknown pooling '{name}' (method.pooling in params.yaml); choose one of {list(POOLINGS)}")
