"""The toy generator: determinism, layout, parsing maps, identity vs. outfit cues, atomic writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spcreid.data.parsing_labels import ARMS, FACE, HAIR, LEGS, LOWER_CLOTHES, NUM_LABELS, UPPER_CLOTHES
from spcreid.errors import SpcreidError
from spcreid.io import sha256_file
from spcreid.toy import generator as toy

SMALL = toy.ToyConfig(seed=3, identities=6, images_per_camera=2, height=96, width=48)
NAME = re.compile(r"(\d{4})-(\d{2})-(\d{2})-(\d{2})\.jpg")


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def parse_names(root: Path) -> list[tuple[str, int, int, int, int]]:
    """(folder, pid, cam, clothes, idx) for every image, parsed from the basename."""
    rows = []
    for folder in ("train", "query", "gallery"):
        for path in sorted((root / "VC-Clothes" / folder).iterdir()):
            match = NAME.fullmatch(path.name)
            assert match, f"bad image name {path.name}"
            rows.append((folder, *map(int, match.groups())))
    return rows


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("toy") / "small"
    assert toy.generate_toy_dataset(out, SMALL, progress=False) is True
    return out


def test_same_seed_gives_identical_bytes_and_other_seed_differs(small, tmp_path):
    again = tmp_path / "again"
    toy.generate_toy_dataset(again, SMALL, progress=False)
    assert tree_hashes(again) == tree_hashes(small)

    other = tmp_path / "other"
    toy.generate_toy_dataset(other, toy.ToyConfig(**{**SMALL.__dict__, "seed": 4}), progress=False)
    first, second = tree_hashes(small), tree_hashes(other)
    assert len(first) == len(second)
    # Camera 1's outfit is drawn per person, so some names change with the seed; the rest must differ in content.
    shared = [name for name in first if name.endswith(".jpg") and name in second]
    assert len(shared) >= 0.75 * len(first) / 2
    assert all(first[name] != second[name] for name in shared)


def test_layout_names_and_splits(small):
    rows = parse_names(small)
    assert len(rows) == SMALL.identities * 4 * SMALL.images_per_camera
    train_pids = {pid for folder, pid, *_ in rows if folder == "train"}
    test_pids = {pid for folder, pid, *_ in rows if folder != "train"}
    assert train_pids == {1, 2, 3} and test_pids == {4, 5, 6}
    assert {cam for _, _, cam, _, _ in rows} == {1, 2, 3, 4}
    # Test identities: image 01 of each camera is the query, the rest are gallery, in every camera.
    for pid in test_pids:
        for cam in (1, 2, 3, 4):
            queries = [idx for f, p, c, _, idx in rows if f == "query" and p == pid and c == cam]
            gallery = [idx for f, p, c, _, idx in rows if f == "gallery" and p == pid and c == cam]
            assert queries == [1] and gallery == [2]
    meta = json.loads((small / "toy.json").read_text())
    assert meta["parameters"] == {
        "seed": 3,
        "identities": 6,
        "images_per_camera": 2,
        "height": 96,
        "width": 48,
        "test_identities": None,
        "train_outfits": None,
        "head_scale": 1.0,
    }
    assert meta["counts"] == {"train": 24, "query": 12, "gallery": 12}


def test_parsing_maps_match_images_and_hold_only_known_labels(small):
    seen = set()
    for folder, pid, cam, clothes, idx in parse_names(small):
        stem = f"{pid:04d}-{cam:02d}-{clothes:02d}-{idx:02d}"
        image = Image.open(small / "VC-Clothes" / folder / f"{stem}.jpg")
        parsing = Image.open(small / "parsing" / "VC-Clothes" / folder / f"{stem}.png")
        assert image.mode == "RGB" and parsing.mode == "L"
        assert image.size == parsing.size == (SMALL.width, SMALL.height)
        labels = set(np.unique(np.asarray(parsing)).tolist())
        assert labels <= set(range(NUM_LABELS))
        # Every person shows a face, a top and a bottom, against some background.
        assert {0, FACE, UPPER_CLOTHES} <= labels  # a dress has no lower clothes
        seen |= labels
    assert seen == set(range(NUM_LABELS))


def test_vcclothes_camera_outfit_semantics_for_test_identities():
    config = toy.ToyConfig(seed=5, identities=24, images_per_camera=2, train_outfits=6)
    outfits: dict[int, dict[int, set[int]]] = {}
    for image in toy.plan_images(config):
        if image.folder != "train":
            outfits.setdefault(image.pid, {}).setdefault(image.camid, set()).add(image.clothes_id)
    assert len(outfits) == 12
    camera1 = []
    for per_camera in outfits.values():
        assert per_camera[2] == per_camera[3] == {1}
        assert per_camera[4] == {2}
        assert len(per_camera[1]) == 1 and per_camera[1] <= {1, 2}
        camera1.append(next(iter(per_camera[1])))
        assert len(set().union(*per_camera.values())) >= 2
    # "Camera 1 either": both outfits occur there across people.
    assert set(camera1) == {1, 2}


@pytest.mark.parametrize("train_outfits, ipc", [(1, 2), (4, 2), (8, 2), (3, 3)])
def test_training_identities_cycle_their_outfits_over_cameras(train_outfits, ipc):
    config = toy.ToyConfig(seed=5, identities=10, test_identities=4, images_per_camera=ipc, train_outfits=train_outfits)
    train = [image for image in toy.plan_images(config) if image.folder == "train"]
    assert {image.pid for image in train} == set(range(1, 7))
    for pid in range(1, 7):
        mine = [image for image in train if image.pid == pid]
        by_outfit: dict[int, set[int]] = {}
        for image in mine:
            by_outfit.setdefault(image.clothes_id, set()).add(image.camid)
        # Every outfit is worn, equally often (4 cameras x ipc images), and the images of one camera differ.
        assert set(by_outfit) == set(range(1, train_outfits + 1))
        counts = [sum(image.clothes_id == c for image in mine) for c in by_outfit]
        assert max(counts) - min(counts) <= 1
        if train_outfits >= ipc:
            for camid in toy.CAMERAS:
                worn = [image.clothes_id for image in mine if image.camid == camid]
                assert len(set(worn)) == len(worn)
        # An outfit is not a camera: with fewer outfits than images, each one is seen by more than one camera.
        if train_outfits < 4 * ipc:
            assert all(len(cams) >= 2 for cams in by_outfit.values())


def test_test_identities_count_and_range():
    config = toy.ToyConfig(seed=1, identities=20, test_identities=6)
    train, test = toy.train_test_pids(config)
    assert train == list(range(1, 15)) and test == list(range(15, 21))
    assert toy.train_test_pids(toy.ToyConfig(identities=7)) == ([1, 2, 3], [4, 5, 6, 7])
    for bad in (1, 19):
        with pytest.raises(SpcreidError, match="--test-identities"):
            toy.ToyConfig(identities=20, test_identities=bad).validate()


def _mean_colour(rgb: np.ndarray, labels: np.ndarray, label: int) -> np.ndarray:
    pixels = rgb[labels == label]
    assert len(pixels) > 0
    return pixels.mean(axis=0) / 255.0


def test_changing_clothes_changes_clothes_pixels_only():
    """Same person, camera and pose, other outfit: clothes colours move, skin and hair do not."""
    config = toy.ToyConfig(seed=7)
    cameras = toy.sample_cameras(config.seed)
    for pid in range(1, 13):
        first = toy.render_image(config, toy.ToyImage(pid, 3, 1, 1, "gallery"), cameras)
        second = toy.render_image(config, toy.ToyImage(pid, 3, 2, 1, "gallery"), cameras)
        # A dress has no lower clothes: compare the garments both outfits have.
        clothes_shift = max(
            np.linalg.norm(_mean_colour(*first, label) - _mean_colour(*second, label))
            for label in (UPPER_CLOTHES, LOWER_CLOTHES)
            if (first[1] == label).any() and (second[1] == label).any()
        )
        assert clothes_shift > 0.15
        for label in (FACE, HAIR):
            if not (first[1] == label).any():
                continue  # bald
            assert np.linalg.norm(_mean_colour(*first, label) - _mean_colour(*second, label)) < 0.02


def test_outfits_come_from_a_shared_palette_and_differ_within_a_person():
    palette = toy.CLOTHES_PALETTE
    for pid in range(1, 25):
        one, two = toy.sample_outfits(0, pid)
        nearest = [int(np.argmin(np.linalg.norm(palette - np.asarray(c), axis=1))) for c in (one.top, two.top)]
        assert nearest[0] != nearest[1]
        # Colours are palette entries up to a small jitter, not per-person inventions.
        for colour in (one.top, one.bottom, two.top, two.bottom):
            assert np.min(np.linalg.norm(palette - np.asarray(colour), axis=1)) < 0.15


def test_identities_differ_in_body_hair_face_and_skin():
    people = [toy.sample_identity(0, pid) for pid in range(1, 101)]
    assert len({p.hair_style for p in people}) == len(toy.render.HAIR_STYLES)
    assert np.ptp([p.stature for p in people]) > 0.15
    assert np.ptp([p.shoulder for p in people]) > 0.06
    assert np.ptp([p.leg for p in people]) > 0.09
    assert np.ptp([p.limb for p in people]) > 0.015
    assert np.ptp([p.head_aspect for p in people]) > 0.18
    assert np.ptp([np.mean(p.skin) for p in people]) > 0.5
    hair = np.array([p.hair_colour for p in people])
    # Continuous colours: (almost) no two people share a hair colour; some are dyed (saturated, not brown).
    assert len({tuple(np.round(h, 2)) for h in hair}) >= 95
    saturation = hair.max(1) - hair.min(1)
    assert (saturation > 0.4).sum() >= 10
    assert 5 <= sum(p.beard for p in people) <= 40 and 15 <= sum(p.glasses is not None for p in people) <= 50


def test_head_is_several_pixels_wide_at_the_training_resolution():
    """At 128 x 64 (downscaled 2x for the 64 x 32 train input) face + hair span >= 16 x 22 px (8 x 11 trained)."""
    config = toy.ToyConfig(seed=0)
    cameras = toy.sample_cameras(0)
    for pid in range(1, 21):
        for camid in toy.CAMERAS:
            _, labels = toy.render_image(config, toy.ToyImage(pid, camid, 1, 1, "gallery"), cameras)
            head = np.isin(labels, (FACE, HAIR))
            cols = np.flatnonzero(head.any(axis=0))
            rows = np.flatnonzero(head.any(axis=1))
            assert cols[-1] - cols[0] + 1 >= 16 and rows[-1] - rows[0] + 1 >= 22


def test_outfits_change_garment_shapes_and_shoes():
    pairs = [toy.sample_outfits(0, pid) for pid in range(1, 101)]
    outfits = [o for pair in pairs for o in pair]
    assert {o.top_style for o in outfits} == set(toy.render.TOP_STYLES)
    assert {o.bottom_style for o in outfits} == set(toy.render.BOTTOM_STYLES)
    assert {o.shoe_style for o in outfits} == set(toy.render.SHOE_STYLES)
    changed = [a.top_style != b.top_style or a.bottom_style != b.bottom_style for a, b in pairs]
    assert np.mean(changed) > 0.6
    # Rendered: a dress has no lower clothes, shorts show bare legs, boots are taller than shoes.
    config = toy.ToyConfig(seed=0)
    seen = set()
    for pid in range(1, 101):
        for clothes, outfit in enumerate(toy.sample_outfits(0, pid), start=1):
            _, labels = toy.render_image(config, toy.ToyImage(pid, 2, clothes, 1, "gallery"))
            if outfit.bottom_style == "dress":
                assert not (labels == LOWER_CLOTHES).any()
                seen.add("dress")
            elif outfit.bottom_style == "shorts":
                assert (labels == LEGS).sum() > 25
                seen.add("shorts")
            elif outfit.bottom_style == "trousers":
                assert (labels == LEGS).sum() < 20
                seen.add("trousers")
            if outfit.top_style == "tank":
                assert (labels == ARMS).sum() > 80
    assert seen == {"dress", "shorts", "trousers"}


def test_rerun_with_same_arguments_does_nothing(small):
    before = {p: p.stat().st_mtime_ns for p in small.rglob("*")}
    assert toy.generate_toy_dataset(small, SMALL, progress=False) is False
    assert {p: p.stat().st_mtime_ns for p in small.rglob("*")} == before


def test_new_arguments_replace_an_earlier_toy_dataset(tmp_path):
    out = tmp_path / "data"
    toy.generate_toy_dataset(out, SMALL, progress=False)
    bigger = toy.ToyConfig(**{**SMALL.__dict__, "images_per_camera": 3})
    assert toy.generate_toy_dataset(out, bigger, progress=False) is True
    assert len(parse_names(out)) == SMALL.identities * 4 * 3
    assert json.loads((out / "toy.json").read_text())["parameters"]["images_per_camera"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_interrupted_run_leaves_no_partial_dataset(tmp_path, monkeypatch):
    out = tmp_path / "data"
    toy.generate_toy_dataset(out, SMALL, progress=False)
    before = tree_hashes(out)
    real_render = toy.render_image
    calls = {"n": 0}

    def failing_render(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return real_render(*args, **kwargs)

    monkeypatch.setattr(toy, "render_image", failing_render)
    with pytest.raises(KeyboardInterrupt):
        toy.generate_toy_dataset(out, toy.ToyConfig(**{**SMALL.__dict__, "seed": 9}), progress=False)
    assert tree_hashes(out) == before  # the old dataset is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no staging folder left behind

    calls["n"] = 0
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        toy.generate_toy_dataset(fresh, SMALL, progress=False)
    assert not fresh.exists()


def test_refuses_to_replace_a_folder_that_is_not_a_toy_dataset(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SpcreidError, match="not a toy dataset"):
        toy.generate_toy_dataset(tmp_path, SMALL, progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "field, value, flag",
    [
        ("identities", 1, "--identities"),
        ("images_per_camera", 1, "--images-per-camera"),
        ("height", 8, "--height"),
        ("width", 0, "--width"),
        ("seed", -1, "--seed"),
        ("train_outfits", 0, "--train-outfits"),
        ("train_outfits", 9, "--train-outfits"),
    ],
)
def test_bad_parameters_name_the_flag(tmp_path, field, value, flag):
    config = toy.ToyConfig(**{**SMALL.__dict__, field: value})
    with pytest.raises(SpcreidError, match=flag):
        toy.generate_toy_dataset(tmp_path / "x", config, progress=False)
    assert not (tmp_path / "x").exists()
