"""SCHP's and PISE's real code beside spcreid's adapters, where their pinned sources are present.

The image has them at /opt/schp and /opt/PISE (containers/Dockerfile); CI points SPCREID_SCHP_ROOT /
SPCREID_PISE_ROOT at the copies of the pinned commits beside the clone (.ci/run); elsewhere these tests are
skipped. Random weights throughout: what is checked is the interface (construction without SCHP's CUDA
extension or PISE's package code, every released checkpoint form, output shapes), that our texture transfer
is the author's recipe run in PISE's own forward, and that our parsing geometry is SCHP's.

SCHP's pre- and post-processing call OpenCV, which spcreid does not install: ``cv2_stand_in`` gives them the
four functions they use, written from OpenCV's documented semantics (pixel centres at integer coordinates,
bilinear, constant border, uint8 results rounded), so that SCHP's own code computes its centre, scale and
affine maps here.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from spcreid.data import parsing_labels
from spcreid.parsing import schp
from spcreid.parsing.run import logits_to_image, parse_images, schp_affine, schp_input
from spcreid.synthesis.pise import adapter, released

SCHP_ROOT = Path(os.environ.get("SPCREID_SCHP_ROOT", schp.DEFAULT_SCHP_ROOT))
PISE_ROOT = Path(os.environ.get("SPCREID_PISE_ROOT", adapter.DEFAULT_PISE_ROOT))
needs_schp = pytest.mark.skipif(not (SCHP_ROOT / schp.NETWORK_FILE).is_file(), reason=f"no SCHP source at {SCHP_ROOT}")
needs_pise = pytest.mark.skipif(
    not (PISE_ROOT / adapter.GENERATOR_FILE).is_file(), reason=f"no PISE source at {PISE_ROOT}"
)


# ---- SCHP -----------------------------------------------------------------------------------------------------


def cv2_stand_in() -> types.ModuleType:
    cv2 = types.ModuleType("cv2")
    cv2.INTER_LINEAR, cv2.BORDER_CONSTANT, cv2.IMREAD_COLOR = 1, 0, 1

    def get_affine_transform(src, dst):
        src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
        design = np.hstack([src, np.ones((3, 1))])
        return np.linalg.solve(design, dst).T  # 2 x 3, dst = M @ (x, y, 1)

    def warp_affine(image, matrix, dsize, flags=1, borderMode=0, borderValue=0):
        width, height = dsize
        inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
        sx = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
        sy = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
        x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
        fx, fy = sx - x0, sy - y0
        source = image.astype(np.float64)
        if source.ndim == 2:
            source = source[..., None]
        out = np.zeros((height, width, source.shape[2]))
        for dy, dx, weight in (
            (0, 0, (1 - fy) * (1 - fx)),
            (0, 1, (1 - fy) * fx),
            (1, 0, fy * (1 - fx)),
            (1, 1, fy * fx),
        ):
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= 0) & (yy < image.shape[0]) & (xx >= 0) & (xx < image.shape[1])
            values = np.zeros_like(out)
            values[inside] = source[yy[inside], xx[inside]]
            out += weight[..., None] * values  # outside: the border value 0
        if image.ndim == 2:
            out = out[..., 0]
        if image.dtype == np.uint8:
            return np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return out.astype(image.dtype)

    def imread(path, flags=1):
        from PIL import Image

        return np.asarray(Image.open(path).convert("RGB"))[..., ::-1].copy()  # BGR, as OpenCV reads

    cv2.getAffineTransform, cv2.warpAffine, cv2.imread = get_affine_transform, warp_affine, imread
    return cv2


@pytest.fixture()
def schp_upstream(monkeypatch):
    """SCHP's utils/transforms.py and datasets/simple_extractor_dataset.py, imported from its source tree."""
    monkeypatch.setitem(sys.modules, "cv2", cv2_stand_in())
    modules = {}
    for name, relative in (
        ("utils.transforms", "utils/transforms.py"),
        ("datasets_simple", "datasets/simple_extractor_dataset.py"),
    ):
        spec = importlib.util.spec_from_file_location(name, SCHP_ROOT / relative)
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, name, module)
        if name == "utils.transforms":
            monkeypatch.setitem(sys.modules, "utils", types.SimpleNamespace(transforms=module))
        spec.loader.exec_module(module)
        modules[name] = module
    return modules["utils.transforms"], modules["datasets_simple"]


