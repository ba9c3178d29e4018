"""Our DBSCAN on a sparse distance graph and our ARI / NMI give scikit-learn's answers exactly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from spcreid.clustering.dbscan import adjusted_rand_index, dbscan_graph, normalized_mutual_information
from spcreid.clustering.pseudo_labels import renumber_by_first_occurrence


def random_graph(n: int, density: float, seed: int) -> sp.csr_matrix:
    """A symmetric sparse distance graph in [0, 1], zero diagonal, a few explicit zero distances."""
    rng = np.random.default_rng(seed)
    upper = sp.random(n, n, density=density, random_state=rng, format="coo")
    upper = sp.triu(upper, k=1).tocoo()
    data = upper.data.copy()
    data[rng.random(data.size) < 0.05] = 0.0  # identical features: distance exactly 0
    rows, cols = np.concatenate([upper.row, upper.col]), np.concatenate([upper.col, upper.row])
    graph = sp.csr_matrix((np.concatenate([data, data]), (rows, cols)), shape=(n, n))
    graph.setdiag(0.0)
    return graph


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("eps, min_samples", [(0.2, 2), (0.4, 4), (0.7, 3), (1.0, 6)])
def test_dbscan_matches_scikit_learn_on_random_graphs(seed, eps, min_samples):
    graph = random_graph(300, 0.03, seed)
    ours = dbscan_graph(graph, eps, min_samples)
    theirs = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(graph.copy())
    assert np.array_equal(ours, renumber_by_first_occurrence(theirs))
    # Clusters are numbered by their lowest core point, as scikit-learn's expansion numbers them.
    assert np.array_equal(ours, theirs)


def test_dbscan_by_hand():
    # 0-1-2 a chain of cores (min_samples 2), 3 a border of core 2 at distance 0.3, 4 alone.
    pairs = {(0, 1): 0.1, (1, 2): 0.2, (2, 3): 0.3, (3, 4): 0.9}
    rows, cols, data = zip(*[(a, b, d) for (a, b), d in pairs.items()] + [(b, a, d) for (a, b), d in pairs.items()])
    graph = sp.csr_matrix((data, (rows, cols)), shape=(5, 5))
    assert dbscan_graph(graph, eps=0.35, min_samples=3).tolist() == [0, 0, 0, 0, -1]  # 1, 2 are cores
    assert dbscan_graph(graph, eps=0.35, min_samples=2).tolist() == [0, 0, 0, 0, -1]
    assert dbscan_graph(graph, eps=0.15, min_samples=2).tolist() == [0, 0, -1, -1, -1]
    assert dbscan_graph(graph, eps=0.15, min_samples=4).tolist() == [-1] * 5


def test_a_border_point_joins_the_cluster_of_the_lowest_core():
    # Cores 1 (neighbours 0, 2, 5) and 3 (neighbours 2, 4, 6); point 2 (neighbours 1, 3) is a border of
    # both and joins cluster 0, the one of the lower core.
    pairs = {(0, 1): 0.1, (1, 5): 0.1, (1, 2): 0.3, (2, 3): 0.3, (3, 4): 0.1, (3, 6): 0.1}
    rows, cols, data = zip(*[(a, b, d) for (a, b), d in pairs.items()] + [(b, a, d) for (a, b), d in pairs.items()])
    graph = sp.csr_matrix((data, (rows, cols)), shape=(7, 7))
    ours = dbscan_graph(graph, eps=0.35, min_samples=4)
    assert ours.tolist() == DBSCAN(eps=0.35, min_samples=4, metric="precomputed").fit_predict(graph).tolist()
    assert ours.tolist() == [0, 0, 0, 1, 1, 0, 1]


@pytest.mark.parametrize("seed", range(20))
def test_ari_and_nmi_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 400))
    truth = rng.integers(0, int(rng.integers(1, 40)), n)
    labels = np.where(rng.random(n) < 0.5, truth, rng.integers(0, int(rng.integers(1, 60)), n))
    assert adjusted_rand_index(truth, labels) == pytest.approx(adjusted_rand_score(truth, labels), abs=1e-12)
    assert normalized_mutual_information(truth, labels) == pytest.approx(
        normalized_mutual_info_score(truth, labels), abs=1e-12
    )


@pytest.mark.parametrize(
    "truth, labels",
    [
        ([0, 0, 1, 1], [5, 5, 7, 7]),  # the same partition, other names
        ([0, 0, 0, 0], [1, 1, 1, 1]),  # one cluster each
        ([0, 1, 2, 3], [3, 2, 1, 0]),  # all singletons
        ([0, 0, 0, 0], [0, 1, 2, 3]),  # one side trivial
        ([0, 0, 1, 1], [0, 1, 0, 1]),  # independent
        ([1], [1]),
    ],
)
def test_ari_and_nmi_edge_cases_match_scikit_learn(truth, labels):
    assert adjusted_rand_index(truth, labels) == pytest.approx(adjusted_rand_score(truth, labels), abs=1e-12)
    assert normalized_mutual_information(truth, labels) == pytest.approx(
        normalized_mutual_info_score(truth, labels), abs=1e-12
    )


def test_ari_by_hand():
    # 4 items: classes {0,1},{2,3}; clusters {0,1,2},{3}. Pairs: together 1, class-only 1, cluster-only 2, apart 2.
    # ARI = (1 - (2*3)/6) / ((2+3)/2 - 1) = 0 / 1.5 = 0.
    assert adjusted_rand_index([0, 0, 1, 1], [0, 0, 0, 1]) == pytest.approx(0.0)
