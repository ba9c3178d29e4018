"""Blockwise exact kNN: agrees with a float64 brute-force ranking, with and without bf16 screening."""

import numpy as np
import pytest
import torch

from spcreid.clustering.knn import (
    bfloat16_error_bound,
    normalised_features,
    topk_cosine_neighbours,
)
from spcreid.errors import SpcreidError


def brute_force_ranking(x: np.ndarray, k: int) -> np.ndarray:
    sim = x.astype(np.float64) @ x.astype(np.float64).T
    np.fill_diagonal(sim, np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


@pytest.fixture
def clustered() -> np.ndarray:
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((8, 48))
    x = centres[rng.integers(0, 8, 300)] + 0.8 * rng.standard_normal((300, 48))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("screen", [False, True])
def test_neighbours_match_brute_force_across_blocks(clustered, screen):
    features = normalised_features(clustered)
    result = topk_cosine_neighbours(features, 30, block_size=37, progress=False, screen=screen)
    expected = brute_force_ranking(clustered, 30)
    np.testing.assert_array_equal(result.indices, expected)
    assert result.indices.dtype == np.int32
    exact_sims = np.take_along_axis(clustered @ clustered.T, expected, axis=1)
    np.testing.assert_allclose(result.similarities, exact_sims, atol=1e-5)


def test_screening_falls_back_when_it_cannot_certify():
    # Similarities spread over ~0.003, well inside the bf16 error: every row must be redone.
    rng = np.random.default_rng(0)
    base = rng.standard_normal(64)
    x = base + 0.01 * rng.standard_normal((120, 64))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    result = topk_cosine_neighbours(normalised_features(x), 10, block_size=50, progress=False, screen=True)
    assert result.rows_redone_exactly == 120
    # Near-ties this close may swap order at float32 precision, so compare similarities.
    sim = x.astype(np.float64) @ x.astype(np.float64).T
    expected = np.take_along_axis(sim, brute_force_ranking(x, 10), axis=1)
    np.testing.assert_allclose(result.similarities, expected, atol=1e-6)
    np.testing.assert_array_equal(result.indices[:, 0], np.arange(120))


def test_bfloat16_error_bound_holds_and_is_tight_enough():
    dim = 512
    rng = np.random.default_rng(1)
    x = torch.nn.functional.normalize(torch.from_numpy(rng.standard_normal((400, dim))).float(), dim=1)
    approx = (x.bfloat16() @ x.bfloat16().T).double()
    exact = x.double() @ x.double().T
    bound = bfloat16_error_bound(dim)
    assert float((approx - exact).abs().max()) <= bound
    assert bound < 0.02  # a looser bound would make the shortlist useless


def test_point_is_its_own_first_neighbour_even_with_duplicates():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 16)).astype(np.float32)
    x = np.concatenate([x, x[:3], x[:3]])  # rows 10..15 duplicate rows 0..2
    result = topk_cosine_neighbours(normalised_features(x), 4, progress=False)
    np.testing.assert_array_equal(result.indices[:, 0], np.arange(16))
    # Row 0's next neighbours are its two copies (10 and 13), in some order.
    assert set(result.indices[0, 1:3]) == {10, 13}


def test_k_is_clamped_to_the_number_of_points():
    x = np.eye(5, 8, dtype=np.float32) + 0.1
    result = topk_cosine_neighbours(normalised_features(x), 30, progress=False)
    assert result.indices.shape == (5, 5)
    assert sorted(result.indices[2]) == [0, 1, 2, 3, 4]


def test_normalised_features_rescales_rows_and_accepts_torch():
    x = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    np.testing.assert_allclose(normalised_features(x).numpy(), [[0.6, 0.8], [0.0, 1.0]], rtol=1e-6)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros(5, dtype=np.float32), "shape"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), "row 1"),
        ([[1.0, 0.0]], "numpy array or torch tensor"),
    ],
)
def test_bad_features_raise_a_user_error(bad, message):
    with pytest.raises(SpcreidError, match=message):
        normalised_features(bad)
