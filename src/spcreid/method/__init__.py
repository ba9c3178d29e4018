"""The paper's method: cluster memories (Eq. 4, 6, 7) and the training objective (Eq. 8, 9)."""

from spcreid.method.losses import LossTerms, contrast_loss, info_nce, self_identity_loss, training_loss
from spcreid.method.memory import (
    ClusterMemory,
    build_memories,
    cluster_centroids,
    sample_cluster_features,
)

__all__ = [
    "ClusterMemory",
    "LossTerms",
    "build_memories",
    "cluster_centroids",
    "contrast_loss",
    "info_nce",
    "sample_cluster_features",
    "self_identity_loss",
    "training_loss",
]
