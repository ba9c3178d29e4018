"""PISE input layout: padding and its inverse, keypoint frame and CSV, heatmaps, label order, staging."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from spcreid.data.parsing_labels import ARMS, BACKGROUND, FACE, HAIR, LEGS, LOWER_CLOTHES, SHOES, UPPER_CLOTHES
from spcreid.errors import SpcreidError
from spcreid.synthesis.pise import inputs
from spcreid.synthesis.precompute import CopyJob


def test_padding_is_white_and_round_trip_is_exact_at_pise_size():
    image = np.random.default_rng(0).integers(0, 256, (256, 176, 3), dtype=np.uint8)
    canvas = inputs.to_pise_image(image)
    assert canvas.shape == (256, 256, 3)
    assert (canvas[:, :40] == 255).all() and (canvas[:, 216:] == 255).all()
    assert np.array_equal(canvas[:, 40:216], image)
    assert np.array_equal(inputs.from_pise_image(canvas, (256, 176)), image)


def test_round_trip_from_reid_size_keeps_the_picture():
    rows = np.linspace(0, 255, 128)[:, None]
    smooth = np.stack([np.repeat(rows, 64, 1), np.repeat(rows[::-1], 64, 1), np.full((128, 64), 80.0)], -1)
    image = smooth.astype(np.uint8)
    back = inputs.from_pise_image(inputs.to_pise_image(image), (128, 64))
    assert back.shape == image.shape
    assert np.abs(back.astype(int) - image).mean() < 1.5


def test_wrong_output_size_is_rejected():
    with pytest.raises(SpcreidError, match="256x256"):
        inputs.from_pise_image(np.zeros((256, 176, 3), np.uint8), (128, 64))


def test_label_remap_to_pise_order_and_background_padding():
    ours = np.array([[BACKGROUND, HAIR, FACE, UPPER_CLOTHES, LOWER_CLOTHES, ARMS, LEGS, SHOES]], np.uint8)
    parsing = np.repeat(np.repeat(ours, 256, 0), 22, 1)  # 256 x 176, 22 columns per label
    pise = inputs.to_pise_parsing(parsing, "issue20")
    assert pise.shape == (256, 256) and (pise[:, :40] == 0).all() and (pise[:, 216:] == 0).all()
    assert pise[0, 40:216:22].tolist() == [0, 2, 7, 3, 4, 6, 6, 5]
    assert inputs.to_pise_parsing(parsing, "issue2")[0, 40:216:22].tolist() == [0, 1, 5, 2, 3, 6, 7, 4]
    with pytest.raises(SpcreidError, match="--pise-label-map 'cihp'"):
        inputs.to_pise_parsing(parsing, "cihp")


def test_keypoints_scale_to_the_unpadded_frame():
    kp = np.array([[64, 32], [0, 0], [-1, -1], [127, 63]] + [[-1, -1]] * 14)
    scaled = inputs.scale_keypoints(kp, (128, 64))
    # y: (64 + .5) * 2 - .5 = 128.5 -> 128 (round half to even); x: (32 + .5) * 2.75 - .5 = 88.875 -> 89
    assert scaled[0].tolist() == [128, 89]
    assert scaled[1].tolist() == [0, 1]  # (0.5 * 2.75 - 0.5) = 0.875 -> 1
    assert scaled[2].tolist() == [-1, -1]
    assert scaled[3].tolist() == [254, 174]  # rint(127.5 * 2 - .5 = 254.5), rint(63.5 * 2.75 - .5 = 174.125)


def test_annotation_csv_is_what_pise_reads(tmp_path):
    kp = np.full((18, 2), -1)
    kp[0] = (10, 20)
    line = inputs.annotation_line("j000001.png", kp)
    assert line.startswith("j000001.png:[10, -1, ") and line.split(":")[2].startswith("[20, -1")
    path = tmp_path / "ann.csv"
    path.write_text("name:keypoints_y:keypoints_x\n" + line + "\n")
    raw = pd.read_csv(path, sep=":").set_index("name")  # exactly how PISE's loader opens it
    assert json.loads(raw.loc["j000001.png", "keypoints_x"])[0] == 20
    assert np.array_equal(inputs.read_annotations(path)["j000001.png"], kp)


def test_heatmaps_peak_at_padded_position_with_sigma_6():
    kp = np.full((18, 2), -1)
    kp[3] = (100, 50)
    maps = inputs.pose_heatmaps(kp)
    assert maps.shape == (256, 256, 18)
    assert maps[100, 90, 3] == pytest.approx(1.0) and np.unravel_index(maps[..., 3].argmax(), (256, 256)) == (100, 90)
    assert maps[100, 96, 3] == pytest.approx(np.exp(-0.5), rel=1e-5)  # one sigma away
    assert not maps[..., 0].any()


def _write_person(folder, name, colour):
    image = np.full((64, 32, 3), colour, np.uint8)
    parsing = np.zeros((64, 32), np.uint8)
    parsing[10:40, 8:24] = UPPER_CLOTHES
    Image.fromarray(image).save(folder / f"{name}.png")
    Image.fromarray(parsing).save(folder / f"{name}_p.png")
    return folder / f"{name}.png", folder / f"{name}_p.png"


def test_stage_jobs_writes_pise_layout(tmp_path):
    src, src_p = _write_person(tmp_path, "src", (200, 0, 0))
    donor, donor_p = _write_person(tmp_path, "donor", (0, 0, 200))
    jobs = [CopyJob(src, src_p, k, donor, donor_p, tmp_path / "out" / f"c{k}.png") for k in range(2)]
    fixed = np.full((18, 2), -1)
    fixed[0] = (32, 16)
    frame = inputs.stage_jobs(jobs, tmp_path / "dataroot", lambda image: fixed)
    root = tmp_path / "dataroot"
    assert frame["name"].tolist() == ["j000000.png", "j000001.png"]
    assert sorted(p.name for p in (root / "test").iterdir()) == ["d000000.png", "j000000.png", "j000001.png"]
    staged = np.asarray(Image.open(root / "test" / "j000000.png"))
    assert staged.shape == (256, 256, 3) and tuple(staged[128, 128]) == (200, 0, 0)
    parsing = np.asarray(Image.open(root / "testSPL8" / "j000000.png"))
    assert set(np.unique(parsing)) == {0, 3}  # upper clothes in PISE's issue20 order
    pairs = pd.read_csv(root / "fasion-pairs-test.csv")
    assert pairs.to_dict("records")[1] == {"from": "j000001.png", "to": "j000001.png", "donor": "d000000.png"}
    annotations = inputs.read_annotations(root / "fasion-annotation-test.csv")
    assert annotations["j000000.png"][0].tolist() == [130, 90]  # rint(32.5*4-.5=129.5), rint(16.5*5.5-.5=90.25)
    jobs_csv = pd.read_csv(root / "jobs.csv")
    assert jobs_csv[["copy", "height", "width"]].values.tolist() == [[0, 64, 32], [1, 64, 32]]
