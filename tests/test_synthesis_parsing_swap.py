"""parsing-swap: garment shapes and shoes are redrawn, the head and uncovered skin keep the source bytes."""

import numpy as np
import pytest
from PIL import Image

from spcreid.data.parsing_labels import ARMS, BACKGROUND, FACE, HAIR, LEGS, LOWER_CLOTHES, SHOES, UPPER_CLOTHES
from spcreid.errors import SpcreidError
from spcreid.synthesis.base import Person, check_person, get_synthesizer, load_person
from spcreid.synthesis.parsing_swap import ParsingSwap, rgb_to_ycc, ycc_to_rgb
from spcreid.toy import generator as toy

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
    image = (
        rng.integers(0, 256, (H, W, 3), dtype=np.uint8) if noise_seed is not None else np.full((H, W, 3), 90, np.uint8)
    )
    parsing = body_parsing()
    image[parsing == UPPER_CLOTHES] = upper
    image[parsing == LOWER_CLOTHES] = lower
    return Person(image, parsing)


def rendered(pid: int, clothes: int, camid: int = 3, seed: int = 7) -> Person:
    """A real toy person (128 x 64) with its exact parsing map."""
    config = toy.ToyConfig(seed=seed)
    image, parsing = toy.render_image(config, toy.ToyImage(pid, camid, clothes, 1, "gallery"))
    return check_person(image, parsing, where=f"toy {pid}")


def find_pair(condition) -> tuple[Person, Person, toy.render.Outfit, toy.render.Outfit]:
    """The first (source, donor) of toy seed 7 whose outfits satisfy ``condition(source_outfit, donor_outfit)``."""
    for pid in range(1, 60):
        for other in range(pid + 1, 60):
            a, b = toy.sample_outfits(7, pid)[0], toy.sample_outfits(7, other)[0]
            if condition(a, b):
                return rendered(pid, 1), rendered(other, 1), a, b
    raise AssertionError("no such pair in the first 60 identities")


def test_head_and_uncovered_skin_keep_the_source_bytes_on_a_real_image():
    source, donor, _, _ = find_pair(lambda a, b: True)
    copy, labels = ParsingSwap().swap_with_parsing(source, donor)
    head = np.isin(source.parsing, (FACE, HAIR))
    assert np.array_equal(copy[head], source.image[head])
    assert np.array_equal(labels[head], source.parsing[head])
    # Skin and background the new outfit does not cover are untouched too.
    for label in (ARMS, LEGS, BACKGROUND):
        kept = (source.parsing == label) & ~np.isin(labels, (UPPER_CLOTHES, LOWER_CLOTHES, SHOES))
        assert kept.sum() > 0
        assert np.array_equal(copy[kept], source.image[kept])


def test_trousers_to_skirt_redraws_the_garment_shape():
    source, donor, _, _ = find_pair(lambda a, b: a.bottom_style == "trousers" and b.bottom_style == "skirt")
    copy, labels = ParsingSwap().swap_with_parsing(source, donor)
    lower_rows = np.flatnonzero((labels == LOWER_CLOTHES).any(axis=1))
    source_rows = np.flatnonzero((source.parsing == LOWER_CLOTHES).any(axis=1))
    # The skirt ends well above where the trousers did, and the legs show below it in the source's skin.
    assert lower_rows[-1] < source_rows[-1] - 10
    bare = (labels == LEGS) & (source.parsing == LOWER_CLOTHES)
    assert bare.sum() > 20
    skin = np.median(source.image[source.parsing == LEGS], axis=0) if (source.parsing == LEGS).any() else None
    if skin is None:
        skin = np.median(source.image[source.parsing == ARMS], axis=0)
    assert np.abs(copy[bare].astype(int) - skin).max() <= 1
    # A skirt is wider than trouser legs: it covers former background.
    assert ((labels == LOWER_CLOTHES) & (source.parsing == BACKGROUND)).sum() > 20


