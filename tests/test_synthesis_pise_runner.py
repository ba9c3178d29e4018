"""PISE runner and collector: command construction, early errors, and a full run with a stand-in PISE."""

import shlex
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from spcreid.data.manifest import make_manifest, write_manifest
from spcreid.data.parsing_labels import LOWER_CLOTHES, UPPER_CLOTHES
from spcreid.errors import SpcreidError
from spcreid.synthesis.cache import SynthesisCache
from spcreid.synthesis.pise import runner
from spcreid.synthesis.pise.collect import collect, find_results
from spcreid.synthesis.precompute import precompute

# A stand-in for PISE's test.py: for every staged pair it writes the inverted input image under the
# name PISE would use (<from stem>_<to name>_vis0.png) and, like PISE with save_input, an extra file.
FAKE_PISE = """
import sys, pathlib
import numpy as np, pandas as pd
from PIL import Image
dataroot, results = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for row in pd.read_csv(dataroot / "fasion-pairs-test.csv").itertuples():
    image = np.asarray(Image.open(dataroot / "test" / row[1]))
    stem = row[1][:-4]
    Image.fromarray(255 - image).save(results / f"{stem}_{row[2]}_vis0.png")
    Image.fromarray(image).save(results / f"{stem}_{row[2]}_ref.png")
"""


@pytest.fixture()
def weights(tmp_path):
    checkpoint = tmp_path / "pise ckpt"  # a space: paths must survive shell quoting
    checkpoint.mkdir()
    (checkpoint / "latest_net_G.pth").write_bytes(b"generator")
    vgg = tmp_path / "vgg19-dcbb9e9d.pth"
    vgg.write_bytes(b"vgg")
    return checkpoint, vgg


def test_default_command_runs_texture_transfer_in_apptainer(tmp_path, weights):
    checkpoint, vgg = weights
    argv = runner.build_command(None, "/images/pise.sif", tmp_path, tmp_path / "d", tmp_path / "r", checkpoint, vgg)
    assert argv[:3] == ["apptainer", "exec", "--nv"]
    assert f"{checkpoint}:/pise/checkpoints/fashion:ro" in argv  # the space stays inside one argument
    assert f"{vgg}:/pise/vgg19-dcbb9e9d.pth:ro" in argv
    image_at = argv.index("/images/pise.sif")
    assert argv[image_at + 1:image_at + 3] == ["python", "/opt/PISE/test.py"]
    assert "--dataroot=/pise/dataroot" in argv and "--results_dir=/pise/results" in argv
    assert "--checkpoints_dir=/pise/checkpoints" in argv and "--name=fashion" in argv


def test_custom_template_and_bad_placeholder(tmp_path, weights):
    checkpoint, vgg = weights
    argv = runner.build_command("docker run --gpus all -v {dataroot}:/d {image} run {results}", "pise:1",
                                tmp_path, tmp_path / "data root", tmp_path / "res", checkpoint, vgg)
    assert argv == ["docker", "run", "--gpus", "all", "-v", f"{tmp_path / 'data root'}:/d", "pise:1", "run",
                    str(tmp_path / "res")]
    with pytest.raises(SpcreidError, match="unknown placeholder 'gpu'"):
        runner.build_command("run {gpu}", "x", tmp_path, tmp_path, tmp_path, checkpoint, vgg)


def test_missing_weights_and_container_are_reported_before_any_work(tmp_path, weights):
    checkpoint, vgg = weights
    with pytest.raises(SpcreidError, match="no --pise-checkpoint"):
        runner.PiseSynthesizer().check_ready()
    with pytest.raises(SpcreidError, match=r"empty/latest_net_G\.pth does not exist.*1fMFBIkU1AEQaa3vbhba3oV0rU5YSr7GR"):
        runner.PiseSynthesizer(pise_checkpoint=tmp_path / "empty", vgg_weights=vgg).check_ready()
    with pytest.raises(SpcreidError, match=r"latest_net_G\.pth has sha256"):
        runner.PiseSynthesizer(pise_checkpoint=checkpoint, vgg_weights=vgg, checkpoint_sha256="0" * 64).check_ready()
    with pytest.raises(SpcreidError, match="PISE VGG19: no weights file given"):
        runner.PiseSynthesizer(pise_checkpoint=checkpoint).check_ready()
    with pytest.raises(SpcreidError, match=r"container image .*nope\.sif does not exist"):
        runner.PiseSynthesizer(pise_checkpoint=checkpoint, vgg_weights=vgg,
                               pise_image=str(tmp_path / "nope.sif")).check_ready()
    assert runner.PiseSynthesizer(pise_checkpoint=checkpoint, vgg_weights=vgg,
                                  pise_image="docker://example/pise@sha256:" + "a" * 64).check_ready() == (checkpoint, vgg)


