"""parsing-swap: only clothes change, donor colour/pattern arrive, source shading survives."""

import numpy as np
import pytest
from PIL import Image

from spcreid.data.parsing_labels import ARMS, BACKGROUND, FACE, HAIR, LEGS, LOWER_CLOTHES, SHOES, UPPER_CLOTHES
from spcreid.errors import SpcreidError
from spcreid.synthesis.base import Person, check_person, get_synthesizer, load_person
from spcreid.synthesis.parsing_swap import ParsingSwap, rgb_to_ycc, ycc_to_rgb

H, W = 48, 24


def body_parsing() -> np.ndarray:
    """A stick-figure layout with every label: hair, face, upper with arms beside it, lower, legs, shoes."""
    p = np.full((H, W), BACKGROUND, np.uint8)
    p[2:6, 8:16] = HAIR
    p[6:12, 8:16] = FACE
    p[12:28, 6:18] = UPPER_CLOTHES
    p[12:24, 3:6] = ARMS
    p[12:24, 18:21] = ARMS
    p[28:38, 7:17] = LOWER_CLOTHES
    p[38:44, 7:17] = LEGS
    p[44:47, 7:17] = SHOES
    return p


def flat_person(upper, lower, noise_seed=None) -> Person:
    rng = np.random.default_rng(noise_seed)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8) if noise_seed is not None else np.full((H, W, 3), 90, np.uint8)
    parsing = body_parsing()
    image[parsing == UPPER_CLOTHES] = upper
    image[parsing == LOWER_CLOTHES] = lower
    return Person(image, parsing)


def test_everything_but_clothes_is_byte_identical():
    source = flat_person((200, 30, 30), (30, 30, 200), noise_seed=1)  # noise everywhere else
    donor = flat_person((20, 180, 40), (240, 240, 20), noise_seed=2)
    (copy,) = ParsingSwap().synthesize(source, [donor])
    keep = ~np.isin(source.parsing, (UPPER_CLOTHES, LOWER_CLOTHES))
    assert copy.dtype == np.uint8 and copy.shape == source.image.shape
    assert np.array_equal(copy[keep], source.image[keep])
    for label in (HAIR, FACE, ARMS, LEGS, SHOES, BACKGROUND):
        assert np.array_equal(copy[source.parsing == label], source.image[source.parsing == label])
    assert not np.array_equal(copy[source.parsing == UPPER_CLOTHES], source.image[source.parsing == UPPER_CLOTHES])


def test_flat_source_takes_the_donors_flat_colours():
    # Flat source luminance means shading 1 everywhere, so the donor's colours come through unchanged.
    source = flat_person((128, 128, 128), (60, 60, 60))
    donor = flat_person((200, 40, 40), (40, 60, 180))
    (copy,) = ParsingSwap().synthesize(source, [donor])
    assert np.abs(copy[source.parsing == UPPER_CLOTHES].astype(int) - (200, 40, 40)).max() <= 1
    assert np.abs(copy[source.parsing == LOWER_CLOTHES].astype(int) - (40, 60, 180)).max() <= 1


def test_source_shading_is_kept():
    source = flat_person((128, 128, 128), (60, 60, 60))
    upper = source.parsing == UPPER_CLOTHES
    left = upper & (np.arange(W)[None, :] < 12)
    source.image[left] = (64, 64, 64)  # a shadow over the left half of the shirt
    donor = flat_person((40, 200, 40), (40, 60, 180))
    (copy,) = ParsingSwap(shading_sigma=0.01).synthesize(source, [donor])
    luma = rgb_to_ycc(copy)[..., 0]
    shadow, lit = luma[14:26, 7:10].mean(), luma[14:26, 14:17].mean()
    # Source: left luma 64 vs right 128, so the copy's left side is clearly darker as well.
    assert shadow < 0.8 * lit
    # The chroma of both halves is the donor's green, whatever the shading.
    assert (copy[14:26, 7:10, 1] > copy[14:26, 7:10, 0]).all() and (copy[14:26, 14:17, 1] > copy[14:26, 14:17, 0]).all()