@needs_schp
def test_schp_network_loads_its_checkpoint_format_and_parses(tmp_path, one_torch_thread):
    torch.manual_seed(0)
    model = schp.build_network("schp", SCHP_ROOT)
    assert sum(p.numel() for p in model.parameters()) == 66_723_928  # ResNet-101 CE2P, LIP head
    assert len(model.state_dict()) == 603
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
    (labels,) = parse_images(loaded, [np.zeros((128, 64, 3), np.uint8)], torch.device("cpu"))
    assert labels.shape == (128, 64) and labels.max() < 20


@needs_schp
@pytest.mark.parametrize("zipfile_form", [False, True], ids=["old-torch-format", "new-torch-format"])
def test_schp_checkpoints_in_both_released_file_forms_load_strictly(tmp_path, zipfile_form):
    torch.manual_seed(1)
    saved = schp.build_network("schp", SCHP_ROOT).state_dict()
    path = tmp_path / "schp.pth"
    # SCHP's 2019 files predate torch's zip format; both forms hold {"state_dict": {"module.<name>": tensor}}.
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in saved.items()}}, path, _use_new_zipfile_serialization=zipfile_form
    )
    with open(path, "rb") as handle:
        assert (handle.read(2) == b"PK") == zipfile_form
    loaded = schp.load_checkpoint(schp.build_network("schp", SCHP_ROOT), path).state_dict()
    assert loaded.keys() == saved.keys() and all(torch.equal(loaded[k], saved[k]) for k in saved)


@needs_schp
def test_schp_label_lists_are_ours():
    tree = ast.parse((SCHP_ROOT / "simple_extractor.py").read_text())
    settings = next(
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "dataset_settings"
    )
    for name in ("lip", "atr"):
        theirs = [label.lower() for label in settings[name]["label"]]
        assert theirs == list(parsing_labels.LABEL_SETS[name][0]) and settings[name]["num_classes"] == len(theirs)


@needs_schp
@pytest.mark.parametrize("size", [(128, 64), (97, 203), (473, 300)])
def test_schp_affine_is_upstreams(schp_upstream, size):
    transforms, dataset = schp_upstream
    h, w = size
    folder = dataset.SimpleFolderDataset(root=".", input_size=[473, 473])
    center, scale = folder._box2cs([0, 0, w - 1, h - 1])
    theirs = transforms.get_affine_transform(center, scale, 0, np.asarray([473, 473]))
    back = transforms.get_affine_transform(center, scale, 0, np.asarray([473, 473]), inv=1)
    ours = schp_affine(h, w)
    assert np.abs(ours - theirs).max() < 1e-4  # theirs passes through float32
    assert np.abs(np.linalg.inv(np.vstack([ours, [0, 0, 1]]))[:2] - back).max() < 1e-4


