"""Pseudo labels: DBSCAN on the sparse k-reciprocal Jaccard distance (paper Eq. 2, Algorithm 1 line 3).

DBSCAN on the sparse matrix treats only stored entries as neighbours, so the distance matrix handed
to it stores every pair within ``eps`` (and the zero diagonal) and nothing else; a dense N x N
matrix is never built. The DBSCAN is ``spcreid.clustering.dbscan``: scikit-learn's partition, without
its import time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from spcreid.clustering.dbscan import dbscan_graph
from spcreid.clustering.kreciprocal import jaccard_distance
from spcreid.errors import SpcreidError


@dataclass(frozen=True)
class PseudoLabels:
    """Labels 0..n_clusters-1 (-1 = outlier) with the counts a training log wants."""

    labels: np.ndarray
    n_clusters: int
    n_outliers: int
    # Wall-clock seconds per stage and sizes (see spcreid.clustering.kreciprocal.jaccard_distance).
    stats: dict = field(default_factory=dict)


def renumber_by_first_occurrence(labels: np.ndarray) -> np.ndarray:
    """Relabel clusters 0..C-1 in order of their first member; -1 (outlier) is kept.

    Makes the numbering a function of the partition alone, whatever order DBSCAN found them in.
    """
    labels = np.asarray(labels, dtype=np.int64)
    clustered = labels >= 0
    unique, first_index = np.unique(labels[clustered], return_index=True)
    by_appearance = unique[np.argsort(first_index, kind="stable")]
    mapping = np.empty(int(unique.max()) + 1 if unique.size else 0, dtype=np.int64)
    mapping[by_appearance] = np.arange(by_appearance.size, dtype=np.int64)
    renumbered = np.full(labels.shape, -1, dtype=np.int64)
    renumbered[clustered] = mapping[labels[clustered]]
    return renumbered


def _check_clustering_params(eps: float, min_samples: int) -> None:
    if not (0.0 < eps <= 1.0):
        raise SpcreidError(f"eps must be in (0, 1] for a Jaccard distance, got {eps}; see method.eps in params.yaml")
    if min_samples < 1:
        raise SpcreidError(f"min_samples must be >= 1, got {min_samples}; see method.min_samples in params.yaml")


def cluster_distances(distances: sp.csr_matrix, eps: float, min_samples: int = 4) -> np.ndarray:
    """DBSCAN on a sparse precomputed distance matrix; returns labels renumbered by first occurrence.

    ``distances`` may hold pairs beyond ``eps`` (e.g. one matrix reused for an eps sweep); they
    are dropped here. Explicit zeros are kept: they are neighbours at distance 0.
    """
    _check_clustering_params(eps, min_samples)
    return renumber_by_first_occurrence(dbscan_graph(sp.csr_matrix(distances), eps, min_samples))


def pseudo_labels_with_stats(
    features,
    eps: float,
    min_samples: int = 4,
    k1: int = 30,
    k2: int = 6,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> PseudoLabels:
    """Cluster ``features`` (N x D) and report the labels, their counts and time per stage."""
    _check_clustering_params(eps, min_samples)
    stats: dict = {}
    distances = jaccard_distance(
        features, k1=k1, k2=k2, max_distance=eps, device=device, stats=stats, progress=progress
    )
    start = time.perf_counter()
    labels = cluster_distances(distances, eps, min_samples)
    stats["stage_seconds"]["dbscan"] = time.perf_counter() - start
    n_clusters = int(labels.max()) + 1 if labels.size else 0
    return PseudoLabels(
        labels=labels,
        n_clusters=n_clusters,
        n_outliers=int((labels < 0).sum()),
        stats=stats,
    )


def pseudo_labels(
    features,
    eps: float,
    min_samples: int = 4,
    k1: int = 30,
    k2: int = 6,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Pseudo label per feature row (int64, -1 = outlier, clusters numbered by first member)."""
    return pseudo_labels_with_stats(features, eps, min_samples, k1, k2, device, progress).labels
