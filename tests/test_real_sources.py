"""SCHP's and PISE's real networks through spcreid's adapters, where their pinned sources are present.

The image has them at /opt/schp and /opt/PISE (containers/Dockerfile); elsewhere point SPCREID_SCHP_ROOT /
SPCREID_PISE_ROOT at checkouts of the pinned commits, or these tests are skipped. Random weights: what is
checked is the interface (construction without SCHP's CUDA extension or PISE's package code, the checkpoint
layouts, output shapes) and that our texture-transfer call order is PISE's own forward.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from spcreid.parsing import schp
from spcreid.parsing.run import parse_images
from spcreid.synthesis.pise import adapter

SCHP_ROOT = Path(os.environ.get("SPCREID_SCHP_ROOT", schp.DEFAULT_SCHP_ROOT))
PISE_ROOT = Path(os.environ.get("SPCREID_PISE_ROOT", adapter.DEFAULT_PISE_ROOT))


@pytest.mark.skipif(not (SCHP_ROOT / schp.NETWORK_FILE).is_file(), reason=f"no SCHP source at {SCHP_ROOT}")
def test_schp_network_loads_its_checkpoint_format_and_parses(tmp_path, one_torch_thread):
    torch.manual_seed(0)
    model = schp.build_network("schp", SCHP_ROOT)
    assert sum(p.numel() for p in model.parameters()) == 66_723_928  # ResNet-101 CE2P, LIP head
    path = tmp_path / "schp.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    loaded = schp.load_checkpoint(schp.build_network("schp", SCHP_ROOT), path)
    with torch.inference_mode():
        output = loaded(torch.zeros(1, 3, schp.INPUT_SIZE, schp.INPUT_SIZE))
    assert [tuple(t.shape) for t in output[0]] == [(1, 20, 119, 119)] * 2 and tuple(output[1][0].shape) == (
        1,
        2,
        119,
        119,
    )
    import numpy as np

    (labels,) = parse_images(loaded, [np.zeros((128, 64, 3), np.uint8)], torch.device("cpu"))
    assert labels.shape == (128, 64) and labels.max() < 20


@pytest.mark.skipif(not (PISE_ROOT / adapter.GENERATOR_FILE).is_file(), reason=f"no PISE source at {PISE_ROOT}")
def test_pise_generator_loads_and_texture_transfer_follows_its_forward(tmp_path, one_torch_thread):
    torch.manual_seed(0)
    generator = adapter.build_generator("pise", PISE_ROOT)
    assert type(generator).__name__ == "PoseGenerator"
    path = tmp_path / "latest_net_G.pth"
    torch.save(generator.state_dict(), path)
    loaded = adapter.load_generator(adapter.build_generator("pise", PISE_ROOT), path)
    image = torch.rand(1, 3, 256, 256) * 2 - 1
    pose = torch.zeros(1, 18, 256, 256)
    parsing = torch.nn.functional.one_hot(torch.randint(0, 8, (1, 256, 256)), 8).permute(0, 3, 1, 2).float()
    with torch.inference_mode():
        ours = adapter.texture_transfer(loaded, image, pose, parsing, image, parsing, (3, 4))
        theirs, _, _ = loaded(image, image, pose, pose, parsing, parsing, image, parsing)
        swapped = adapter.texture_transfer(loaded, image, pose, parsing, image.flip(3), parsing.flip(3), (3, 4))
    assert ours.shape == (1, 3, 256, 256)
    assert torch.allclose(ours, theirs, atol=1e-5)  # same submodules, same order, as PISE's forward
    assert not torch.allclose(swapped, theirs, atol=1e-3)  # the donor's clothing codes change the output