@needs_schp
def test_schp_full_forward_matches_upstreams_pipeline(tmp_path, schp_upstream, one_torch_thread):
    from PIL import Image
    from torchvision import transforms as T

    transforms, dataset = schp_upstream
    rng = np.random.default_rng(0)
    crop = np.clip(rng.normal(128, 60, (16, 8, 3)), 0, 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)  # 128 x 64
    Image.fromarray(crop).save(tmp_path / "crop.png")
    normalise = T.Compose([T.ToTensor(), T.Normalize(mean=schp.BGR_MEAN, std=schp.BGR_STD)])
    folder = dataset.SimpleFolderDataset(root=str(tmp_path), input_size=[473, 473], transform=normalise)
    their_input, meta = folder[0]
    our_input, affine = schp_input(torch.from_numpy(crop))
    # Theirs is rounded to uint8 after the warp, ours is not: at most half a grey level apart.
    assert (their_input - our_input).abs().max() <= 0.5 / 255 / min(schp.BGR_STD) + 1e-5

    torch.manual_seed(2)
    model = schp.build_network("schp", SCHP_ROOT).eval()
    with torch.inference_mode():
        fusion = model(their_input[None])[0][-1]
        # simple_extractor.py's steps after the network: upsample (align_corners), HWC, transform_logits.
        upsampled = torch.nn.Upsample(size=[473, 473], mode="bilinear", align_corners=True)(fusion)[0]
        theirs = transforms.transform_logits(
            upsampled.permute(1, 2, 0).numpy(), meta["center"], meta["scale"], meta["width"], meta["height"], [473, 473]
        )
        (ours,) = logits_to_image(fusion, [affine], [(128, 64)])
    assert theirs.shape == (128, 64, 20)
    assert np.abs(ours.permute(1, 2, 0).numpy() - theirs).max() < 1e-4
    (labels,) = parse_images(model, [crop], torch.device("cpu"))  # ours end to end, from the crop
    agree = (labels == theirs.argmax(2)).mean()
    assert agree > 0.99, agree  # only near-ties of random logits may differ, through the uint8 rounding


# ---- PISE -----------------------------------------------------------------------------------------------------


def pise_batch(n, seed):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 3, 256, 256, generator=g) * 2 - 1
    pose = torch.rand(n, 18, 256, 256, generator=g)
    labels = torch.randint(0, 8, (n, 64, 64), generator=g).repeat_interleave(4, 1).repeat_interleave(4, 2)
    parsing = torch.nn.functional.one_hot(labels, 8).permute(0, 3, 1, 2).float()  # every region present
    return image, pose, parsing


@pytest.fixture(scope="module")
def pise_generator():
    torch.manual_seed(0)
    return adapter.build_generator("pise", PISE_ROOT).eval()


@needs_pise
def test_pise_generator_loads_and_texture_transfer_follows_its_forward(tmp_path, pise_generator, one_torch_thread):
    assert type(pise_generator).__name__ == "PoseGenerator"
    assert len(pise_generator.state_dict()) == 317
    assert sum(p.numel() for p in pise_generator.parameters()) == 44_755_541
    path = tmp_path / "latest_net_G.pth"
    torch.save(pise_generator.state_dict(), path)
    loaded = adapter.load_generator(adapter.build_generator("pise", PISE_ROOT), path)
    image, pose, parsing = pise_batch(1, 0)
    with torch.inference_mode():
        ours = adapter.texture_transfer(loaded, image, pose, parsing, image, parsing, (3, 4))
        theirs, _, _ = loaded(image, image, pose, pose, parsing, parsing, image, parsing)
    assert ours.shape == (1, 3, 256, 256)
    assert torch.allclose(ours, theirs, atol=1e-5)  # same submodules, same order, as PISE's forward


@needs_pise
def test_texture_transfer_with_another_donor_is_the_authors_recipe(tmp_path, pise_generator, one_torch_thread):
    # The author's recipe (PISE issue 26), applied to a copy of the pinned tree in tmp_path: in the forward,
    # right after the donor is encoded, regions 3 and 4 take the donor's codes, alpha 1.
    root = tmp_path / "pise"
    for folder in ("model/networks", "util"):
        shutil.copytree(PISE_ROOT / folder, root / folder)
    source = root / adapter.GENERATOR_FILE
    text = source.read_text()
    anchor = "        _codes_vector, _exist_vector, _ = self.Zencoder(img3, par3)\n"
    assert text.count(anchor) == 1
    recipe = "".join(
        f"        codes_vector[0,{r},:] = (1-alpha)*codes_vector[0,{r},:]+alpha*_codes_vector[0,{r},:]\n"
        for r in (3, 4)
    )
    source.write_text(text.replace(anchor, anchor + recipe))
    recipe_generator = adapter.build_generator("pise", root).eval()
    recipe_generator.load_state_dict(pise_generator.state_dict())
    image, pose, parsing = pise_batch(1, 1)
    donor, _, donor_parsing = pise_batch(1, 2)
    with torch.inference_mode():
        ours, given = adapter.texture_transfer(
            pise_generator, image, pose, parsing, donor, donor_parsing, (3, 4), return_given=True
        )
        theirs, _, _ = recipe_generator(image, image, pose, pose, parsing, parsing, donor, donor_parsing, alpha=1)
        unchanged, _, _ = pise_generator(image, image, pose, pose, parsing, parsing, donor, donor_parsing)
    assert given.all()  # the donor has both garments: nothing falls back
    assert (ours - theirs).abs().max() == 0.0
    assert (ours - unchanged).abs().max() > 1e-3  # PISE's forward as released ignores the donor


