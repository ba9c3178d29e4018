"""ReID backbones: a ResNet trunk, global pooling and a BN neck that outputs unit-length features.

The layout follows the paper (ResNet-50, last stride 1, GAP, 2048-d) and Cluster Contrast, the
baseline it builds on (BatchNorm1d neck whose bias is frozen at zero, features L2-normalised).
Besides ResNet-50 and ResNet-18 there are narrow ResNet-18s for toy data on a 2-core CPU:
``resnet18-small``, the ResNet-18 block layout at half width (32-64-128-256 channels, 256-d features),
and ``resnet18-tiny`` at quarter width (16-32-64-128, 128-d; about a third of the small one's CPU time
per image).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from spcreid.errors import SpcreidError, torch_load_problem
from spcreid.models.pooling import build_pooling

ARCHS = ("resnet50", "resnet18", "resnet18-small", "resnet18-tiny")
# Channels of the first stage of the narrow ResNet-18s (torchvision's is 64).
NARROW_BASE_WIDTHS = {"resnet18-small": 32, "resnet18-tiny": 16}
TRUNK_STAGES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


class ReIDModel(nn.Module):
    """trunk -> pooling -> BatchNorm1d neck -> L2 normalisation; ``forward`` returns (B, feature_dim)."""

    def __init__(self, trunk: nn.Sequential, trunk_channels: int, pooling: nn.Module):
        super().__init__()
        self.trunk = trunk
        self.pool = pooling
        self.neck = nn.BatchNorm1d(trunk_channels)
        nn.init.ones_(self.neck.weight)
        nn.init.zeros_(self.neck.bias)
        # A frozen zero bias keeps the neck a pure per-channel rescaling: a learnable shift would
        # move all features in the same direction and weaken the cosine similarities the
        # contrastive loss works with (as in Cluster Contrast).
        self.neck.bias.requires_grad_(False)
        self.feature_dim = trunk_channels

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolutional stage's output, (B, C, H/16, W/16) with last stride 1."""
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(self.feature_map(x)).flatten(1)
        return F.normalize(self.neck(pooled), dim=1)


def build_model(
    arch: str,
    pretrained: str | os.PathLike | None = None,
    pooling: str = "avg",
    last_stride: int = 1,
) -> ReIDModel:
    """Build a ReID model; random init (seed it with ``torch.manual_seed``) unless ``pretrained``.

    ``pretrained`` is a local torchvision ImageNet state dict for the same arch (its ``fc`` head is
    ignored); the neck always starts fresh.
    """
    if last_stride not in (1, 2):
        raise SpcreidError(f"last_stride must be 1 or 2, got {last_stride}")
    trunk, channels = _build_trunk(arch, last_stride)
    if pretrained is not None:
        load_trunk_weights(trunk, Path(pretrained), arch)
    return ReIDModel(trunk, channels, build_pooling(pooling))


def _build_trunk(arch: str, last_stride: int) -> tuple[nn.Sequential, int]:
    if arch in NARROW_BASE_WIDTHS:
        width = NARROW_BASE_WIDTHS[arch]
        return _narrow_resnet18(width, last_stride), 8 * width
    # Imported here: torchvision's package import pulls in torch._dynamo (about 1.7 s), a tenth of an
    # embedded-profile job, which the narrow ResNets do not need.
    import torchvision

    if arch == "resnet50":
        net, channels = torchvision.models.resnet50(weights=None), 2048
    elif arch == "resnet18":
        net, channels = torchvision.models.resnet18(weights=None), 512
    else:
        raise SpcreidError(f"unknown arch '{arch}' (train.arch in params.yaml); choose one of {list(ARCHS)}")
    if last_stride == 1:
        _remove_downsampling(net.layer4[0])
    # Same child names as torchvision's ResNet, so its state dict keys load unchanged.
    return nn.Sequential(OrderedDict((name, getattr(net, name)) for name in TRUNK_STAGES)), channels


def _remove_downsampling(block: nn.Module) -> None:
    """Give every strided convolution of the block stride 1 (3x3 path and 1x1 shortcut alike).

    Only strides change, not weight shapes, so ImageNet weights still fit.
    """
    for module in block.modules():
        if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
            module.stride = (1, 1)


class BasicBlock(nn.Module):
    """ResNet's two-convolution residual block, with torchvision's submodule names (conv1, bn1, conv2, bn2,
    downsample) so that narrow trunks keep the state-dict keys they had when built from torchvision's."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + shortcut)


def _narrow_resnet18(width: int, last_stride: int) -> nn.Sequential:
    stages: list[tuple[str, nn.Module]] = [
        ("conv1", nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)),
        ("bn1", nn.BatchNorm2d(width)),
        ("relu", nn.ReLU(inplace=True)),
        ("maxpool", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
    ]
    in_channels = width
    for index, (multiplier, stride) in enumerate(((1, 1), (2, 2), (4, 2), (8, last_stride)), start=1):
        out_channels = width * multiplier
        shortcut = None
        if stride != 1 or in_channels != out_channels:
            shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        stage = nn.Sequential(
            BasicBlock(in_channels, out_channels, stride, shortcut), BasicBlock(out_channels, out_channels)
        )
        stages.append((f"layer{index}", stage))
        in_channels = out_channels
    trunk = nn.Sequential(OrderedDict(stages))
    for module in trunk.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return trunk


def load_trunk_weights(trunk: nn.Sequential, path: Path, arch: str) -> None:
    """Load a torchvision ResNet state dict into ``trunk``, refusing anything that does not fit exactly."""
    state = _read_state_dict(path)
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    expected = trunk.state_dict()
    # Old checkpoints predate BatchNorm's batch counter; it carries no learned information.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if items:
            problems.append(f"{len(items)} {label} (e.g. {', '.join(items[:3])})")
    if problems:
        source = (
            f"a trunk written by `spcreid pretrain-backbone --arch {arch}`"
            if arch in NARROW_BASE_WIDTHS
            else f"torchvision's {arch} ImageNet state dict"
        )
        raise SpcreidError(
            f"pretrained weights {path} do not fit arch '{arch}': {'; '.join(problems)}. "
            f"Point train.pretrained at {source} or set it to null"
        )
    trunk.load_state_dict(state, strict=False)


def _read_state_dict(path: Path) -> Mapping[str, torch.Tensor]:
    if not path.is_file():
        raise SpcreidError(f"pretrained weights {path} not found; download them there or set train.pretrained to null")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and EOF errors alike for a damaged file
        raise SpcreidError(
            f"pretrained weights {path} cannot be read as a PyTorch state dict "
            f"({type(exc).__name__}: {torch_load_problem(exc)}); "
            "download the file again (train.pretrained)"
        ) from exc
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise SpcreidError(
            f"pretrained weights {path} hold no state dict (name -> tensor mapping); point train.pretrained at one"
        )
    return state
