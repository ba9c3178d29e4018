"""Training image pipeline: the decoded store, one crop and flip shared by a source and its copies,
determinism, store locations, errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from spcreid.engine.decode import read_rgb
from spcreid.engine.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TrainImages,
    crop_and_flip,
    normalise,
)
from spcreid.engine.store import ImageStore
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
    copies = [
        [save_png(tmp_path / f"s{i}c{k}.png", asymmetric_pixels(shift=10 * i + k + 1)) for k in range(2)]
        for i in range(3)
    ]
    images = TrainImages(sources, copies=copies, height=HEIGHT, width=WIDTH, crop_margin=MARGIN)
    indices = [2, 0]
    source_major = images.batch(indices, torch.Generator().manual_seed(9))
    assert source_major.shape == (2 * 3, 3, HEIGHT, WIDTH)
    stream = torch.Generator().manual_seed(9)
    expected = torch.cat([images.sample(i, stream) for i in indices])
    assert torch.equal(source_major, expected)
    copy_major = images.batch(indices, torch.Generator().manual_seed(9), layout="copy-major")
    assert torch.equal(
        copy_major.view(3, 2, 3, HEIGHT, WIDTH).transpose(0, 1).reshape(-1, 3, HEIGHT, WIDTH), source_major
    )
    # Source-major position 1 is the first copy of source 2 (blue channel 100 + 21).
    assert to_uint8(source_major[1])[..., 2].max() == 100 + 21


def test_decoding_processes_do_not_change_the_store_or_the_batch(tmp_path):
    sources = [save_png(tmp_path / f"s{i}.png", asymmetric_pixels(shift=7 * i)) for i in range(6)]
    indices = [5, 1, 3, 0, 2, 4, 1]
    serial = TrainImages(sources, height=HEIGHT, width=WIDTH, crop_margin=MARGIN)
    parallel = TrainImages(sources, height=HEIGHT, width=WIDTH, crop_margin=MARGIN, workers=2)
    assert torch.equal(serial.build().groups, parallel.build().groups)
    assert torch.equal(
        serial.batch(indices, torch.Generator().manual_seed(1)),
        parallel.batch(indices, torch.Generator().manual_seed(1)),
    )


def test_store_holds_exactly_what_direct_decoding_gives(tmp_path):
    """Images of other sizes and modes, so the store goes through real resizing and RGB conversion."""
    rng = np.random.default_rng(0)
    sources = [
        save_png(tmp_path / f"s{i}.png", rng.integers(0, 256, (50 + 9 * i, 23 + i, 3), dtype=np.uint8))
        for i in range(3)
    ]
    gray = tmp_path / "gray.jpg"
    Image.fromarray(rng.integers(0, 256, (61, 30), dtype=np.uint8)).save(gray)
    copies = [[gray, sources[2]], [sources[0], gray], [sources[1], sources[1]]]
    images = TrainImages(sources, copies, height=HEIGHT, width=WIDTH, crop_margin=MARGIN, plain=True)
    store = images.build()
    assert store.groups.shape == (3, 3, 3, LOAD_H, LOAD_W) and store.groups.dtype == torch.uint8
    assert store.location == "cpu" and store.nbytes == 3 * 3 * 3 * LOAD_H * LOAD_W + 3 * 3 * HEIGHT * WIDTH
    for i, group in enumerate(zip(sources, *zip(*copies))):
        for j, path in enumerate(group):
            assert torch.equal(store.groups[i, j], read_rgb(path, LOAD_H, LOAD_W))
        assert torch.equal(images.plain_images[i], read_rgb(sources[i], HEIGHT, WIDTH))


def test_crop_and_flip_by_hand():
    # One group of two members, 3x4 pixels, value = 10 * row + column (+ 100 for the second member).
    base = torch.arange(3)[:, None] * 10 + torch.arange(4)[None, :]
    group = torch.stack([base, base + 100])[:, None].expand(2, 3, 3, 4).to(torch.uint8)[None]
    window = crop_and_flip(group, torch.tensor([1]), torch.tensor([1]), torch.tensor([False]), 2, 2)
    assert window.shape == (1, 2, 3, 2, 2)
    assert window[0, 0, 0].tolist() == [[11, 12], [21, 22]]
    assert window[0, 1, 2].tolist() == [[111, 112], [121, 122]]
    mirrored = crop_and_flip(group, torch.tensor([0]), torch.tensor([2]), torch.tensor([True]), 2, 2)
    assert mirrored[0, 0, 1].tolist() == [[3, 2], [13, 12]]
    assert mirrored[0, 1, 0].tolist() == [[103, 102], [113, 112]]


def test_normalise_by_hand():
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8).view(3, 1, 1)
    expected = [(0 - 0.485) / 0.229, (0.2 - 0.456) / 0.224, (1 - 0.406) / 0.225]
    torch.testing.assert_close(normalise(pixels).flatten(), torch.tensor(expected))


def test_batch_equals_crop_flip_normalise_of_each_decoded_image(tmp_path):
    """The batched path is bit-identical to cropping, mirroring and normalising image by image."""
    sources = [save_png(tmp_path / f"s{i}.png", asymmetric_pixels(shift=5 * i)) for i in range(4)]
    copies = [[save_png(tmp_path / f"c{i}.png", asymmetric_pixels(shift=5 * i + 2))] for i in range(4)]
    images = TrainImages(sources, copies, height=HEIGHT, width=WIDTH, crop_margin=MARGIN)
    indices = [3, 1, 1, 0]
    batch = images.batch(indices, torch.Generator().manual_seed(5))
    stream = torch.Generator().manual_seed(5)
    expected = []
    for i in indices:
        top, left, flip = images.draw(stream)
        for path in (sources[i], copies[i][0]):
            window = read_rgb(path, LOAD_H, LOAD_W)[:, top : top + HEIGHT, left : left + WIDTH]
            expected.append(normalise(window.flip(-1) if flip else window))
    assert torch.equal(batch, torch.stack(expected))


def test_store_location_is_an_option(tmp_path, source, monkeypatch):
    assert TrainImages([source], store="device").build().location == "cpu"  # on a CPU run the CPU is the device
    with pytest.raises(SpcreidError, match="image_store is 'pinned' but training runs on the CPU"):
        TrainImages([source], store="pinned").build()
    with pytest.raises(SpcreidError, match="image_store is 'disk'"):
        TrainImages([source], store="disk")
    import psutil

    class Tight:
        available = 1000

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tight)
    with pytest.raises(SpcreidError, match=r"need 0\.0 GiB but only 0\.0 GiB are of host memory available"):
        ImageStore.decode([[source]], (LOAD_H, LOAD_W))


def test_images_of_any_size_are_resized_to_the_target(tmp_path):
    big = save_png(tmp_path / "big.png", np.random.default_rng(0).integers(0, 255, (97, 41, 3), dtype=np.uint8))
    gray = tmp_path / "gray.jpg"
    Image.fromarray(np.full((30, 30), 128, dtype=np.uint8)).save(gray)
    images = TrainImages([big, gray], height=HEIGHT, width=WIDTH)
    assert images.batch([0, 1], torch.Generator().manual_seed(0)).shape == (2, 3, HEIGHT, WIDTH)


def test_unreadable_or_missing_image_is_named(tmp_path, source):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 definitely not a jpeg")
    # The whole store is decoded before the first batch, so the first bad file stops it.
    images = TrainImages([source, broken, tmp_path / "gone.png"], height=HEIGHT, width=WIDTH)
    with pytest.raises(SpcreidError, match=r"broken\.jpg cannot be decoded"):
        images.batch([0], torch.Generator().manual_seed(0))
    with pytest.raises(SpcreidError, match=r"gone\.png is missing") as caught:
        TrainImages([source], copies=[[tmp_path / "gone.png"]], workers=1).sample(0, torch.Generator())
    assert "\n" not in str(caught.value)


def test_copies_must_match_the_sources(tmp_path, source):
    other = save_png(tmp_path / "other.png", asymmetric_pixels(shift=1))
    with pytest.raises(SpcreidError, match="copies for 1 source images but 2"):
        TrainImages([source, other], copies=[[source]])
    with pytest.raises(SpcreidError, match=r"other\.png has 2 synthetic copies, others have 1"):
        TrainImages([source, other], copies=[[source], [source, source]])


def test_a_packed_store_gives_the_same_batches_as_decoding(tmp_path, source):
    from spcreid.engine.store import save_packed

    other = save_png(tmp_path / "other.png", asymmetric_pixels(shift=1))
    copies = [[other, source], [source, other]]
    decoded = TrainImages([source, other], copies=copies, height=HEIGHT, width=WIDTH, crop_margin=MARGIN, plain=True)
    save_packed(decoded.build(), decoded.groups(), tmp_path / "packed.pt")

    def batch(images):
        return images.batch([1, 0, 1], torch.Generator().manual_seed(3))

    packed = TrainImages(
        [source, other], copies=copies, height=HEIGHT, width=WIDTH, crop_margin=MARGIN, plain=True,
        packed=tmp_path / "packed.pt",
    )  # fmt: skip
    assert torch.equal(batch(packed), batch(decoded))
    assert torch.equal(packed.plain_images, decoded.plain_images)
    # A run without copies (the baseline) or with fewer reads the leading members of each packed row.
    sources_only = TrainImages(
        [source, other], height=HEIGHT, width=WIDTH, crop_margin=MARGIN, packed=tmp_path / "packed.pt"
    )
    plain_sources = TrainImages([source, other], height=HEIGHT, width=WIDTH, crop_margin=MARGIN)
    assert torch.equal(batch(sources_only), batch(plain_sources))
    one_copy = TrainImages(
        [source, other], copies=[[other], [source]], height=HEIGHT, width=WIDTH, crop_margin=MARGIN,
        packed=tmp_path / "packed.pt",
    )  # fmt: skip
    assert batch(one_copy).shape == (6, 3, HEIGHT, WIDTH)


def test_a_packed_store_of_other_images_or_sizes_is_refused(tmp_path, source):
    from spcreid.engine.store import save_packed

    other = save_png(tmp_path / "other.png", asymmetric_pixels(shift=1))
    decoded = TrainImages([source, other], copies=[[other], [source]], height=HEIGHT, width=WIDTH, plain=True)
    path = tmp_path / "packed.pt"
    save_packed(decoded.build(), decoded.groups(), path)

    def load(paths, copies=None, height=HEIGHT, plain=True, packed=path):
        return TrainImages(paths, copies=copies, height=height, width=WIDTH, plain=plain, packed=packed).build()

    with pytest.raises(SpcreidError, match=r"do not match this run at source 1: .*other\.png.*source\.png"):
        load([source, source])
    with pytest.raises(SpcreidError, match="hold 2 sources, this run has 1"):
        load([source])
    with pytest.raises(SpcreidError, match=r"do not match this run at source 0"):
        load([source, other], copies=[[source], [other]])  # another synthesis cache
    with pytest.raises(SpcreidError, match=r"were decoded at \(36, 18\).*this run needs \(45, 18\)"):
        load([source, other], height=40)
    with pytest.raises(SpcreidError, match="packed images .*gone.pt not found; rebuild it"):
        load([source, other], packed=tmp_path / "gone.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(SpcreidError, match="junk.pt cannot be read"):
        load([source, other], packed=tmp_path / "junk.pt")
