"""The sparse k-reciprocal Jaccard distance equals a plain dense implementation of the definition."""

import math

import numpy as np
import pytest
from sklearn.cluster import DBSCAN

from spcreid.clustering.kreciprocal import half_width, jaccard_distance, reciprocal_graph
from spcreid.clustering.pseudo_labels import cluster_distances, renumber_by_first_occurrence


def dense_jaccard(x: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """Zhong et al.'s re-ranking distance, written out loop by loop on dense float64 matrices."""
    x = x.astype(np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    n = len(x)
    sim = x @ x.T
    ranking = sim.copy()
    np.fill_diagonal(ranking, np.inf)
    rank = np.argsort(-ranking, axis=1, kind="stable")
    width = min(k1, n)
    width_half = min(round(k1 / 2) + 1, width)

    def reciprocal(i, w):
        return {int(j) for j in rank[i, :w] if i in rank[j, :w]}

    main = [reciprocal(i, width) for i in range(n)]
    half = [reciprocal(i, width_half) for i in range(n)]
    v = np.zeros((n, n))
    for i in range(n):
        expanded = set(main[i])
        for c in main[i]:
            if len(half[c] & main[i]) > 2 / 3 * len(half[c]):
                expanded |= half[c]
        members = sorted(expanded)
        weights = np.exp(-(2 - 2 * sim[i, members]))
        v[i, members] = weights / weights.sum()
    k2 = min(k2, n)
    v_qe = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)])
    min_sums = np.stack([np.minimum(v_qe[i], v_qe).sum(axis=1) for i in range(n)])
    dist = 1 - min_sums / (2 - min_sums)
    np.fill_diagonal(dist, 0.0)
    return np.clip(dist, 0.0, 1.0)


def clustered_points(n=400, dim=32, clusters=12, noise=0.9, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def stored_mask(sparse) -> np.ndarray:
    mask = np.zeros(sparse.shape, dtype=bool)
    coo = sparse.tocoo()
    mask[coo.row, coo.col] = True
    return mask


@pytest.fixture(scope="module")
def points_and_dense():
    x = clustered_points()
    return x, dense_jaccard(x, 30, 6)


def test_sparse_distances_equal_dense_definition(points_and_dense):
    x, dense = points_and_dense
    sparse = jaccard_distance(x, k1=30, k2=6, progress=False)
    stored = stored_mask(sparse)
    # Every pair below 1 (shared support) is stored, and nothing else is.
    np.testing.assert_array_equal(stored, dense < 1.0)
    np.testing.assert_allclose(sparse.toarray()[stored], dense[stored], atol=1e-5)


def test_max_distance_keeps_exactly_the_close_pairs(points_and_dense):
    x, dense = points_and_dense
    sparse = jaccard_distance(x, k1=30, k2=6, max_distance=0.5, progress=False)
    stored = stored_mask(sparse)
    margin = 1e-5
    assert stored[dense < 0.5 - margin].all()
    assert not stored[dense > 0.5 + margin].any()
    assert (sparse.data <= 0.5).all()


@pytest.mark.parametrize("eps", [0.3, 0.5, 0.6])
def test_clusters_equal_dense_dbscan(points_and_dense, eps):
    x, dense = points_and_dense
    sparse = jaccard_distance(x, k1=30, k2=6, max_distance=eps, progress=False)
    ours = cluster_distances(sparse, eps, min_samples=4)
    reference = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit_predict(dense)
    np.testing.assert_array_equal(ours, renumber_by_first_occurrence(reference))
    assert ours.max() >= 1  # a meaningful comparison: several clusters


def test_fewer_points_than_k1_matches_dense():
    x = clustered_points(n=12, dim=8, clusters=3, noise=0.5, seed=4)
    sparse = jaccard_distance(x, k1=30, k2=6, progress=False)
    dense = dense_jaccard(x, 30, 6)
    full = np.ones_like(dense)
    coo = sparse.tocoo()
    full[coo.row, coo.col] = coo.data
    np.testing.assert_allclose(full, dense, atol=1e-5)


def test_two_points_hand_checked():
    # N=2, k2=1: V(0) = [1, a] / (1 + a) with a = exp(-d), d = 2 - 2cos, and V(1) mirrored,
    # so s = 2a / (1 + a) and d_J = 1 - s / (2 - s) = 1 - a.
    cos = 0.6
    x = np.array([[1.0, 0.0], [cos, math.sqrt(1 - cos**2)]], dtype=np.float32)
    sparse = jaccard_distance(x, k1=30, k2=1, progress=False).toarray()
    expected = 1 - math.exp(-(2 - 2 * cos))
    np.testing.assert_allclose(sparse, [[0.0, expected], [expected, 0.0]], atol=1e-6)
    # With k2=2 each point averages both encodings: identical rows, distance 0.
    merged = jaccard_distance(x, k1=30, k2=2, progress=False)
    assert merged.nnz == 4
    np.testing.assert_allclose(merged.toarray(), 0.0, atol=1e-6)


def test_result_is_symmetric_with_explicit_zero_diagonal(points_and_dense):
    x, _ = points_and_dense
    sparse = jaccard_distance(x, k1=30, k2=6, max_distance=0.7, progress=False)
    assert (sparse != sparse.T).nnz == 0
    rows = np.repeat(np.arange(sparse.shape[0]), np.diff(sparse.indptr))
    diagonal = rows == sparse.indices
    assert diagonal.sum() == sparse.shape[0]  # every diagonal entry stored
    assert (sparse.data[diagonal] == 0).all()


def test_reciprocal_sets_hand_checked():
    # Rank lists (self first); with width 3, j is kept for i when each is in the other's list.
    indices = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 2, 1]], dtype=np.int32)
    width3 = reciprocal_graph(indices, 3).toarray().astype(int)
    assert [set(np.flatnonzero(r)) for r in width3] == [{0, 1, 2}, {0, 1, 3}, {0, 2, 3}, {1, 2, 3}]
    width2 = reciprocal_graph(indices, 2).toarray().astype(int)
    assert [set(np.flatnonzero(r)) for r in width2] == [{0, 1}, {0, 1}, {2, 3}, {2, 3}]


def test_half_width_follows_cluster_contrast_rounding():
    assert half_width(30) == 16
    assert half_width(20) == 11
    assert half_width(5) == 3  # round(2.5) halves to even: 2, plus the point itself
    assert half_width(1) == 1
