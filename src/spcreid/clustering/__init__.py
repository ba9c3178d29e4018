"""Pseudo labels that scale: sparse k-reciprocal Jaccard distance + DBSCAN (docs/PSEUDO_LABELS.md)."""

from spcreid.clustering.kreciprocal import jaccard_distance
from spcreid.clustering.pseudo_labels import (
    PseudoLabels,
    cluster_distances,
    pseudo_labels,
    pseudo_labels_with_stats,
)

__all__ = [
    "PseudoLabels",
    "cluster_distances",
    "jaccard_distance",
    "pseudo_labels",
    "pseudo_labels_with_stats",
]