def small_dataset(root):
    rows = []
    for pid in (1, 2, 3):
        for outfit in (1, 2):
            image = np.full((64, 32, 3), (40 * pid, 60 * outfit, 90), np.uint8)
            parsing = np.zeros((64, 32), np.uint8)
            parsing[12:34, 6:26] = UPPER_CLOTHES
            parsing[34:56, 8:24] = LOWER_CLOTHES
            name = f"{pid:04d}-{outfit}-{outfit}-01"
            (root / "img").mkdir(parents=True, exist_ok=True)
            (root / "par").mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / "img" / f"{name}.png")
            Image.fromarray(parsing).save(root / "par" / f"{name}.png")
            rows.append({"path": str(root / "img" / f"{name}.png"), "pid": pid, "camid": outfit,
                         "clothes_id": outfit, "split": "train", "role": "train",
                         "parsing": str(root / "par" / f"{name}.png")})
    write_manifest(make_manifest(rows), root / "manifest.csv")
    return root / "manifest.csv"


def test_full_pise_path_with_a_stand_in_for_pise(tmp_path, weights, monkeypatch):
    checkpoint, vgg = weights
    manifest = small_dataset(tmp_path / "data")
    fake = tmp_path / "fake_pise.py"
    fake.write_text(FAKE_PISE)
    fixed = np.full((18, 2), -1)
    fixed[1] = (10, 16)
    monkeypatch.setattr(runner.PiseSynthesizer, "keypoints_of", lambda self, image: fixed)
    options = {"pise_checkpoint": str(checkpoint), "vgg_weights": str(vgg),
               "pise_command": f"{shlex.quote(sys.executable)} {shlex.quote(str(fake))} {{dataroot}} {{results}}"}
    stats = precompute(manifest, tmp_path / "cache", backend="pise", copies=2, backend_options=options)
    assert stats["copies_written"] == 12 and stats["sources_synthesized"] == 6

    cache = SynthesisCache(tmp_path / "cache")
    assert cache.backend == "pise" and cache.copies_per_source == 2
    source = tmp_path / "data" / "img" / "0002-1-1-01.png"
    original = np.asarray(Image.open(source)).astype(int)
    for path in cache.copies(source):
        copy = np.asarray(Image.open(path)).astype(int)
        assert copy.shape == original.shape  # cropped back from 256x256 and resized to the ReID size
        assert np.abs(copy - (255 - original)).max() <= 1  # the stand-in's output, not its saved input
    staged = pd.read_csv(tmp_path / "cache" / "pise-staging" / "dataroot" / "fasion-pairs-test.csv")
    assert len(staged) == 12

    again = precompute(manifest, tmp_path / "cache", backend="pise", copies=2, backend_options=options)
    assert again["copies_written"] == 0  # resumable like parsing-swap: nothing is re-staged


def test_failing_pise_reports_the_log_tail(tmp_path, weights, monkeypatch):
    checkpoint, vgg = weights
    manifest = small_dataset(tmp_path / "data")
    monkeypatch.setattr(runner.PiseSynthesizer, "keypoints_of", lambda self, image: np.full((18, 2), -1))
    failing = f"{shlex.quote(sys.executable)} -c \"import sys; print('CUDA out of memory'); sys.exit(3)\""
    options = {"pise_checkpoint": str(checkpoint), "vgg_weights": str(vgg), "pise_command": failing}
    with pytest.raises(SpcreidError, match="(?s)status 3.*CUDA out of memory"):
        precompute(manifest, tmp_path / "cache", backend="pise", copies=1, backend_options=options)
    missing_tool = {"pise_checkpoint": str(checkpoint), "vgg_weights": str(vgg),
                    "pise_command": "no-such-container-tool run {image}"}
    with pytest.raises(SpcreidError, match="cannot run 'no-such-container-tool'"):
        precompute(manifest, tmp_path / "cache2", backend="pise", copies=1, backend_options=missing_tool)


def test_collect_requires_every_output(tmp_path):
    dataroot, results = tmp_path / "d", tmp_path / "r"
    dataroot.mkdir()
    results.mkdir()
    pd.DataFrame([{"name": f"j{i:06d}.png", "source": "s", "copy": i, "donor": "d", "out_path": str(tmp_path / f"{i}.png"),
                   "height": 64, "width": 32} for i in range(3)]).to_csv(dataroot / "jobs.csv", index=False)
    canvas = np.zeros((256, 256, 3), np.uint8)
    Image.fromarray(canvas).save(results / "j000000_j000000.png_ref.jpg")
    Image.fromarray(canvas).save(results / "j000000_j000000.png_vis0.jpg")
    Image.fromarray(canvas).save(results / "j000001_j000001.png_vis0.png")
    assert find_results(results)["j000000"].name == "j000000_j000000.png_vis0.jpg"
    with pytest.raises(SpcreidError, match=r"no output for 1 of 3 staged copies.*j000002\.png"):
        collect(dataroot, results)
    assert not (tmp_path / "0.png").exists()  # nothing collected from a partial run
