"""PISE's texture-transfer generator, imported from its pinned source tree and run under spcreid's torch.

PISE (github Zhangjinso/PISE, commit ``PISE_COMMIT``, cloned by the image build into ``DEFAULT_PISE_ROOT``)
defines the generator as ``PoseGenerator`` in ``model/networks/generator_texture_transfer.py``; it has no
custom CUDA ops, so it runs on any GPU the main image's torch supports. Only that file and the two it
imports (``model/networks/base_function.py``, ``base_network.py``, ``util/util.py``) are executed; the
packages' ``__init__`` files, which pull in the training code written for Python 3.6, are not. Nothing is
written into the source tree.

Two things in those files cannot run as they are and are handled here without editing them:

* ``VggEncoder`` loads VGG-19 from the author's home folder when built. Its features are unused by the
  texture-transfer forward, and its weights are part of the generator's checkpoint, so the loaded module
  gets :class:`VggFeatures` (the same ``vgg`` = torchvision VGG-19 ``features``, same parameter names).
* ``util/util.py`` imports ``imageio`` and ``natsort`` for image saving / file sorting helpers the
  generator never calls; where the image lacks them, placeholder modules satisfy the import (and
  raise if one of their functions is ever called).

``PoseGenerator.forward(img1, img2, pose1, pose2, par1, par2, img3, par3, alpha=0)`` at this commit
encodes the donor ``img3`` but leaves the lines that mix its codes in commented out, so calling it returns
the source unchanged. :func:`texture_transfer` runs the same submodules in the same order
(``Zencoder`` on source and donor, ``parenc``, ``efb``, ``res``, ``dec``) and gives the source the donor's
upper- and lower-clothing style codes, the author's recipe for texture transfer (PISE issue 26: regions 3
and 4, alpha 1), except where the donor lacks the region (then the source keeps its own code).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path

from spcreid.errors import SpcreidError

PISE_REPO = "https://github.com/Zhangjinso/PISE"
PISE_COMMIT = "e1972cce23b59699a37e187f34ccaaa78de522a1"
DEFAULT_PISE_ROOT = "/opt/PISE"
GENERATOR_MODULE = "model.networks.generator_texture_transfer"
GENERATOR_FILE = Path("model") / "networks" / "generator_texture_transfer.py"
# How PISE's texture model builds its generator (painet_model_transfer.py): ngf 64, instance norm, LeakyReLU,
# no spectral norm in the generator (use_spect_g defaults to False).
GENERATOR_KWARGS = {
    "image_nc": 3,
    "structure_nc": 18,
    "ngf": 64,
    "use_spect": False,
    "norm": "instance",
    "activation": "LeakyReLU",
}
CHECKPOINT_HINT = (
    "fetch PISE's texture-transfer generator with "
    "`spcreid fetch-weights --name pise-texture --dest data/paper/weights/pise-texture/latest_net_G.pth`"
)


def vgg_features_class():
    import torchvision
    from torch import nn

    class VggFeatures(nn.Module):
        """VggEncoder's parameters (``vgg`` = VGG-19 features, frozen) without its hard-coded weight path."""

        def __init__(self):
            super().__init__()
            self.vgg = torchvision.models.vgg19(weights=None).features
            for param in self.vgg.parameters():
                param.requires_grad_(False)

        def forward(self, x):
            return self.vgg(x)

    return VggFeatures


@contextlib.contextmanager
def _temporary_modules(modules: dict[str, types.ModuleType]):
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _package(name: str, path: Path) -> types.ModuleType:
    package = types.ModuleType(name)
    package.__path__ = [str(path)]  # a package whose __init__ is not run
    return package


def _placeholder(name: str, functions: tuple[str, ...]) -> types.ModuleType:
    """An importable module whose functions say they are absent if anything ever calls them."""
    module = types.ModuleType(name)

    def absent(*args, **kwargs):
        raise RuntimeError(f"{name} is not installed; PISE's generator was not expected to need it")

    for function in functions:
        setattr(module, function, absent)
    return module


