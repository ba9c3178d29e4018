"""Colour-histogram features (hand-checked bins) and the SC >> CC property of the default toy set."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from spcreid.errors import SpcreidError
from spcreid.evaluation.colour_histogram import colour_histogram, colour_histogram_features
from spcreid.toy.commands import toy_baseline
from spcreid.toy.generator import ToyConfig, generate_toy_dataset

# PIL HSV: pure red is (0, 255, 255) -> bins (0, 7, 7); pure blue is (170, 255, 255) -> bins (5, 7, 7)
# with 8 bins per channel. Flat index = (h * 8 + s) * 8 + v.
RED_BIN = (0 * 8 + 7) * 8 + 7
BLUE_BIN = (5 * 8 + 7) * 8 + 7


def half_red_half_blue() -> np.ndarray:
    image = np.zeros((4, 6, 3), np.uint8)
    image[:2, :, 0] = 255
    image[2:, :, 2] = 255
    return image


def test_solid_colours_land_in_the_hand_computed_bins():
    feature = colour_histogram(half_red_half_blue(), bins=8)
    assert feature.shape == (512,)
    expected = np.zeros(512, np.float32)
    expected[[RED_BIN, BLUE_BIN]] = 1 / np.sqrt(2)  # equal pixel counts, L2-normalised
    np.testing.assert_allclose(feature, expected, atol=1e-6)


def test_mask_counts_only_selected_pixels():
    mask = np.zeros((4, 6), bool)
    mask[:2] = True
    feature = colour_histogram(half_red_half_blue(), bins=8, mask=mask)
    assert feature[RED_BIN] == pytest.approx(1.0)
    assert feature[BLUE_BIN] == 0.0


def test_features_from_files_use_parsing_maps_as_person_masks(tmp_path):
    image_path, parsing_path = tmp_path / "a.png", tmp_path / "a_parsing.png"
    Image.fromarray(half_red_half_blue()).save(image_path)
    labels = np.zeros((4, 6), np.uint8)
    labels[2:] = 3  # the blue half is "upper clothes", the red half background
    Image.fromarray(labels, "L").save(parsing_path)
    whole = colour_histogram_features([image_path])
    person = colour_histogram_features([image_path], parsing=[parsing_path])
    assert whole.shape == person.shape == (1, 512)
    assert whole[0, RED_BIN] == pytest.approx(1 / np.sqrt(2), abs=1e-6)
    assert person[0, BLUE_BIN] == pytest.approx(1.0) and person[0, RED_BIN] == 0.0


def test_feature_errors_name_the_file(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(SpcreidError, match="broken.jpg"):
        colour_histogram_features([broken])
    with pytest.raises(SpcreidError, match="missing.jpg"):
        colour_histogram_features([tmp_path / "missing.jpg"])
    with pytest.raises(SpcreidError, match="bins"):
        colour_histogram_features([], bins=1)


def test_default_toy_set_is_easy_in_same_clothes_and_hard_across_clothes(tmp_path):
    generate_toy_dataset(tmp_path / "toy", ToyConfig(), progress=False)
    metrics = toy_baseline(tmp_path / "toy")
    sc, cc = metrics["sc"], metrics["cc"]
    # 12 test people, one query per camera: cameras 2+3 give 24 SC queries, 3+4 give 24 CC queries.
    assert sc["n_valid_queries"] == 24 and cc["n_valid_queries"] == 24
    assert sc["rank1"] > 0.8 and sc["mAP"] > 0.8
    assert cc["rank1"] < 0.35 and cc["mAP"] < 0.4