def test_short_to_long_sleeves_cover_the_arms():
    source, donor, _, _ = find_pair(lambda a, b: a.top_style in ("tank", "tshirt") and b.top_style == "longsleeve")
    _, labels = ParsingSwap().swap_with_parsing(source, donor)
    # The donor's sleeves land where the donor's arms were, so only part of the source's bare arms
    # (which swing differently) end up sleeved; enough to change the garment's look.
    sleeved = ((labels == UPPER_CLOTHES) & (source.parsing == ARMS)).sum()
    assert sleeved > 0.15 * (source.parsing == ARMS).sum()


def test_shoes_are_redrawn_with_the_donors_style_and_colour():
    source, donor, a, b = find_pair(
        lambda a, b: (
            a.shoe_style == "low" and b.shoe_style == "boots" and np.abs(np.subtract(a.shoes, b.shoes)).max() > 0.4
        )
    )
    copy, labels = ParsingSwap(shading_strength=0.0).swap_with_parsing(source, donor)
    assert (labels == SHOES).sum() > 1.5 * (source.parsing == SHOES).sum()  # boots reach up the shin
    shoes = labels == SHOES
    new_colour = np.median(copy[shoes], axis=0)
    donor_colour = np.median(donor.image[donor.parsing == SHOES], axis=0)
    old_colour = np.median(source.image[source.parsing == SHOES], axis=0)
    assert np.abs(new_colour - donor_colour).max() < np.abs(new_colour - old_colour).max()


def test_uncovered_garment_pixels_become_background_of_the_same_row():
    source, donor, _, _ = find_pair(lambda a, b: a.bottom_style == "dress" and b.bottom_style == "trousers")
    copy, labels = ParsingSwap().swap_with_parsing(source, donor)
    freed = (labels == BACKGROUND) & (source.parsing != BACKGROUND)
    assert freed.sum() > 20
    for row in np.flatnonzero(freed.any(axis=1))[:5]:
        backdrop = source.image[row][source.parsing[row] == BACKGROUND].astype(float).mean(axis=0)
        assert np.abs(copy[row][freed[row]].astype(float) - backdrop).max() <= 1.0


def test_flat_donor_colours_arrive_and_copies_are_deterministic():
    source = flat_person((128, 128, 128), (60, 60, 60), noise_seed=4)
    donor = flat_person((200, 30, 30), (30, 30, 200))
    (copy,) = ParsingSwap(shading_strength=0.0).synthesize(source, [donor])
    upper = body_parsing() == UPPER_CLOTHES
    assert np.array_equal(np.unique(copy[upper], axis=0), [[200, 30, 30]])
    assert np.array_equal(copy, ParsingSwap(shading_strength=0.0).synthesize(source, [donor])[0])


def test_donor_without_a_person_leaves_the_source_unchanged():
    source = flat_person((128, 128, 128), (60, 60, 60), noise_seed=3)
    empty = Person(np.zeros((H, W, 3), np.uint8), np.zeros((H, W), np.uint8))
    (copy,) = ParsingSwap().synthesize(source, [empty])
    assert np.array_equal(copy, source.image)


def test_one_copy_per_donor_in_order():
    source = flat_person((128, 128, 128), (60, 60, 60), noise_seed=4)
    donors = [flat_person((200, 0, 0), (0, 0, 200)), flat_person((0, 200, 0), (200, 200, 0))]
    first, second = get_synthesizer("parsing-swap").synthesize(source, donors)
    assert first[20, 12, 0] > first[20, 12, 1] and second[20, 12, 1] > second[20, 12, 0]


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


def test_bench_synthesis_reports_each_repeat_and_the_median(capsys):
    import json

    from spcreid.cli import main as spcreid_main

    assert (
        spcreid_main(
            [
                "bench",
                "synthesis",
                "--sources",
                "8",
                "--copies",
                "2",
                "--repeats",
                "3",
                "--height",
                "64",
                "--width",
                "32",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["sources"] == 8 and result["copies_per_source"] == 2 and result["image_size"] == [64, 32]
    assert len(result["copies_per_s"]) == 3 and all(v > 0 for v in result["copies_per_s"])
    assert result["copies_per_s_median"] == sorted(result["copies_per_s"])[1]
    assert spcreid_main(["bench", "synthesis", "--sources", "4", "--copies", "4"]) != 0
    assert "--copies in 1..sources-1" in capsys.readouterr().err
