"""pseudo_labels end to end: clusters, outliers, duplicates, numbering, determinism, errors."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from spcreid.clustering import pseudo_labels, pseudo_labels_with_stats
from spcreid.clustering.pseudo_labels import cluster_distances, renumber_by_first_occurrence
from spcreid.errors import SpcreidError


def separated_clusters(sizes, dim=64, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(sizes), dim))
    truth = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[truth] + noise * rng.standard_normal((truth.size, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


def test_well_separated_clusters_are_recovered():
    x, truth = separated_clusters([30, 25, 40, 20])
    order = np.random.default_rng(1).permutation(truth.size)
    x, truth = x[order], truth[order]
    labels = pseudo_labels(x, eps=0.6)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, renumber_by_first_occurrence(truth))


def test_stats_count_clusters_and_outliers():
    # Noisy clusters at a small eps leave some points unclustered.
    x, _ = separated_clusters([30, 30, 30, 30], noise=1.5)
    result = pseudo_labels_with_stats(x, eps=0.2, progress=False)
    labels = result.labels
    assert result.n_outliers == int((labels == -1).sum()) > 0
    assert result.n_clusters == len(set(labels[labels >= 0])) > 1
    np.testing.assert_array_equal(np.unique(labels[labels >= 0]), np.arange(result.n_clusters))
    stages = {"knn", "reciprocal", "weights", "query_expansion", "jaccard", "dbscan"}
    assert set(result.stats["stage_seconds"]) == stages
    assert result.stats["stored_pairs"] >= x.shape[0]  # at least the diagonal


def test_duplicates_cluster_at_a_tiny_eps():
    rng = np.random.default_rng(7)
    singles = rng.standard_normal((40, 32)).astype(np.float32)
    x = np.concatenate([singles, np.repeat(singles[:2], 3, axis=0)])  # rows 0 and 1 have 3 copies each
    labels = pseudo_labels(x, eps=1e-4, min_samples=4)
    copies_of_0 = [0, 40, 41, 42]
    copies_of_1 = [1, 43, 44, 45]
    assert len(set(labels[copies_of_0])) == 1 and labels[0] >= 0
    assert len(set(labels[copies_of_1])) == 1 and labels[1] >= 0
    assert labels[0] != labels[1]
    np.testing.assert_array_equal(labels[2:40], -1)


def test_stored_zero_distances_count_as_neighbours():
    # Four points at explicit distance 0 from each other: one cluster, even though a sparse
    # matrix could mistake the zeros for "no entry".
    rows, cols = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    zeros = sp.csr_matrix((np.zeros(16, dtype=np.float32), (rows.ravel(), cols.ravel())), shape=(5, 5))
    assert zeros.nnz == 16
    labels = cluster_distances(zeros, eps=0.1, min_samples=4)
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, -1])


def test_entries_beyond_eps_are_ignored():
    # A chain 0-1-2 at 0.2 and 2-3 at 0.5: with eps 0.3 and min_samples 2, point 3 is alone.
    pairs = {(0, 1): 0.2, (1, 2): 0.2, (2, 3): 0.5}
    rows = [i for i, _ in pairs] + [j for _, j in pairs]
    cols = [j for _, j in pairs] + [i for i, _ in pairs]
    data = list(pairs.values()) * 2
    matrix = sp.csr_matrix((data, (rows, cols)), shape=(4, 4))
    np.testing.assert_array_equal(cluster_distances(matrix, eps=0.3, min_samples=2), [0, 0, 0, -1])
    np.testing.assert_array_equal(cluster_distances(matrix, eps=0.6, min_samples=2), [0, 0, 0, 0])


def test_all_outliers():
    few = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    result = pseudo_labels_with_stats(few, eps=0.5, min_samples=4, progress=False)
    np.testing.assert_array_equal(result.labels, [-1, -1, -1])
    assert (result.n_clusters, result.n_outliers) == (0, 3)
    # Structureless points in high dimension: nobody has 3 neighbours within a small eps.
    noise = np.random.default_rng(1).standard_normal((200, 256)).astype(np.float32)
    np.testing.assert_array_equal(pseudo_labels(noise, eps=0.2), -1)


def test_renumbering_by_first_occurrence():
    np.testing.assert_array_equal(renumber_by_first_occurrence(np.array([5, 5, -1, 2, 7, 2])), [0, 0, -1, 1, 2, 1])
    np.testing.assert_array_equal(renumber_by_first_occurrence(np.array([-1, -1])), [-1, -1])


def test_deterministic_and_accepts_torch_tensors():
    x, _ = separated_clusters([25, 25, 25], noise=0.8, seed=3)
    first = pseudo_labels(x, eps=0.5)
    np.testing.assert_array_equal(pseudo_labels(x, eps=0.5), first)
    np.testing.assert_array_equal(pseudo_labels(torch.from_numpy(x), eps=0.5), first)
    # Unnormalised input gives the same result: cosine ignores scale.
    np.testing.assert_array_equal(pseudo_labels(3.0 * x, eps=0.5), first)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"eps": 0.0}, "eps"),
        ({"eps": 1.5}, "eps"),
        ({"eps": 0.4, "min_samples": 0}, "min_samples"),
        ({"eps": 0.4, "k1": 0}, "k1"),
    ],
)
def test_bad_parameters_raise_user_errors(kwargs, message):
    x, _ = separated_clusters([10])
    with pytest.raises(SpcreidError, match=message):
        pseudo_labels(x, **kwargs)
