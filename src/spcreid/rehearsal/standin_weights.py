"""Stand-in weight files with the real files' formats, for CPU tests and the rehearsal profile.

Each is randomly initialised from ``seed`` and saved exactly as the real file is laid out, so the code that
loads the real weights loads these unchanged:

* ``schp-lip``          the stand-in parser (spcreid.parsing.standin) in SCHP's {"state_dict": {"module.*"}}
* ``pise-texture``      the stand-in generator (spcreid.synthesis.pise.standin) as a plain state dict in
                        PISE's released form (with generator.py's unused ``parnet.*`` tensors)
* ``keypointrcnn-coco`` torchvision's real keypointrcnn_resnet50_fpn, random weights, torchvision's format
* ``resnet50-imagenet`` torchvision's real resnet50, random weights, torchvision's format
"""

from __future__ import annotations

import os
from pathlib import Path

from spcreid.errors import SpcreidError
from spcreid.io import atomic_path, sha256_file

STAND_INS = ("schp-lip", "pise-texture", "keypointrcnn-coco", "resnet50-imagenet")


def make_stand_in(name: str, dest: str | os.PathLike, seed: int = 0) -> tuple[Path, str]:
    """Write stand-in weights ``name`` to ``dest``; returns the path and its sha256."""
    import torch

    if name not in STAND_INS:
        raise SpcreidError(f"--name {name}: stand-ins exist for {', '.join(STAND_INS)}")
    dest = Path(dest)
    torch.manual_seed(seed)
    if name == "schp-lip":
        # lazy: this stand-in only
        from spcreid.parsing.standin import init_model, save_checkpoint

        save_checkpoint(init_model("resnet101", num_classes=20, pretrained=None), dest)
    else:
        if name == "pise-texture":
            # lazy: this stand-in only
            from spcreid.synthesis.pise.adapter import GENERATOR_KWARGS
            from spcreid.synthesis.pise.standin import StandInGenerator

            model = StandInGenerator(**GENERATOR_KWARGS)
            with atomic_path(dest) as tmp:
                torch.save(model.released_state_dict(), tmp)
            return dest, sha256_file(dest)
        elif name == "keypointrcnn-coco":
            from torchvision.models.detection import keypointrcnn_resnet50_fpn

            model = keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_keypoints=17)
        else:
            from torchvision.models import resnet50

            model = resnet50(weights=None)
        with atomic_path(dest) as tmp:
            torch.save(model.state_dict(), tmp)
    return dest, sha256_file(dest)
