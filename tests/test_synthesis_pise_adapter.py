"""PISE in process: source import, checkpoint loading, the texture transfer's inputs, and a cache run on CPU."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from spcreid import cli
from spcreid.data.manifest import make_manifest, write_manifest
from spcreid.data.parsing_labels import LOWER_CLOTHES, UPPER_CLOTHES
from spcreid.errors import SpcreidError
from spcreid.rehearsal.standin_weights import make_stand_in
from spcreid.synthesis.cache import SynthesisCache, read_index
from spcreid.synthesis.pise import adapter, inputs
from spcreid.synthesis.pise.runner import PiseSynthesizer
from spcreid.synthesis.precompute import precompute

H, W = 64, 32


def fixed_keypoints(images):
    kp = np.full((18, 2), -1)
    kp[0] = (8, 16)  # nose
    kp[1] = (16, 16)  # neck
    return [kp.copy() for _ in images]


@pytest.fixture(scope="module")
def keypoint_weights(tmp_path_factory):
    """torchvision's real keypoint R-CNN with random weights, in torchvision's file format."""
    return make_stand_in("keypointrcnn-coco", tmp_path_factory.mktemp("kp") / "keypointrcnn.pth", seed=0)[0]


@pytest.fixture()
def checkpoint(tmp_path):
    return make_stand_in("pise-texture", tmp_path / "pise" / "latest_net_G.pth", seed=0)[0]


def person_tree(root, count=4):
    rows = []
    for n in range(count):
        image = np.full((H, W, 3), (40 * n, 200 - 40 * n, 90), np.uint8)
        parsing = np.zeros((H, W), np.uint8)
        parsing[12:36, 6:26] = UPPER_CLOTHES
        parsing[36:58, 8:24] = LOWER_CLOTHES
        path = root / "images" / f"{n // 2:03d}" / f"p{n}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
        parsing_path = root / "parsing" / path.relative_to(root / "images")
        parsing_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(parsing, mode="L").save(parsing_path)
        rows.append(
            {
                "path": str(path),
                "pid": n // 2,
                "camid": n % 2,
                "clothes_id": n % 2,
                "split": "train",
                "role": "train",
                "parsing": str(parsing_path),
            }
        )
    manifest = root / "manifest.csv"
    write_manifest(make_manifest(rows), manifest)
    return manifest


def test_generator_gets_pise_inputs_and_donor_clothing_codes(checkpoint, one_torch_thread):
    synth = PiseSynthesizer(
        pise_checkpoint=checkpoint.parent, pise_network="stand-in", device="cpu", keypoints_of=fixed_keypoints
    )
    generator = synth.generator()
    seen = {"zencoder": [], "parenc": [], "efb": []}
    generator.Zencoder.register_forward_hook(lambda m, args, out: seen["zencoder"].append((args, out)))
    generator.parenc.register_forward_hook(lambda m, args, out: seen["parenc"].append(args))
    generator.efb.register_forward_hook(lambda m, args, out: seen["efb"].append(args))
    from spcreid.synthesis.base import check_person

    parsing = np.zeros((H, W), np.uint8)
    parsing[10:40, 8:24] = UPPER_CLOTHES
    source = check_person(np.full((H, W, 3), 200, np.uint8), parsing, "source")
    donor = check_person(np.full((H, W, 3), 10, np.uint8), parsing, "donor")
    (copy,) = synth.generate([source], fixed_keypoints([0]), [donor])
    assert copy.shape == (H, W, 3) and copy.dtype == np.uint8

    (src_img, src_par), src_out = seen["zencoder"][0]
    (donor_img, _), donor_out = seen["zencoder"][1]
    expected_img, expected_par, expected_pose = inputs.person_tensors(
        source.image, source.parsing, fixed_keypoints([0])[0]
    )
    assert src_img.shape == (1, 3, 256, 256) and torch.equal(src_img[0], expected_img)
    assert torch.equal(src_par[0], expected_par) and (src_img[0, :, :, :40] == 1).all()  # white padding
    assert torch.equal(donor_img[0], inputs.person_tensors(donor.image, donor.parsing, None)[0])
    (par_input,) = seen["parenc"][0]
    # PISE's parenc input: cat(par1, par2, pose2, img1) = 8 + 8 + 18 + 3 channels, pose = our heatmaps
    assert par_input.shape == (1, 37, 256, 256)
    assert torch.equal(par_input[0, 16:34], expected_pose) and expected_pose[0].max() == 1.0
    _, _, codes, exist = seen["efb"][0]
    clothes = list(inputs.clothes_labels("issue20"))  # PISE labels 3 (upper) and 4 (lower)
    others = [i for i in range(9) if i not in clothes]
    assert torch.equal(codes[:, clothes], donor_out[0][:, clothes])
    assert torch.equal(codes[:, others], src_out[0][:, others])
    assert torch.equal(exist, src_out[1])


def test_cache_run_writes_and_indexes_like_parsing_swap(
    tmp_path, checkpoint, keypoint_weights, capsys, one_torch_thread
):
    manifest = person_tree(tmp_path / "data")
    out = tmp_path / "synth"
    # The command line the synthesize_pise rule runs, with the stand-in generator and detector.
    argv = [
        "synthesize",
        "--manifest",
        str(manifest),
        "--backend",
        "pise",
        "--copies",
        "2",
        "--seed",
        "0",
        "--pise-checkpoint",
        str(checkpoint),
        "--keypoint-weights",
        str(keypoint_weights),
        "--pise-network",
        "stand-in",
        "--device",
        "cpu",
        "--pise-batch",
        "3",
        "--keypoint-min-size",
        "64",
        "--out",
        str(out),
    ]
    assert cli.main(argv) == 0
    stats = json.loads(capsys.readouterr().out.split("\n}\n")[0] + "\n}")
    assert stats["copies_written"] == 8 and stats["sources_synthesized"] == 4 and stats["backend"] == "pise"
    # Every person of the tree wears both garments, so every copy takes both codes from its donor.
    assert stats["clothing_codes"] == {
        "upper_clothes": {"donor": 8, "source": 0},
        "lower_clothes": {"donor": 8, "source": 0},
    }
    options = {
        "pise_checkpoint": str(checkpoint),
        "pise_network": "stand-in",
        "device": "cpu",
        "batch_size": 3,
        "keypoint_weights": str(keypoint_weights),
        "keypoint_min_size": 64,
    }
    cache = SynthesisCache(out)
    assert len(cache) == 4 and cache.copies_per_source == 2 and cache.backend == "pise"
    index = read_index(out)
    for row in index.itertuples():
        copy = np.asarray(Image.open(row.path))
        assert copy.shape == (H, W, 3)
        assert row.path.startswith(str(out / "copies")) and row.path.endswith(f"_c{row.copy}.png")
    assert not list(out.rglob(".*.png"))  # no temporary left behind
    again = precompute(manifest, out, backend="pise", copies=2, seed=0, backend_options=options)
    assert again["copies_written"] == 0 and again["copies_skipped"] == 8


def test_checkpoint_and_source_errors_name_the_file(tmp_path):
    def build():
        return adapter.build_generator("stand-in")

    with pytest.raises(SpcreidError, match=r"absent\.pth does not exist; fetch PISE's texture-transfer generator"):
        adapter.load_generator(build(), tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"nope")
    with pytest.raises(SpcreidError, match=r"junk\.pth is not a loadable torch checkpoint"):
        adapter.load_generator(build(), junk)
    foreign = tmp_path / "schp.pth"
    make_stand_in("schp-lip", foreign)
    with pytest.raises(SpcreidError, match=r"schp\.pth: expected a state dict of tensors"):
        adapter.load_generator(build(), foreign)
    other = tmp_path / "other.pth"
    torch.save({"module.Zencoder.get_code.weight": torch.zeros(1)}, other)
    with pytest.raises(SpcreidError, match=r"other\.pth does not fit the texture-transfer generator"):
        adapter.load_generator(build(), other)
    with pytest.raises(SpcreidError, match=r"PISE source not found: .*generator_texture_transfer.py does not exist"):
        adapter.build_generator("pise", tmp_path / "no-pise")
    with pytest.raises(SpcreidError, match="no --pise-checkpoint given"):
        PiseSynthesizer(device="cpu").generator()
    with pytest.raises(SpcreidError, match="--pise-label-map 'x' is unknown"):
        PiseSynthesizer(pise_label_map="x")


def test_missing_parsing_maps_fail_before_any_work(tmp_path, checkpoint):
    manifest = person_tree(tmp_path / "data")
    next((tmp_path / "data" / "parsing").rglob("p1.png")).unlink()
    with pytest.raises(SpcreidError, match=r"parsing map .*p1\.png of image .* does not exist \(1 of 4"):
        precompute(
            manifest,
            tmp_path / "synth",
            backend="pise",
            copies=1,
            backend_options={"pise_checkpoint": str(checkpoint), "pise_network": "stand-in", "device": "cpu"},
        )
    assert not (tmp_path / "synth").exists()


def test_pise_source_tree_is_imported_without_its_package_inits(tmp_path):
    # Laid out like PISE: the generator module imports base_function and util.util as PISE's does; the
    # package __init__ files would fail (PISE's pull in Python-3.6-only training code) and must not run.
    net = tmp_path / "model" / "networks"
    net.mkdir(parents=True)
    (tmp_path / "util").mkdir()
    (tmp_path / "model" / "__init__.py").write_text("raise ImportError('package init ran')\n")
    (net / "__init__.py").write_text("raise ImportError('package init ran')\n")
    (net / "base_function.py").write_text(
        "import torch.nn as nn\nclass VggEncoder(nn.Module):\n"
        "    def __init__(self):\n        raise FileNotFoundError('/home/zjs/.torch/models/vgg19-dcbb9e9d.pth')\n"
    )
    (tmp_path / "util" / "util.py").write_text(
        "import imageio\nfrom natsort import natsorted\ndef feature_normalize(x):\n    return x\n"
    )
    (net / "generator_texture_transfer.py").write_text(
        "import torch.nn as nn\nfrom model.networks.base_function import *\nfrom util.util import feature_normalize\n"
        "class PoseGenerator(nn.Module):\n"
        "    def __init__(self, image_nc=3, structure_nc=18, output_nc=3, ngf=64, norm='instance',\n"
        "                 activation='LeakyReLU', use_spect=True, use_coord=False):\n"
        "        super().__init__()\n        self.imgenc = VggEncoder()\n"
    )
    generator = adapter.build_generator("pise", tmp_path)
    assert type(generator.imgenc).__name__ == "VggFeatures"
    assert "imgenc.vgg.0.weight" in generator.state_dict()
    assert not any(name == "model" or name.startswith(("model.", "util")) for name in sys.modules)


def test_released_form_with_generator_py_parnet_tensors_loads_and_is_reported(checkpoint, capsys):
    state = torch.load(checkpoint, weights_only=True)
    own = adapter.build_generator("stand-in").state_dict()
    assert len([k for k in state if k.startswith("parnet.")]) == 56 and set(state) - set(own) == {
        k for k in state if k.startswith("parnet.")
    }
    loaded = adapter.load_generator(adapter.build_generator("stand-in"), checkpoint)
    assert loaded.released_form == "generator.py"
    assert torch.equal(loaded.state_dict()["res.weight"], state["res.weight"])
    assert "generator.py form, 56 parnet.* tensors (" in capsys.readouterr().err
    plain = checkpoint.parent / "plain.pth"
    torch.save(own, plain)  # the texture-transfer generator's own keys only: also loads, nothing reported
    assert adapter.load_generator(adapter.build_generator("stand-in"), plain).released_form == (
        "generator_texture_transfer.py"
    )
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "change, count",
    [
        (lambda s: s.pop("parnet.up4.shortcut.0.weight"), "55 unexpected"),  # not all of generator.py's
        (lambda s: s.__setitem__("parnet.conv1.model.2.bias", torch.zeros(3)), "56 unexpected"),  # a shape
        (lambda s: s.__setitem__("posenc.weight", torch.zeros(2)), "57 unexpected"),  # one more key
        (lambda s: s.pop("res.weight"), "1 missing"),
    ],
)
def test_anything_beyond_the_released_extras_is_refused_naming_what_pise_publishes(checkpoint, tmp_path, change, count):
    state = torch.load(checkpoint, weights_only=True)
    change(state)
    path = tmp_path / "changed.pth"
    torch.save(state, path)
    with pytest.raises(SpcreidError) as caught:
        adapter.load_generator(adapter.build_generator("stand-in"), path)
    message = str(caught.value)
    assert "changed.pth does not fit the texture-transfer generator" in message and count in message
    assert "latest_net_G.pth (Google Drive 1fMFBIkU1AEQaa3vbhba3oV0rU5YSr7GR)" in message
    assert "pose-transfer" not in message


def test_a_donor_without_a_clothing_region_leaves_the_source_its_own_code(checkpoint, one_torch_thread):
    from spcreid.synthesis.base import check_person

    synth = PiseSynthesizer(
        pise_checkpoint=checkpoint, pise_network="stand-in", device="cpu", keypoints_of=fixed_keypoints
    )
    generator = synth.generator()
    seen = {"zencoder": [], "efb": []}
    generator.Zencoder.register_forward_hook(lambda m, args, out: seen["zencoder"].append(out))
    generator.efb.register_forward_hook(lambda m, args, out: seen["efb"].append(args))
    dressed = np.zeros((H, W), np.uint8)
    dressed[10:34, 8:24] = UPPER_CLOTHES
    dressed[34:60, 8:24] = LOWER_CLOTHES
    in_a_dress = np.where(dressed == LOWER_CLOTHES, UPPER_CLOTHES, dressed).astype(np.uint8)  # no lower region
    source = check_person(np.full((H, W, 3), 200, np.uint8), dressed, "source")
    donors = [
        check_person(np.full((H, W, 3), 10, np.uint8), in_a_dress, "dress"),
        check_person(np.full((H, W, 3), 90, np.uint8), dressed, "full"),
    ]
    synth.generate([source, source], fixed_keypoints([0, 0]), donors)
    src_codes, src_exist, _ = seen["zencoder"][0]
    donor_codes, donor_exist, _ = seen["zencoder"][1]
    upper, lower = inputs.clothes_labels("issue20")
    assert donor_exist[0, lower] == 0 and not donor_codes[0, lower].any()  # PISE's encoder: absent -> all zero
    assert src_exist[0, lower] == 1 and src_codes[0, lower].abs().sum() > 0
    _, _, codes, _ = seen["efb"][0]
    assert torch.equal(codes[0, lower], src_codes[0, lower])  # kept: the donor has no trousers to give
    assert torch.equal(codes[0, upper], donor_codes[0, upper])
    assert torch.equal(codes[1, [upper, lower]], donor_codes[1, [upper, lower]])
    assert synth.region_counts == {
        "upper_clothes": {"donor": 2, "source": 0},
        "lower_clothes": {"donor": 1, "source": 1},
    }