@needs_pise
def test_a_batch_of_two_equals_two_singles(pise_generator, one_torch_thread):
    image, pose, parsing = pise_batch(2, 3)
    donor, _, donor_parsing = pise_batch(2, 4)
    donor_parsing[1, 4] = 0  # the second donor has no region 4 (lower clothes): that copy keeps the source's
    donor_parsing[1, 0] += torch.as_tensor(donor_parsing[1].sum(0) == 0, dtype=torch.float32)
    with torch.inference_mode():
        batch, given = adapter.texture_transfer(
            pise_generator, image, pose, parsing, donor, donor_parsing, (3, 4), return_given=True
        )
        singles = [
            adapter.texture_transfer(
                pise_generator,
                image[i : i + 1],
                pose[i : i + 1],
                parsing[i : i + 1],
                donor[i : i + 1],
                donor_parsing[i : i + 1],
                (3, 4),
            )
            for i in range(2)
        ]
    assert given.tolist() == [[True, True], [True, False]]
    assert torch.allclose(batch, torch.cat(singles), atol=1e-5, rtol=0)


@needs_pise
@pytest.mark.parametrize("zipfile_form", [False, True], ids=["old-torch-format", "new-torch-format"])
def test_the_released_generator_py_form_with_parnet_loads(tmp_path, capsys, zipfile_form):
    # A random generator.py PoseGenerator from the pinned tree, saved as PISE saved its latest_net_G.pth.
    from spcreid.synthesis.pise.adapter import _package, _placeholder, _temporary_modules

    stubs = {
        "model": _package("model", PISE_ROOT / "model"),
        "model.networks": _package("model.networks", PISE_ROOT / "model" / "networks"),
        "util": _package("util", PISE_ROOT / "util"),
    }
    for optional, names in (("imageio", ()), ("natsort", ("natsorted",))):
        if importlib.util.find_spec(optional) is None:
            stubs[optional] = _placeholder(optional, names)
    hidden = {n: sys.modules.pop(n) for n in list(sys.modules) if n == "model" or n.startswith(("model.", "util"))}
    try:
        with _temporary_modules(stubs):
            spec = importlib.util.spec_from_file_location(
                "pise_generator_py", PISE_ROOT / "model/networks/generator.py"
            )
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
    finally:
        for name in [n for n in sys.modules if n.startswith(("model.", "util."))]:
            sys.modules.pop(name)
        sys.modules.update(hidden)
    module.VggEncoder = adapter.vgg_features_class()
    torch.manual_seed(5)
    full = module.PoseGenerator(**adapter.GENERATOR_KWARGS).state_dict()
    parnet = {k: tuple(v.shape) for k, v in full.items() if k.startswith("parnet.")}
    assert parnet == released.GENERATOR_PY_EXTRAS and sum(int(np.prod(s)) for s in parnet.values()) == 19_254_610
    path = tmp_path / "latest_net_G.pth"
    torch.save(full, path, _use_new_zipfile_serialization=zipfile_form)
    loaded = adapter.load_generator(adapter.build_generator("pise", PISE_ROOT), path)
    assert loaded.released_form == "generator.py"
    state = loaded.state_dict()
    assert len(state) == 317 and all(torch.equal(state[k], full[k]) for k in state)
    assert "56 parnet.* tensors (19,254,610 values" in capsys.readouterr().err