def test_donor_pattern_is_resampled_into_the_source_box():
    source = flat_person((128, 128, 128), (60, 60, 60))
    donor = flat_person((0, 0, 0), (40, 60, 180))
    donor_upper = donor.parsing == UPPER_CLOTHES  # columns 6..17
    columns = np.arange(W)[None, :]
    donor.image[donor_upper & (columns < 12)] = (220, 30, 30)  # left half red
    donor.image[donor_upper & (columns >= 12)] = (30, 30, 220)  # right half blue
    (copy,) = ParsingSwap().synthesize(source, [donor])
    left, right = copy[14:26, 6:10].astype(int), copy[14:26, 14:18].astype(int)
    assert (left[..., 0] > left[..., 2] + 80).all()
    assert (right[..., 2] > right[..., 0] + 80).all()


def test_missing_donor_region_falls_back_to_the_other_garment():
    source = flat_person((128, 128, 128), (128, 128, 128))
    donor = flat_person((200, 40, 40), (0, 0, 0))
    donor.parsing[donor.parsing == LOWER_CLOTHES] = LEGS  # e.g. a dress: no lower clothes
    (copy,) = ParsingSwap().synthesize(source, [donor])
    assert np.abs(copy[source.parsing == LOWER_CLOTHES].astype(int) - (200, 40, 40)).max() <= 1


def test_donor_without_clothes_leaves_the_source_unchanged():
    source = flat_person((200, 30, 30), (30, 30, 200), noise_seed=3)
    donor = flat_person((1, 2, 3), (4, 5, 6))
    donor.parsing[np.isin(donor.parsing, (UPPER_CLOTHES, LOWER_CLOTHES))] = ARMS
    (copy,) = ParsingSwap().synthesize(source, [donor])
    assert np.array_equal(copy, source.image)


def test_one_copy_per_donor_in_order_and_deterministic():
    source = flat_person((128, 128, 128), (60, 60, 60), noise_seed=4)
    donors = [flat_person((200, 0, 0), (0, 0, 200)), flat_person((0, 200, 0), (200, 200, 0))]
    swap = get_synthesizer("parsing-swap")
    first, second = swap.synthesize(source, donors)
    assert first[20, 12, 0] > first[20, 12, 1] and second[20, 12, 1] > second[20, 12, 0]
    again = swap.synthesize(source, donors)
    assert all(np.array_equal(a, b) for a, b in zip((first, second), again))


def test_ycbcr_round_trip_is_lossless_within_rounding():
    rgb = np.random.default_rng(0).integers(0, 256, (10, 10, 3), dtype=np.uint8)
    assert np.abs(ycc_to_rgb(rgb_to_ycc(rgb)).astype(int) - rgb).max() <= 1


def test_bad_inputs_raise_clear_errors(tmp_path):
    image = np.zeros((H, W, 3), np.uint8)
    with pytest.raises(SpcreidError, match="parsing map is 12x48 but the image is 24x48"):
        check_person(image, np.zeros((H, 12), np.uint8), where="x")
    bad = body_parsing()
    bad[0, 0] = 9
    with pytest.raises(SpcreidError, match="label 9"):
        check_person(image, bad, where="x")
    Image.fromarray(image).save(tmp_path / "a.jpg")
    Image.fromarray(bad).save(tmp_path / "a.png")
    with pytest.raises(SpcreidError, match=r"a\.png.*label 9"):
        load_person(tmp_path / "a.jpg", tmp_path / "a.png")
    wide = np.zeros((H, W + 2), np.uint8)
    Image.fromarray(wide).save(tmp_path / "b.png")
    with pytest.raises(SpcreidError, match=r"b\.png.*regenerate"):
        load_person(tmp_path / "a.jpg", tmp_path / "b.png")
    with pytest.raises(SpcreidError, match=r"missing\.png does not exist"):
        load_person(tmp_path / "a.jpg", tmp_path / "missing.png")
    with pytest.raises(SpcreidError, match="unknown synthesis backend 'nope'"):
        get_synthesizer("nope")
