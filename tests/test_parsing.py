"""Human parsing: the LIP -> spcreid table, SCHP's interface pieces, and `spcreid parse` end to end on CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from spcreid import cli
from spcreid.data import parsing_labels as L
from spcreid.data.manifest import read_manifest
from spcreid.device import arch_supported, resolve_device
from spcreid.errors import SpcreidError
from spcreid.parsing import schp
from spcreid.parsing.run import logits_to_image, run_parser, schp_affine, schp_input, use_existing_maps
from spcreid.rehearsal.standin_weights import make_stand_in
from test_data_trees import PRCC_FILES

# Written from SCHP's LIP label list, one line per class, by reading what each garment is.
LIP_EXPECTED = [
    ("background", L.BACKGROUND),
    ("hat", L.HAIR),
    ("hair", L.HAIR),
    ("glove", L.ARMS),
    ("sunglasses", L.FACE),
    ("upper-clothes", L.UPPER_CLOTHES),
    ("dress", L.UPPER_CLOTHES),
    ("coat", L.UPPER_CLOTHES),
    ("socks", L.SHOES),
    ("pants", L.LOWER_CLOTHES),
    ("jumpsuits", L.UPPER_CLOTHES),
    ("scarf", L.UPPER_CLOTHES),
    ("skirt", L.LOWER_CLOTHES),
    ("face", L.FACE),
    ("left-arm", L.ARMS),
    ("right-arm", L.ARMS),
    ("left-leg", L.LEGS),
    ("right-leg", L.LEGS),
    ("left-shoe", L.SHOES),
    ("right-shoe", L.SHOES),
]
# CIHP's published list (Gong et al., ECCV 2018; github Engineering-Course/CIHP_PGN): LIP's names, but label 10 is
# torso skin - skin, kept by the synthesiser like the arms' skin.
CIHP_EXPECTED = LIP_EXPECTED[:10] + [("torso-skin", L.ARMS)] + LIP_EXPECTED[11:]
# ATR's list as SCHP's ATR model orders it (simple_extractor.py, dataset_settings["atr"]).
ATR_EXPECTED = [
    ("background", L.BACKGROUND),
    ("hat", L.HAIR),
    ("hair", L.HAIR),
    ("sunglasses", L.FACE),
    ("upper-clothes", L.UPPER_CLOTHES),
    ("skirt", L.LOWER_CLOTHES),
    ("pants", L.LOWER_CLOTHES),
    ("dress", L.UPPER_CLOTHES),
    ("belt", L.LOWER_CLOTHES),
    ("left-shoe", L.SHOES),
    ("right-shoe", L.SHOES),
    ("face", L.FACE),
    ("left-leg", L.LEGS),
    ("right-leg", L.LEGS),
    ("left-arm", L.ARMS),
    ("right-arm", L.ARMS),
    ("bag", L.BACKGROUND),
    ("scarf", L.UPPER_CLOTHES),
]
TRAIN_FILES = [f for f in PRCC_FILES if f[4] == "train"]
H, W = 64, 32


def test_lip_table_value_by_value():
    assert len(L.LIP_LABEL_NAMES) == 20 and len(L.LIP_TO_SPCREID) == 20
    for index, (name, label) in enumerate(LIP_EXPECTED):
        assert L.LIP_LABEL_NAMES[index] == name
        assert L.LIP_TO_SPCREID[index] == label, name
        assert L.lip_lookup()[index] == label, name
    assert L.lip_lookup().dtype == np.uint8


@pytest.mark.parametrize("name, expected", [("lip", LIP_EXPECTED), ("cihp", CIHP_EXPECTED), ("atr", ATR_EXPECTED)])
def test_each_label_set_value_by_value(name, expected):
    names, table = L.LABEL_SETS[name]
    assert list(names) == [n for n, _ in expected] and len(table) == len(expected)
    lookup = L.label_set_lookup(name)
    for index, (label_name, label) in enumerate(expected):
        assert table[index] == label and lookup[index] == label, f"{name} {index} {label_name}"


def test_cihp_torso_skin_is_not_clothing_where_lip_jumpsuits_are():
    assert L.label_set_lookup("cihp")[10] == L.ARMS and L.label_set_lookup("lip")[10] == L.UPPER_CLOTHES
    with pytest.raises(SpcreidError, match="label set 'pascal' is unknown; use one of lip, cihp, atr"):
        L.label_set_lookup("pascal")


def test_activated_batch_norm_is_inplace_abn_at_inference():
    bn = schp.activated_batch_norm_class()(1, eps=1e-5).eval()
    bn.running_mean.fill_(1.0)
    bn.running_var.fill_(4.0 - 1e-5)  # so that sqrt(var + eps) is exactly 2
    with torch.no_grad():
        bn.weight.fill_(-2.0)  # InPlaceABN scales by |w| + eps, not w
        bn.bias.fill_(0.5)
    x = torch.tensor([3.0, -1.0]).view(1, 1, 2, 1)
    y = bn(x).flatten()
    gamma = 2.0 + 1e-5
    assert y[0].item() == pytest.approx(1.0 * gamma + 0.5)  # (3 - 1) / 2 = 1
    assert y[1].item() == pytest.approx(0.01 * (-1.0 * gamma + 0.5))  # leaky ReLU, slope 0.01
    none = schp.activated_batch_norm_class()(1, activation="none").eval()
    assert none(torch.tensor([-3.0]).view(1, 1, 1, 1)).item() == pytest.approx(
        -3.0 * (1 + 1e-5) / np.sqrt(1 + 1e-5), rel=1e-6
    )  # weight 1: scale |1| + eps
    assert set(bn.state_dict()) == {"weight", "bias", "running_mean", "running_var"}  # InPlaceABN's names


def test_schp_source_is_imported_with_plain_batch_norm(tmp_path):
    # A source tree laid out like SCHP's whose network imports InPlaceABNSync as SCHP's does.
    (tmp_path / "networks").mkdir()
    (tmp_path / "networks" / "AugmentCE2P.py").write_text(
        "import torch.nn as nn\nfrom modules import InPlaceABNSync\n"
        "def resnet101(num_classes=20, pretrained=None):\n"
        "    return nn.Sequential(nn.Conv2d(3, 4, 1), InPlaceABNSync(4), nn.Conv2d(4, num_classes, 1))\n"
    )
    model = schp.build_network("schp", tmp_path)
    assert type(model[1]).__name__ == "ActivatedBatchNorm"
    import sys

    assert "modules" not in sys.modules  # the shim does not outlive the import
    with pytest.raises(SpcreidError, match=r"SCHP source not found: .*AugmentCE2P.py does not exist"):
        schp.build_network("schp", tmp_path / "absent")


def test_schp_affine_is_its_box_transform_not_a_plain_resize():
    # A 128 x 64 crop: box side 127 onto 472 (not 128 onto 473), centre (31.5, 63.5) onto (236, 236).
    k = 472 / 127
    expected = np.array([[k, 0, 236 - k * 31.5], [0, k, 236 - k * 63.5]])
    assert np.allclose(schp_affine(128, 64), expected, rtol=0, atol=1e-12)
    assert abs(expected[1, 2]) < 1e-12 and expected[0, 2] == pytest.approx(118.9291, abs=1e-4)
    # the last pixel centre lands on the square's last one; 473/128 with an integer offset would put it at 471.5
    assert schp_affine(128, 64) @ np.array([63, 127, 1]) == pytest.approx([236 + k * 31.5, 472])
    with pytest.raises(SpcreidError, match="1x5 pixels is too small to parse"):
        schp_affine(5, 1)


def test_schp_input_warps_by_the_affine_and_normalises_bgr():
    image = torch.zeros(64, 32, 3, dtype=torch.uint8)
    image[..., 0] = 255  # red
    image[0, 0] = torch.tensor([0, 255, 0], dtype=torch.uint8)  # one green pixel, to find where (0, 0) lands
    tensor, affine = schp_input(image, size=128)
    assert tensor.shape == (3, 128, 128)
    red_in_bgr = [(0 - 0.406) / 0.225, (0 - 0.456) / 0.224, (1 - 0.485) / 0.229]
    assert torch.allclose(tensor[:, 64, 64], torch.tensor(red_in_bgr), atol=1e-5)
    black = [-0.406 / 0.225, -0.456 / 0.224, -0.485 / 0.229]
    assert torch.allclose(tensor[:, 64, 0], torch.tensor(black), atol=1e-5)  # the border
    # Output column u reads source x = (u - tx) / k, k = 127 / 63, tx = 63.5 - 15.5 k = 32.25 (pixel (0, 0) lands
    # there), bilinearly with black outside the crop: the green pixel's weight is 1 - |x|, e.g. u 31: x -0.622 ->
    # 0.378 (blended with the border), u 32: 0.874, u 33: 0.630, u 34: 0.134, u 30 and 35: 0.
    k, tx = 127 / 63, 63.5 - 127 / 63 * 15.5
    assert affine[0].tolist() == pytest.approx([k, 0, tx]) and affine[1].tolist() == pytest.approx([0, k, 0])
    green = tensor[1, 0] * 0.224 + 0.456  # back to [0, 1]
    weight = [max(0.0, 1 - abs((u - tx) / k)) for u in range(30, 36)]
    assert green[30:36].tolist() == pytest.approx(weight, abs=1e-6)
    assert weight[1:5] == pytest.approx([0.378, 0.874, 0.630, 0.134], abs=1e-3) and weight[0] == weight[5] == 0


def test_logits_come_back_through_the_inverse_affine():
    # Class 1 wins in the left half of the square, class 0 in the right: the crop's columns left of the
    # square's centre column come back as class 1, at the crop's own size.
    fusion = torch.zeros(1, 2, 119, 119)
    fusion[0, 1, :, :59] = 1.0
    fusion[0, 0, :, 60:] = 1.0
    (logits,) = logits_to_image(fusion, [schp_affine(128, 64)], [(128, 64)])
    labels = logits.argmax(0)
    assert logits.shape == (2, 128, 64) and (labels[:, :31] == 1).all() and (labels[:, 33:] == 0).all()


def write_person(path, top=(255, 0, 0), bottom=(0, 0, 255)):
    pixels = np.zeros((H, W, 3), dtype=np.uint8)
    pixels[: H // 2] = top
    pixels[H // 2 :] = bottom
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


@pytest.fixture()
def prcc_manifest(tmp_path):
    root = tmp_path / "raw"
    for rel, *_ in PRCC_FILES:
        write_person(root / rel)
    manifest = tmp_path / "prcc.csv"
    assert cli.main(["prepare-data", "--dataset", "prcc", "--root", str(root), "--out", str(manifest)]) == 0
    return root, manifest


@pytest.fixture()
def colour_weights(tmp_path):
    """Stand-in parser weights under which red is LIP upper-clothes (5) and blue LIP pants (9)."""
    path, _ = make_stand_in("schp-lip", tmp_path / "schp.pth", seed=0)
    checkpoint = torch.load(path, weights_only=True)
    state = checkpoint["state_dict"]
    weight = torch.zeros_like(state["module.fushion.weight"])
    bias = torch.full_like(state["module.fushion.bias"], -100.0)
    bias[0] = 0.0  # background wins where neither colour is
    weight[5, 2, 0, 0] = 10.0  # BGR channel 2 = red
    bias[5] = 0.0
    weight[9, 0, 0, 0] = 10.0  # BGR channel 0 = blue
    bias[9] = 0.0
    state["module.fushion.weight"], state["module.fushion.bias"] = weight, bias
    torch.save(checkpoint, path)
    return path


def test_stand_in_parser_end_to_end_through_the_cli(tmp_path, prcc_manifest, colour_weights, capsys, one_torch_thread):
    root, manifest = prcc_manifest
    out = tmp_path / "parsing"
    argv = [
        "parse",
        "--manifest",
        str(manifest),
        "--weights",
        str(colour_weights),
        "--out",
        str(out),
        "--network",
        "stand-in",
        "--device",
        "cpu",
        "--batch",
        "2",
    ]
    assert cli.main(argv) == 0
    info = json.loads((out / "parsing.json").read_text())
    assert info["parsed"] == len(TRAIN_FILES) == 5 and info["network"] == "stand-in"
    assert info["lip_to_spcreid"]["9"] == L.LOWER_CLOTHES
    parsed = read_manifest(out / "manifest.csv")
    assert sorted(parsed["path"]) == sorted(str(root / f[0]) for f in TRAIN_FILES)
    for image, parsing in zip(parsed["path"], parsed["parsing"]):
        assert parsing == str(out / "maps" / image[len(str(root / "prcc/rgb/train")) + 1 : -4]) + ".png"
        labels = np.asarray(Image.open(parsing))
        assert labels.shape == (H, W)
        assert (labels[: int(H * 0.4)] == L.UPPER_CLOTHES).all()  # red -> LIP 5 -> upper clothes
        assert (labels[int(H * 0.6) :] == L.LOWER_CLOTHES).all()  # blue -> LIP 9 -> lower clothes
    # Synthesis takes the parsed manifest as it is.
    from spcreid.synthesis.precompute import precompute

    stats = precompute(out / "manifest.csv", tmp_path / "synth", backend="parsing-swap", copies=1, seed=0)
    assert stats["copies_written"] == 5
    # A rerun keeps the maps; other weights are refused rather than mixed in.
    assert cli.main(argv) == 0
    assert json.loads((out / "parsing.json").read_text())["parsed"] == 0
    other, _ = make_stand_in("schp-lip", tmp_path / "other.pth", seed=1)
    argv[argv.index(str(colour_weights))] = str(other)
    assert cli.main(argv) == 2
    assert "holds maps made otherwise (weights_sha256" in capsys.readouterr().err


def test_parser_checkpoint_errors_name_the_file(tmp_path, prcc_manifest):
    _, manifest = prcc_manifest

    def run(w, network="stand-in"):
        return run_parser(manifest, w, tmp_path / "out", network=network, device="cpu")

    with pytest.raises(
        SpcreidError, match=r"absent\.pth do not exist; fetch them with `spcreid fetch-weights --name schp-lip"
    ):
        run(tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(SpcreidError, match=r"junk\.pth are not a loadable torch checkpoint"):
        run(junk)
    plain = tmp_path / "plain.pth"
    torch.save({"decoder.weight": torch.zeros(1)}, plain)
    with pytest.raises(SpcreidError, match=r"plain\.pth: expected SCHP's checkpoint format"):
        run(plain)
    foreign = tmp_path / "foreign.pth"
    torch.save({"state_dict": {"module.conv1.weight": torch.zeros(1)}}, foreign)
    with pytest.raises(SpcreidError, match=r"foreign\.pth do not fit the network"):
        run(foreign)
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_gpu_checks(monkeypatch):
    assert arch_supported((9, 0), ["sm_75", "sm_80", "sm_90"])
    assert not arch_supported((7, 0), ["sm_75", "sm_80", "sm_90"])  # V100 under a CUDA 13 build
    assert arch_supported((8, 6), ["sm_80", "compute_80"])  # PTX JIT-compiles forward
    assert not arch_supported((7, 5), ["compute_80"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SpcreidError, match="the human parser needs a GPU, but torch sees none"):
        resolve_device("cuda", "the human parser")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_90", "sm_100", "sm_120"])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla V100-SXM2-32GB")
    with pytest.raises(SpcreidError, match=r"Tesla V100-SXM2-32GB is sm_70, but this torch .* built for sm_75"):
        resolve_device("cuda", "PISE")


def test_existing_maps_are_used_or_remapped(tmp_path, prcc_manifest):
    root, manifest = prcc_manifest
    maps = tmp_path / "my-maps"
    for rel, *_ in TRAIN_FILES:
        target = (maps / rel).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        labels = np.full((H, W), 9, dtype=np.uint8)  # LIP pants everywhere
        labels[0, 0] = 13  # LIP face
        Image.fromarray(labels, mode="L").save(target)
    with pytest.raises(SpcreidError, match=r"holds label 13, but spcreid maps have 0..7; set parsing.labels"):
        use_existing_maps(manifest, maps, root, tmp_path / "as-is")
    info = use_existing_maps(manifest, maps, root, tmp_path / "lip", labels="lip")
    assert info["images"] == 5
    first = read_manifest(tmp_path / "lip" / "manifest.csv")["parsing"][0]
    remapped = np.asarray(Image.open(first))
    assert remapped[0, 0] == L.FACE and (remapped.flatten()[1:] == L.LOWER_CLOTHES).all()
    # 8-class maps are referenced where they are.
    eight = tmp_path / "eight"
    for rel, *_ in TRAIN_FILES:
        target = (eight / rel).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((H, W), L.HAIR, dtype=np.uint8), mode="L").save(target)
    use_existing_maps(manifest, eight, root, tmp_path / "in-place")
    listed = read_manifest(tmp_path / "in-place" / "manifest.csv")["parsing"]
    assert sorted(listed) == sorted(str((eight / f[0]).with_suffix(".png")) for f in TRAIN_FILES)
    (eight / TRAIN_FILES[0][0]).with_suffix(".png").unlink()
    with pytest.raises(SpcreidError, match=r"1 of 5 parsing maps are missing under .*eight"):
        use_existing_maps(manifest, eight, root, tmp_path / "in-place-2")


def test_own_cihp_and_atr_maps_are_remapped_by_their_own_set(tmp_path, prcc_manifest):
    root, manifest = prcc_manifest
    maps = tmp_path / "cihp-maps"
    for rel, *_ in TRAIN_FILES:
        target = (maps / rel).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        labels = np.full((H, W), 10, dtype=np.uint8)  # CIHP torso skin (LIP's jumpsuits)
        labels[0, :4] = (5, 16, 8, 19)  # upper-clothes, ATR bag / CIHP left-leg, belt / socks, right-shoe
        Image.fromarray(labels, mode="L").save(target)
    expected = {"cihp": (L.ARMS, L.UPPER_CLOTHES, L.LEGS, L.SHOES, L.SHOES), "lip": (L.UPPER_CLOTHES,) * 2}
    for labels in ("cihp", "lip"):
        info = use_existing_maps(manifest, maps, root, tmp_path / labels, labels=labels)
        assert info["maps_labels"] == labels and info["to_spcreid"]["10"] == expected[labels][0]
        remapped = np.asarray(Image.open(read_manifest(tmp_path / labels / "manifest.csv")["parsing"][0]))
        assert remapped[1, 0] == expected[labels][0] and remapped[0, 0] == expected[labels][1]
    assert (
        tuple(np.asarray(Image.open(read_manifest(tmp_path / "cihp" / "manifest.csv")["parsing"][0]))[0, :4])
        == (expected["cihp"][1:])
    )
    with pytest.raises(SpcreidError, match=r"holds label 19, but atr maps have 0..17"):
        use_existing_maps(manifest, maps, root, tmp_path / "atr", labels="atr")


def test_maps_made_otherwise_are_made_afresh_only_when_the_workflow_asks(tmp_path, prcc_manifest):
    root, manifest = prcc_manifest
    maps, out = tmp_path / "my-maps", tmp_path / "parsed"
    for rel, *_ in TRAIN_FILES:  # LIP pants everywhere: the same label in LIP and CIHP
        (maps / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((H, W), 9, dtype=np.uint8), mode="L").save((maps / rel).with_suffix(".png"))
    use_existing_maps(manifest, maps, root, out, labels="lip")
    with pytest.raises(SpcreidError, match=r"holds maps made otherwise \(maps_labels: 'lip' -> 'cihp'\)"):
        use_existing_maps(manifest, maps, root, out, labels="cihp")
    info = use_existing_maps(manifest, maps, root, out, labels="cihp", replace_changed=True)
    assert info["maps_labels"] == "cihp" and info["images"] == 5
    first = read_manifest(out / "manifest.csv")["parsing"][0]
    assert (np.asarray(Image.open(first)) == L.LOWER_CLOTHES).all()  # pants in CIHP too
