"""Training image pipeline: one crop and flip shared by a source and its copies, determinism, errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from spcreid.engine.images import IMAGENET_MEAN, IMAGENET_STD, DecodedImageCache, TrainImages, normalise
from spcreid.errors import SpcreidError

# Images are stored at the enlarged size the pipeline loads (target 32x16, margin 0.25 -> 40x20),
# so resizing is the identity and every output pixel can be traced back to a stored one.
HEIGHT, WIDTH, MARGIN = 32, 16, 0.25
LOAD_H, LOAD_W = 40, 20


def asymmetric_pixels(shift: int = 0) -> np.ndarray:
    """Every pixel unique: red encodes the column (left dark, right bright), green the row."""
    rows, cols = np.meshgrid(np.arange(LOAD_H), np.arange(LOAD_W), indexing="ij")
    pixels = np.stack([cols * 10 + shift, rows * 6, np.full_like(rows, 100 + shift)], axis=-1)
    return pixels.astype(np.uint8)


def save_png(path, pixels):
    Image.fromarray(pixels).save(path)
    return path


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """Undo the ImageNet normalisation: (..., 3, H, W) float -> (..., H, W, 3) uint8."""
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = (tensor * std + mean) * 255.0
    return pixels.round().clamp(0, 255).to(torch.uint8).movedim(-3, -1).numpy()


def locate_window(output: np.ndarray, stored: np.ndarray) -> tuple[int, int, bool]:
    """Find the (top, left, flipped) crop of ``stored`` that equals ``output``."""
    for flip in (False, True):
        source = stored[:, ::-1] if flip else stored
        for top in range(LOAD_H - HEIGHT + 1):
            for left in range(LOAD_W - WIDTH + 1):
                # A flip mirrors the crop window too: read it from the mirrored source.
                if np.array_equal(source[top : top + HEIGHT, left : left + WIDTH], output):
                    return top, left, flip
    raise AssertionError("output is not a pad-free HxW window of the stored image")


@pytest.fixture
def source(tmp_path):
    return save_png(tmp_path / "source.png", asymmetric_pixels())


def test_normalise_matches_imagenet_statistics():
    white = torch.full((3, 1, 1), 255, dtype=torch.uint8)
    expected = [(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]
    torch.testing.assert_close(normalise(white).flatten(), torch.tensor(expected))


def test_no_margin_and_no_flip_reproduces_the_image(tmp_path, source):
    images = TrainImages([source], height=LOAD_H, width=LOAD_W, crop_margin=0.0, flip_prob=0.0)
    out = images.sample(0, torch.Generator().manual_seed(0))
    assert out.shape == (1, 3, LOAD_H, LOAD_W) and out.dtype == torch.float32
    assert np.array_equal(to_uint8(out[0]), asymmetric_pixels())


def test_flip_mirrors_left_and_right(source):
    images = TrainImages([source], height=LOAD_H, width=LOAD_W, crop_margin=0.0, flip_prob=1.0)
    out = to_uint8(images.sample(0, torch.Generator().manual_seed(0))[0])
    assert np.array_equal(out, asymmetric_pixels()[:, ::-1])
    assert out[0, 0, 0] == (LOAD_W - 1) * 10  # the bright right edge is now on the left


def test_crops_are_pad_free_windows_at_varying_offsets(source):
    images = TrainImages([source], height=HEIGHT, width=WIDTH, crop_margin=MARGIN)
    seen = set()
    for seed in range(40):
        out = images.sample(0, torch.Generator().manual_seed(seed))
        assert out.shape == (1, 3, HEIGHT, WIDTH)
        seen.add(locate_window(to_uint8(out[0]), asymmetric_pixels()))
    tops = {top for top, _, _ in seen}
    lefts = {left for _, left, _ in seen}
    flips = {flip for _, _, flip in seen}
    assert len(tops) > 3 and len(lefts) > 2 and flips == {False, True}


def test_identical_copies_come_out_identical_to_their_source(tmp_path, source):
    copies = [shutil.copy(source, tmp_path / f"copy{k}.png") for k in range(3)]
    images = TrainImages([source], copies=[copies], height=HEIGHT, width=WIDTH, crop_margin=MARGIN)
    for seed in range(10):
        group = images.sample(0, torch.Generator().manual_seed(seed))
        assert group.shape == (4, 3, HEIGHT, WIDTH)
        for member in group[1:]:
            assert torch.equal(member, group[0])


def test_different_copies_share_the_sources_crop_window_and_flip(tmp_path, source):
    copy = save_png(tmp_path / "copy.png", asymmetric_pixels(shift=3))
    images = TrainImages([source], copies=[[copy]], height=HEIGHT, width=WIDTH, crop_margin=MARGIN)
    for seed in range(20):
        group = to_uint8(images.sample(0, torch.Generator().manual_seed(seed)))
        assert locate_window(group[0], asymmetric_pixels()) == locate_window(group[1], asymmetric_pixels(3))


def test_same_seed_same_batch_different_seed_different_batch(tmp_path, source):
    other = save_png(tmp_path / "other.png", asymmetric_pixels(shift=50))
    images = TrainImages([source, other], height=HEIGHT, width=WIDTH, crop_margin=MARGIN)
    first = images.batch([0, 1, 0, 1], torch.Generator().manual_seed(3))
    again = TrainImages([source, other], height=HEIGHT, width=WIDTH, crop_margin=MARGIN).batch(
        [0, 1, 0, 1], torch.Generator().manual_seed(3)
    )
    assert torch.equal(first, again)
    assert not torch.equal(first, images.batch([0, 1, 0, 1], torch.Generator().manual_seed(4)))


def test_batch_layouts_and_agreement_with_sample(tmp_path):
    sources = [save_png(tmp_path / f"s{i}.png", asymmetric_pixels(shift=10 * i)) for i in range(3)]
    copies = [[save_png(tmp_path / f"s{i}c{k}.png", asymmetric_pixels(shift=10 * i + k + 1)) for k in range(2)]
              for i in range(3)]
    images = TrainImages(sources, copies=copies, height=HEIGHT, width=WIDTH, crop_margin=MARGIN)
    indices = [2, 0]
    source_major = images.batch(indices, torch.Generator().manual_seed(9))
    assert source_major.shape == (2 * 3, 3, HEIGHT, WIDTH)
    stream = torch.Generator().manual_seed(9)
    expected = torch.cat([images.sample(i, stream) for i in indices])
    assert torch.equal(source_major, expected)
    copy_major = images.batch(indices, torch.Generator().manual_seed(9), layout="copy-major")
    assert torch.equal(copy_major.view(3, 2, 3, HEIGHT, WIDTH).transpose(0, 1).reshape(-1, 3, HEIGHT, WIDTH),
                       source_major)
    # Source-major position 1 is the first copy of source 2 (blue channel 100 + 21).
    assert to_uint8(source_major[1])[..., 2].max() == 100 + 21


def test_decoding_threads_do_not_change_the_batch(tmp_path):
    sources = [save_png(tmp_path / f"s{i}.png", asymmetric_pixels(shift=7 * i)) for i in range(6)]
    indices = [5, 1, 3, 0, 2, 4, 1]
    serial = TrainImages(sources, height=HEIGHT, width=WIDTH, crop_margin=MARGIN)
    threaded = TrainImages(sources, height=HEIGHT, width=WIDTH, crop_margin=MARGIN, workers=3)
    assert torch.equal(serial.batch(indices, torch.Generator().manual_seed(1)),
                       threaded.batch(indices, torch.Generator().manual_seed(1)))


def test_images_of_any_size_are_resized_to_the_target(tmp_path):
    big = save_png(tmp_path / "big.png", np.random.default_rng(0).integers(0, 255, (97, 41, 3), dtype=np.uint8))
    gray = tmp_path / "gray.jpg"
    Image.fromarray(np.full((30, 30), 128, dtype=np.uint8)).save(gray)
    images = TrainImages([big, gray], height=HEIGHT, width=WIDTH)
    assert images.batch([0, 1], torch.Generator().manual_seed(0)).shape == (2, 3, HEIGHT, WIDTH)


def test_unreadable_or_missing_image_is_named(tmp_path, source):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 definitely not a jpeg")
    images = TrainImages([source, broken, tmp_path / "gone.png"], height=HEIGHT, width=WIDTH)
    with pytest.raises(SpcreidError, match=r"broken\.jpg cannot be decoded"):
        images.batch([0, 1], torch.Generator().manual_seed(0))
    with pytest.raises(SpcreidError, match=r"gone\.png is missing"):
        images.sample(2, torch.Generator().manual_seed(0))


def test_copies_must_match_the_sources(tmp_path, source):
    other = save_png(tmp_path / "other.png", asymmetric_pixels(shift=1))
    with pytest.raises(SpcreidError, match="copies for 1 source images but 2"):
        TrainImages([source, other], copies=[[source]])
    with pytest.raises(SpcreidError, match=r"other\.png has 2 synthetic copies, others have 1"):
        TrainImages([source, other], copies=[[source], [source, source]])


def test_cache_evicts_least_recently_used_within_its_byte_budget():
    loads = []

    def load(path):
        loads.append(path)
        return torch.zeros(100, dtype=torch.uint8)

    cache = DecodedImageCache(max_bytes=250)
    for name in ("a", "b", "a", "c", "a", "b"):
        cache.get(name, load)
    # "a" was used last before "c" arrived, so "b" was the one evicted and loaded again.
    assert loads == ["a", "b", "c", "b"]
    assert len(cache) == 2
