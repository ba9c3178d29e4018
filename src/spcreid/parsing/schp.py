"""SCHP (Self-Correction Human Parsing, Li et al., TPAMI 2020) as spcreid's human parser.

The network is SCHP's own ``networks/AugmentCE2P.py`` imported at run time from the source tree the image
build clones at a pinned commit (``SCHP_COMMIT``, at ``DEFAULT_SCHP_ROOT``). Facts of its interface used here:

* input: the image in BGR order, scaled to [0, 1], normalised with mean (0.406, 0.456, 0.485) and std
  (0.225, 0.224, 0.229), warped into 473 x 473 for the LIP model by SCHP's affine map (box side L - 1 onto
  472, centre onto centre; aspect kept, black border; ``run.schp_affine``);
* output: ``[[parsing, fusion], [edge]]``; ``fusion`` is the final 20-class logit map at a quarter of the
  input's resolution, upsampled bilinearly (align_corners) to 473 x 473, then warped back by the inverse map;
* checkpoint: ``{"state_dict": {"module.<name>": tensor}}`` (saved from DataParallel).

SCHP's normalisation layer is InPlaceABNSync, a CUDA extension compiled when ``modules`` is imported.
At inference it is batch normalisation with running statistics followed by an activation, except that
its scale is ``|weight| + eps``. :class:`ActivatedBatchNorm` computes exactly that with plain torch ops
and is offered to AugmentCE2P as ``modules.InPlaceABNSync``, so no extension is built and any GPU
torch supports runs it. The parameter names match, so the checkpoint loads strictly.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

from spcreid.errors import SpcreidError

SCHP_REPO = "https://github.com/GoGoDuck912/Self-Correction-Human-Parsing"
SCHP_COMMIT = "eb84c432cc697f494d99662a05f2335eb2f26095"
DEFAULT_SCHP_ROOT = "/opt/schp"
NETWORK_FILE = Path("networks") / "AugmentCE2P.py"
INPUT_SIZE = 473
NUM_LIP_CLASSES = 20
BGR_MEAN = (0.406, 0.456, 0.485)
BGR_STD = (0.225, 0.224, 0.229)
WEIGHTS_HINT = "fetch them with `spcreid fetch-weights --name schp-lip --dest PATH`"


def activated_batch_norm_class():
    import torch
    from torch import nn
    from torch.nn import functional as F

    class ActivatedBatchNorm(nn.Module):
        """InPlaceABN(Sync)'s inference forward without its CUDA extension (same parameters and buffers)."""

        def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, activation="leaky_relu", slope=0.01):
            super().__init__()
            if activation not in ("leaky_relu", "elu", "none"):
                raise ValueError(f"unknown activation {activation}")
            self.eps, self.momentum, self.activation, self.slope = eps, momentum, activation, slope
            self.affine = affine
            if affine:
                self.weight = nn.Parameter(torch.ones(num_features))
                self.bias = nn.Parameter(torch.zeros(num_features))
            else:
                self.register_parameter("weight", None)
                self.register_parameter("bias", None)
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))

        def forward(self, x):
            if self.training:
                raise RuntimeError("ActivatedBatchNorm is for inference only (SCHP is not trained here)")
            scale = torch.rsqrt(self.running_var + self.eps)
            shift = -self.running_mean * scale
            if self.affine:
                gamma = self.weight.abs() + self.eps  # InPlaceABN keeps the scale positive this way
                scale, shift = scale * gamma, shift * gamma + self.bias
            y = x * scale[None, :, None, None] + shift[None, :, None, None]
            if self.activation == "leaky_relu":
                return F.leaky_relu(y, self.slope)
            if self.activation == "elu":
                return F.elu(y)
            return y

    return ActivatedBatchNorm


def load_schp_module(code_root: str | os.PathLike):
    """SCHP's AugmentCE2P module from ``code_root``, with :class:`ActivatedBatchNorm` as its InPlaceABNSync."""
    root = Path(code_root)
    source = root / NETWORK_FILE
    if not source.is_file():
        raise SpcreidError(
            f"SCHP source not found: {source} does not exist; the image build clones {SCHP_REPO} at "
            f"{SCHP_COMMIT} into {DEFAULT_SCHP_ROOT} (containers/Dockerfile), or pass --schp-root"
        )
    abn = activated_batch_norm_class()
    shim = types.ModuleType("modules")
    shim.InPlaceABNSync = shim.InPlaceABN = shim.ABN = abn
    saved = sys.modules.get("modules")
    sys.modules["modules"] = shim  # only while AugmentCE2P runs its `from modules import ...`
    try:
        spec = importlib.util.spec_from_file_location("spcreid_schp_augmentce2p", source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as exc:
        raise SpcreidError(f"SCHP source {source} cannot be imported ({type(exc).__name__}: {exc})") from exc
    finally:
        if saved is None:
            sys.modules.pop("modules", None)
        else:
            sys.modules["modules"] = saved
    return module


def build_network(network: str, code_root: str | os.PathLike | None):
    """An untrained parser with SCHP's LIP interface: ``schp`` (the real one) or ``stand-in``."""
    if network == "schp":
        return load_schp_module(code_root or DEFAULT_SCHP_ROOT).resnet101(num_classes=NUM_LIP_CLASSES, pretrained=None)
    if network == "stand-in":
        # lazy: the stand-in only
        from spcreid.parsing.standin import init_model

        return init_model("resnet101", num_classes=NUM_LIP_CLASSES, pretrained=None)
    raise SpcreidError(f"--network {network}: use schp or stand-in")


def load_checkpoint(model, path: str | os.PathLike, sha256: str | None = None):
    """Load SCHP's checkpoint format into ``model``; every failure names the file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise SpcreidError(f"parser weights {path} do not exist; {WEIGHTS_HINT}")
    if sha256:
        # lazy: a hash to check only
        from spcreid.acquisition.download import check_sha256

        check_sha256(path, sha256)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SpcreidError(
            f"parser weights {path} are not a loadable torch checkpoint ({exc}); {WEIGHTS_HINT}"
        ) from exc
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise SpcreidError(
            f"parser weights {path}: expected SCHP's checkpoint format {{'state_dict': ...}}, "
            f"got {type(checkpoint).__name__} with keys "
            f"{sorted(checkpoint)[:5] if isinstance(checkpoint, dict) else '-'}"
        )
    state = {(k.removeprefix("module.")): v for k, v in checkpoint["state_dict"].items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise SpcreidError(
            f"parser weights {path} do not fit the network (--network and the file disagree?): {str(exc)[:300]}"
        ) from exc
    return model.eval()
