"""Feature extraction: eval mode, no augmentation, input order kept, mode restored, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from spcreid.engine.decode import read_rgb
from spcreid.engine.features import extract_features
from spcreid.engine.images import normalise
from spcreid.errors import SpcreidError
from spcreid.models import build_model

HEIGHT, WIDTH = 64, 32


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def image_paths(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for index in range(5):
        pixels = rng.integers(0, 256, (80 + 4 * index, 40, 3), dtype=np.uint8)
        paths.append(tmp_path / f"img{index}.png")
        Image.fromarray(pixels).save(paths[-1])
    return paths


@pytest.fixture
def trained_looking_model():
    """A model whose BN running statistics differ from batch statistics, so train vs eval mode shows."""
    torch.manual_seed(0)
    model = build_model("resnet18-small")
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, HEIGHT, WIDTH) * 3 + 1)
    return model


def expected_features(model, paths):
    model.eval()
    with torch.no_grad():
        batch = torch.stack([normalise(read_rgb(p, HEIGHT, WIDTH)) for p in paths])
        return model(batch)


def test_features_match_a_plain_eval_forward_in_input_order(trained_looking_model, image_paths):
    features = extract_features(trained_looking_model, image_paths, HEIGHT, WIDTH, batch_size=2)
    assert features.shape == (5, 256) and features.dtype == torch.float32
    torch.testing.assert_close(features.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(features, expected_features(trained_looking_model, image_paths))
    reversed_features = extract_features(trained_looking_model, image_paths[::-1], HEIGHT, WIDTH, batch_size=3)
    torch.testing.assert_close(reversed_features, features.flip(0))


def test_no_flip_at_test_time(trained_looking_model, image_paths, tmp_path):
    mirrored = tmp_path / "mirrored.png"
    Image.open(image_paths[0]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(mirrored)
    features = extract_features(trained_looking_model, [image_paths[0], mirrored], HEIGHT, WIDTH)
    assert not torch.allclose(features[0], features[1], atol=1e-4)


def test_training_mode_is_restored_and_no_gradients_are_kept(trained_looking_model, image_paths):
    trained_looking_model.train()
    running_mean = trained_looking_model.neck.running_mean.clone()
    features = extract_features(trained_looking_model, image_paths, HEIGHT, WIDTH)
    assert trained_looking_model.training
    assert not features.requires_grad
    # Eval mode: BN statistics untouched by extraction.
    assert torch.equal(trained_looking_model.neck.running_mean, running_mean)


def test_empty_path_list_gives_an_empty_matrix(trained_looking_model):
    assert extract_features(trained_looking_model, [], HEIGHT, WIDTH).shape == (0, 256)


@pytest.mark.parametrize("workers", [0, 1])
def test_unreadable_image_is_named_in_a_one_line_error(trained_looking_model, image_paths, tmp_path, workers):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG but nothing else")
    with pytest.raises(SpcreidError, match=r"broken\.png cannot be decoded") as caught:
        extract_features(trained_looking_model, [*image_paths, broken], HEIGHT, WIDTH, batch_size=4, workers=workers)
    assert "\n" not in str(caught.value)


def test_features_from_decoded_uint8_equal_features_from_files(trained_looking_model, image_paths):
    from spcreid.engine.features import extract_tensor_features

    decoded = torch.stack([read_rgb(p, HEIGHT, WIDTH) for p in image_paths])
    from_tensor = extract_tensor_features(trained_looking_model, decoded, batch_size=2)
    assert torch.equal(from_tensor, extract_features(trained_looking_model, image_paths, HEIGHT, WIDTH, batch_size=2))
    assert extract_tensor_features(trained_looking_model, decoded[:0]).shape == (0, 256)
