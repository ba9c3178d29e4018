"""PISE input layout: padding and its inverse, keypoint frame, heatmaps, label order, generator tensors."""

import numpy as np
import pytest
import torch

from spcreid.data.parsing_labels import (
    ARMS,
    BACKGROUND,
    FACE,
    HAIR,
    LEGS,
    LOWER_CLOTHES,
    SHOES,
    UPPER_CLOTHES,
)
from spcreid.errors import SpcreidError
from spcreid.synthesis.pise import inputs


def test_padding_is_white_and_round_trip_is_exact_at_pise_size():
    image = np.random.default_rng(0).integers(0, 256, (256, 176, 3), dtype=np.uint8)
    canvas = inputs.to_pise_image(image)  # already 256 x 176: both fits are the identity
    assert np.array_equal(canvas, inputs.to_pise_image(image, "stretch"))
    assert canvas.shape == (256, 256, 3)
    assert (canvas[:, :40] == 255).all() and (canvas[:, 216:] == 255).all()
    assert np.array_equal(canvas[:, 40:216], image)
    assert np.array_equal(inputs.from_pise_image(canvas, (256, 176)), image)


def test_round_trip_from_reid_size_keeps_the_picture():
    rows = np.linspace(0, 255, 128)[:, None]
    smooth = np.stack([np.repeat(rows, 64, 1), np.repeat(rows[::-1], 64, 1), np.full((128, 64), 80.0)], -1)
    image = smooth.astype(np.uint8)
    for fit in inputs.FITS:
        back = inputs.from_pise_image(inputs.to_pise_image(image, fit), (128, 64), fit)
        assert back.shape == image.shape
        assert np.abs(back.astype(int) - image).mean() < 1.5, fit


def test_pad_keeps_the_crop_aspect_between_white_columns_and_stretch_widens_it():
    image = np.zeros((128, 64, 3), np.uint8)  # a 2:1 ReID crop, black
    assert inputs.fit_box((128, 64), "pad") == (0, 24, 256, 128)  # x2 both ways, (176 - 128) / 2 = 24 columns
    assert inputs.fit_box((128, 64), "stretch") == (0, 0, 256, 176)  # x2 tall, x2.75 wide
    assert inputs.fit_box((100, 100), "pad") == (40, 0, 176, 176)  # a square: full width, 40 rows above and below
    padded = inputs.to_pise_image(image, "pad")
    assert (padded[:, : 40 + 24] == 255).all() and (padded[:, 40 + 24 + 128 :] == 255).all()
    assert (padded[:, 64 : 64 + 128] == 0).all()
    assert (inputs.to_pise_image(image, "stretch")[:, 40:216] == 0).all()
    parsing = np.full((128, 64), UPPER_CLOTHES, np.uint8)
    pise = inputs.to_pise_parsing(parsing, "issue20", "pad")
    assert (pise[:, :64] == 0).all() and (pise[:, 64:192] == 3).all() and (pise[:, 192:] == 0).all()
    with pytest.raises(SpcreidError, match="--pise-fit 'crop' is unknown; choose one of pad, stretch"):
        inputs.fit_box((128, 64), "crop")


def test_wrong_output_size_is_rejected():
    with pytest.raises(SpcreidError, match="256x256"):
        inputs.from_pise_image(np.zeros((256, 176, 3), np.uint8), (128, 64))


def test_label_remap_to_pise_order_and_background_padding():
    ours = np.array([[BACKGROUND, HAIR, FACE, UPPER_CLOTHES, LOWER_CLOTHES, ARMS, LEGS, SHOES]], np.uint8)
    parsing = np.repeat(np.repeat(ours, 256, 0), 22, 1)  # 256 x 176, 22 columns per label
    pise = inputs.to_pise_parsing(parsing, "issue20")  # 256 x 176 already: pad and stretch agree
    assert pise.shape == (256, 256) and (pise[:, :40] == 0).all() and (pise[:, 216:] == 0).all()
    assert pise[0, 40:216:22].tolist() == [0, 2, 7, 3, 4, 6, 6, 5]
    assert inputs.to_pise_parsing(parsing, "issue2")[0, 40:216:22].tolist() == [0, 1, 5, 2, 3, 6, 7, 4]
    with pytest.raises(SpcreidError, match="--pise-label-map 'cihp'"):
        inputs.to_pise_parsing(parsing, "cihp")


