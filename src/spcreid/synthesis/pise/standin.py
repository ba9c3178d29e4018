"""A stand-in for PISE's texture-transfer generator: same constructor, submodules, calls and checkpoint.

It has ``PoseGenerator``'s constructor keywords and forward signature, and the submodules
:func:`~spcreid.synthesis.pise.adapter.texture_transfer` calls, with PISE's call signatures and output
structures (``Zencoder(img, seg) -> (codes (N, 9, C), exist (N, 8), features)``, ``efb(x, seg, codes,
exist)``, ...), at a tiny width. Its checkpoint is a plain state dict in the form PISE publishes
``latest_net_G.pth`` (:mod:`.released`): its own tensors plus generator.py's 56 ``parnet.*`` names, here at
tiny shapes, so that every run of the stand-in goes through the loader's released-form path.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from spcreid.synthesis.pise.released import GENERATOR_PY_EXTRAS

WIDTH = 8
NUM_PARTS = 8


class _Zencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.get_code = nn.Conv2d(3, WIDTH, 4, stride=4)

    def forward(self, input, seg):
        codes = torch.tanh(self.get_code(input))
        segmap = F.interpolate(seg, size=codes.shape[2:], mode="nearest")
        area = segmap.sum((2, 3))
        part_codes = torch.einsum("bchw,bshw->bsc", codes, segmap) / area.clamp(min=1)[..., None]
        whole = codes.mean((2, 3))[:, None]
        return torch.cat((part_codes, whole), 1), (area > 0).to(codes.dtype), codes


class _Efb(nn.Module):
    def __init__(self):
        super().__init__()
        self.mix = nn.Conv2d(WIDTH, WIDTH, 1)

    def forward(self, x, segmap, style_codes, exist_codes):
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest") * exist_codes[:, :, None, None]
        style = torch.einsum("bsc,bshw->bchw", style_codes[:, :NUM_PARTS], segmap)
        return x + self.mix(style)


class StandInGenerator(nn.Module):
    def __init__(
        self,
        image_nc=3,
        structure_nc=18,
        output_nc=3,
        ngf=64,
        norm="instance",
        activation="LeakyReLU",
        use_spect=True,
        use_coord=False,
    ):
        super().__init__()
        self.Zencoder = _Zencoder()
        self.parenc = nn.Conv2d(NUM_PARTS * 2 + structure_nc + image_nc, WIDTH, 4, stride=4)
        self.efb = _Efb()
        self.res = nn.Conv2d(WIDTH, WIDTH, 3, padding=1)
        self.dec = nn.Sequential(
            nn.Upsample(scale_factor=4, mode="nearest"), nn.Conv2d(WIDTH, output_nc, 3, padding=1), nn.Tanh()
        )

    @staticmethod
    def released_extras() -> dict[str, tuple[int, ...]]:
        return {name: tuple(min(d, 2) for d in shape) for name, shape in GENERATOR_PY_EXTRAS.items()}

    def released_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict as the released file holds it: with the parsing net's tensors it never uses."""
        state = dict(self.state_dict())
        extras = self.released_extras()
        state.update({name: torch.randn(shape) for name, shape in extras.items()})
        return state

    def forward(self, img1, img2, pose1, pose2, par1, par2, img3, par3, alpha=0):
        codes, exist, _ = self.Zencoder(img1, par1)
        features = self.parenc(torch.cat((par1, par2, pose2, img1), 1))
        return self.dec(self.res(self.efb(features, par2, codes, exist))), 0, par2