def load_pise_module(code_root: str | os.PathLike):
    """PISE's generator_texture_transfer module from ``code_root`` (see the module docstring)."""
    root = Path(code_root)
    if not (root / GENERATOR_FILE).is_file():
        raise SpcreidError(
            f"PISE source not found: {root / GENERATOR_FILE} does not exist; the image build clones {PISE_REPO} "
            f"at {PISE_COMMIT} into {DEFAULT_PISE_ROOT} (containers/Dockerfile), or pass --pise-root"
        )
    names = [n for n in list(sys.modules) if n == "model" or n.startswith(("model.", "util."))] + ["util"]
    stubs = {
        "model": _package("model", root / "model"),
        "model.networks": _package("model.networks", root / "model" / "networks"),
        "util": _package("util", root / "util"),
    }
    for optional, names in (("imageio", ()), ("natsort", ("natsorted",))):
        if importlib.util.find_spec(optional) is None:
            stubs[optional] = _placeholder(optional, names)
    hidden = {n: sys.modules.pop(n) for n in names if n in sys.modules}  # other projects' `model`/`util`
    try:
        with _temporary_modules(stubs):
            module = importlib.import_module(GENERATOR_MODULE)
            for name in [n for n in sys.modules if n.startswith(("model.", "util."))]:
                sys.modules.pop(name)  # keep PISE's generic names out of the process once loaded
    except Exception as exc:
        raise SpcreidError(
            f"PISE source {root / GENERATOR_FILE} cannot be imported ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        sys.modules.update(hidden)
    module.VggEncoder = vgg_features_class()
    return module


def build_generator(network: str = "pise", code_root: str | os.PathLike | None = None):
    """An untrained texture-transfer generator: PISE's ``PoseGenerator`` or the stand-in (``stand-in``)."""
    if network == "pise":
        return load_pise_module(code_root or DEFAULT_PISE_ROOT).PoseGenerator(**GENERATOR_KWARGS)
    if network == "stand-in":
        # lazy: the stand-in only
        from spcreid.synthesis.pise.standin import StandInGenerator

        return StandInGenerator(**GENERATOR_KWARGS)
    raise SpcreidError(f"--pise-network {network}: use pise or stand-in")


def load_generator(
    model, path: str | os.PathLike, vgg_weights: str | os.PathLike | None = None, sha256: str | None = None
):
    """Load PISE's ``latest_net_G.pth`` (a plain state dict, maybe with DataParallel's ``module.``) strictly.

    Two released forms load: the texture-transfer generator's own tensors, and those plus exactly the
    ``parnet.*`` tensors of ``generator.py`` (the form PISE publishes, :mod:`.released`), which are skipped
    and reported on stderr. The VGG features (``imgenc.*``) may be absent; they are then read from
    ``vgg_weights``.
    """
    # lazy: torch
    import torch

    from spcreid.synthesis.pise.released import PUBLISHED, released_extras

    path = Path(path)
    if not path.is_file():
        raise SpcreidError(f"PISE generator {path} does not exist; {CHECKPOINT_HINT}")
    if sha256:
        # lazy: a hash to check only
        from spcreid.acquisition.download import check_sha256

        check_sha256(path, sha256)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SpcreidError(
            f"PISE generator {path} is not a loadable torch checkpoint ({exc}); {CHECKPOINT_HINT}"
        ) from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SpcreidError(f"PISE generator {path}: expected a state dict of tensors (PISE's latest_net_G.pth)")
    state = {(k.removeprefix("module.")): v for k, v in state.items()}
    own = model.state_dict()
    extras = released_extras(model)
    found = {k: tuple(v.shape) for k, v in state.items() if k not in own}
    skipped = {}
    if found and set(found) == set(extras) and all(found[k] == tuple(extras[k]) for k in extras):
        skipped = {k: state.pop(k) for k in extras}
    missing = [k for k in own if k not in state and not k.startswith("imgenc.")]
    unexpected = [k for k in state if k not in own]
    wrong = [k for k in state if k in own and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        extra_note = (
            f", {sum(k in extras for k in unexpected)} of them named like generator.py's but not exactly its "
            f"{len(extras)} (names or shapes differ)"
            if any(k in extras for k in unexpected)
            else ""
        )
        raise SpcreidError(
            f"PISE generator {path} does not fit the texture-transfer generator (--pise-network and the file "
            f"disagree?): it holds {len(state)} tensors; {len(missing)} missing (first {missing[:3]}), "
            f"{len(unexpected)} unexpected (first {unexpected[:3]}){extra_note}, {len(wrong)} of another shape "
            f"(first {wrong[:3]}); {PUBLISHED}"
        )
    model.load_state_dict(state, strict=False)
    if skipped:
        values = sum(v.numel() for v in skipped.values())
        print(
            f"PISE generator {path}: generator.py form, {len(skipped)} parnet.* tensors ({values:,} values, "
            "its parsing net, unused by texture transfer) skipped",
            file=sys.stderr,
        )
    model.released_form = "generator.py" if skipped else "generator_texture_transfer.py"
    if any(k.startswith("imgenc.") and k not in state for k in own):
        _load_vgg(model, vgg_weights, path)
    return model.eval()


def _load_vgg(model, vgg_weights, checkpoint: Path) -> None:
    import torch

    if vgg_weights is None or not Path(vgg_weights).is_file():
        raise SpcreidError(
            f"PISE generator {checkpoint} holds no VGG-19 features; pass --vgg-weights "
            "(spcreid fetch-weights --name vgg19-imagenet)"
        )
    state = torch.load(vgg_weights, map_location="cpu", weights_only=True)
    features = {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    try:
        model.imgenc.vgg.load_state_dict(features)
    except RuntimeError as exc:
        raise SpcreidError(
            f"--vgg-weights {vgg_weights} are not torchvision VGG-19 weights ({str(exc)[:200]})"
        ) from exc


def texture_transfer(
    generator, image, pose, parsing, donor_image, donor_parsing, clothes: tuple[int, ...], return_given: bool = False
):
    """Source (N,3,256,256 in [-1,1]) re-dressed with the donors' ``clothes`` style codes -> (N,3,256,256).

    ``pose`` is (N,18,256,256) heatmaps, ``parsing`` / ``donor_parsing`` (N,8,256,256) one-hot in PISE's
    label order; ``clothes`` the PISE labels whose codes come from the donor. PISE's encoder gives an
    all-zero code for a region absent from an image (its ``exist`` flag 0), and the source's flags decide
    what is rendered, so a donor without, say, trousers would paint the source's trousers from nothing:
    there the source keeps its own code. ``return_given`` also returns the (N, len(clothes)) bool tensor
    of the codes that did come from the donor.
    """
    import torch

    codes, exist, _ = generator.Zencoder(image, parsing)
    donor_codes, donor_exist, _ = generator.Zencoder(donor_image, donor_parsing)
    clothes = list(clothes)
    given = donor_exist[:, clothes] > 0
    codes = codes.clone()
    codes[:, clothes] = torch.where(given[..., None], donor_codes[:, clothes], codes[:, clothes])
    # Pose and layout stay the source's: PISE's par2/pose2 (target) are the source's own.
    features = generator.parenc(torch.cat((parsing, parsing, pose, image), 1))
    features = generator.res(generator.efb(features, parsing, codes, exist))
    out = generator.dec(features)
    return (out, given) if return_given else out