def test_keypoints_scale_to_the_unpadded_frame():
    kp = np.array([[64, 32], [0, 0], [-1, -1], [127, 63]] + [[-1, -1]] * 14)
    scaled = inputs.scale_keypoints(kp, (128, 64), "stretch")
    # y: (64 + .5) * 2 - .5 = 128.5 -> 128 (round half to even); x: (32 + .5) * 2.75 - .5 = 88.875 -> 89
    assert scaled[0].tolist() == [128, 89]
    assert scaled[1].tolist() == [0, 1]  # (0.5 * 2.75 - 0.5) = 0.875 -> 1
    assert scaled[2].tolist() == [-1, -1]
    assert scaled[3].tolist() == [254, 174]  # rint(127.5 * 2 - .5 = 254.5), rint(63.5 * 2.75 - .5 = 174.125)
    # pad: x2 both ways, 24 columns to the left: x (32.5 * 2 - .5) + 24 = 88.5 -> 88,
    # (63.5 * 2 - .5) + 24 = 150.5 -> 150
    padded = inputs.scale_keypoints(kp, (128, 64), "pad")
    assert padded[0].tolist() == [128, 88] and padded[3].tolist() == [254, 150] and padded[2].tolist() == [-1, -1]


def test_heatmaps_peak_at_padded_position_with_sigma_6():
    kp = np.full((18, 2), -1)
    kp[3] = (100, 50)
    maps = inputs.pose_heatmaps(kp)
    assert maps.shape == (256, 256, 18)
    assert maps[100, 90, 3] == pytest.approx(1.0) and np.unravel_index(maps[..., 3].argmax(), (256, 256)) == (100, 90)
    assert maps[100, 96, 3] == pytest.approx(np.exp(-0.5), rel=1e-5)  # one sigma away
    assert not maps[..., 0].any()


def test_person_tensors_are_what_pise_generator_gets():
    image = np.full((64, 32, 3), (200, 0, 0), np.uint8)
    parsing = np.zeros((64, 32), np.uint8)
    parsing[10:40, 8:24] = UPPER_CLOTHES
    kp = np.full((18, 2), -1)
    kp[0] = (32, 16)
    canvas, one_hot, pose = inputs.person_tensors(image, parsing, kp)
    assert canvas.shape == (3, 256, 256) and one_hot.shape == (8, 256, 256) and pose.shape == (18, 256, 256)
    # ToTensor + Normalize(0.5, 0.5): 200 -> 200/255*2-1, 0 -> -1; the 40-column padding is white (+1).
    assert torch.allclose(canvas[:, 128, 128], torch.tensor([200 / 255 * 2 - 1, -1.0, -1.0]))
    assert (canvas[:, :, :40] == 1.0).all() and (canvas[:, :, 216:] == 1.0).all()
    # pad (the default): x4 both ways into 256 x 128, 24 more white columns each side.
    assert (canvas[:, :, : 40 + 24] == 1.0).all() and (canvas[:, :, 40 + 24 + 128 :] == 1.0).all()
    assert torch.allclose(canvas[:, 128, 64], torch.tensor([200 / 255 * 2 - 1, -1.0, -1.0]))
    assert (one_hot.sum(0) == 1).all()  # one-hot everywhere
    assert (one_hot[0, :, :40] == 1).all()  # padding is background
    assert one_hot[3, 100, 128] == 1  # upper clothes -> PISE label 3 (issue20 order)
    # heatmaps at the scaled keypoint, shifted by the padding: (rint(32.5*4-.5), rint(16.5*4-.5+24)+40) = (130, 130)
    assert pose[0, 130, 130] == pytest.approx(1.0) and not pose[1:].any()
    assert torch.equal(
        pose, torch.from_numpy(inputs.pose_heatmaps(inputs.scale_keypoints(kp, (64, 32)))).permute(2, 0, 1)
    )
    assert inputs.person_tensors(image, parsing, None)[2] is None
    assert inputs.clothes_labels("issue20") == (3, 4) and inputs.clothes_labels("issue2") == (2, 3)
