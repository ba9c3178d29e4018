"""The forms in which PISE's generator checkpoints are published, and what each holds beyond our generator.

PISE's README and ``model/painet_model_transfer.py`` (commit ``adapter.PISE_COMMIT``) say the released
texture-transfer / editing model (``latest_net_G.pth``, Google Drive id ``TEXTURE_DRIVE_ID``) was trained with
``model/networks/generator.py``. That generator is ``generator_texture_transfer.py``'s with one more submodule,
``parnet`` (a ``ParsingNet(8 + 18 * 2, 8)`` that predicts the target parsing for pose transfer), so its state
dict holds the 317 tensors texture transfer runs plus the 56 below (19,254,610 values). Texture transfer keeps
the source's parsing and never calls ``parnet``; PISE's own loader (``model/base_model.py``) goes on past such
keys. Here exactly these names with exactly these shapes are accepted; anything else is refused.
"""

from __future__ import annotations

TEXTURE_DRIVE_ID = "1fMFBIkU1AEQaa3vbhba3oV0rU5YSr7GR"
POSE_DRIVE_ID = "1gcdzahJ-pE-bSQfcnrW__iXIViH_y-FB"
RELEASED_FILE = "latest_net_G.pth"
PARNET_PREFIX = "parnet."
# generator.py's ParsingNet, name (under parnet.) -> shape, read from a generator built from PISE's source.
PARNET_SHAPES: dict[str, tuple[int, ...]] = {
    "conv1.model.2.bias": (32,),
    "conv1.model.2.weight": (32, 44, 4, 4),
    "conv1.model.5.bias": (64,),
    "conv1.model.5.weight": (64, 32, 3, 3),
    "conv2.model.2.bias": (128,),
    "conv2.model.2.weight": (128, 64, 4, 4),
    "conv2.model.5.bias": (128,),
    "conv2.model.5.weight": (128, 128, 3, 3),
    "conv3.model.2.bias": (256,),
    "conv3.model.2.weight": (256, 128, 4, 4),
    "conv3.model.5.bias": (256,),
    "conv3.model.5.weight": (256, 256, 3, 3),
    "conv4.model.2.bias": (512,),
    "conv4.model.2.weight": (512, 256, 4, 4),
    "conv4.model.5.bias": (512,),
    "conv4.model.5.weight": (512, 512, 3, 3),
    "deform3.gated_conv.bias": (512,),
    "deform3.gated_conv.weight": (512, 512, 3, 3),
    "deform3.mask_conv.bias": (512,),
    "deform3.mask_conv.weight": (512, 512, 3, 3),
    "deform4.gated_conv.bias": (512,),
    "deform4.gated_conv.weight": (512, 512, 3, 3),
    "deform4.mask_conv.bias": (512,),
    "deform4.mask_conv.weight": (512, 512, 3, 3),
    "makout.conv1.bias": (1,),
    "makout.conv1.weight": (1, 32, 3, 3),
    "makout.model.3.bias": (1,),
    "makout.model.3.weight": (1, 32, 3, 3),
    "parout.conv1.bias": (8,),
    "parout.conv1.weight": (8, 32, 3, 3),
    "parout.model.3.bias": (8,),
    "parout.model.3.weight": (8, 32, 3, 3),
    "up1.model.2.bias": (256,),
    "up1.model.2.weight": (256, 512, 3, 3),
    "up1.model.5.bias": (256,),
    "up1.model.5.weight": (256, 256, 3, 3),
    "up1.shortcut.0.bias": (256,),
    "up1.shortcut.0.weight": (512, 256, 3, 3),
    "up2.model.2.bias": (128,),
    "up2.model.2.weight": (128, 256, 3, 3),
    "up2.model.5.bias": (128,),
    "up2.model.5.weight": (128, 128, 3, 3),
    "up2.shortcut.0.bias": (128,),
    "up2.shortcut.0.weight": (256, 128, 3, 3),
    "up3.model.2.bias": (64,),
    "up3.model.2.weight": (64, 128, 3, 3),
    "up3.model.5.bias": (64,),
    "up3.model.5.weight": (64, 64, 3, 3),
    "up3.shortcut.0.bias": (64,),
    "up3.shortcut.0.weight": (128, 64, 3, 3),
    "up4.model.2.bias": (32,),
    "up4.model.2.weight": (32, 64, 3, 3),
    "up4.model.5.bias": (32,),
    "up4.model.5.weight": (32, 32, 3, 3),
    "up4.shortcut.0.bias": (32,),
    "up4.shortcut.0.weight": (64, 32, 3, 3),
}
GENERATOR_PY_EXTRAS = {PARNET_PREFIX + name: shape for name, shape in PARNET_SHAPES.items()}
PUBLISHED = (
    f"PISE publishes its texture-transfer model as {RELEASED_FILE} (Google Drive {TEXTURE_DRIVE_ID}), saved from "
    f"model/networks/generator.py: the texture-transfer generator's tensors plus {len(GENERATOR_PY_EXTRAS)} "
    f"{PARNET_PREFIX}* ones"
)


def released_extras(model) -> dict[str, tuple[int, ...]]:
    """The extra tensors (name -> shape) a released checkpoint may hold beyond ``model``'s own state dict."""
    custom = getattr(model, "released_extras", None)  # the stand-in declares its own, tiny, shapes
    return dict(custom()) if callable(custom) else dict(GENERATOR_PY_EXTRAS)
