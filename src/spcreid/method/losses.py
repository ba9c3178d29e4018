"""The training objective L = Lq + alpha * Ls (Eq. 8 and Eq. 9).

Shapes: a batch holds G = P * K real images, each with V views: the image itself (view 0) and, with
clothing augmentation, its S synthetic copies (views 1..S), so V = 1 + S. Features arrive as
(G, V, D), L2-normalised; memories are (C, D) tables read as constants (no gradient).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from spcreid.config.schema import method_choices
from spcreid.errors import SpcreidError
from spcreid.method.memory import feature_log_distribution

MEMORY_COMBINATIONS = method_choices("memory_combination")
KL_DISTRIBUTIONS = method_choices("kl_distribution")


def info_nce(features: torch.Tensor, labels: torch.Tensor, memory: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 8 for one memory: mean over the B features of -log softmax(f . M^T / tau)[positive]."""
    logits = features.float() @ memory.detach().float().t() / temperature
    return F.cross_entropy(logits, labels)


def union_info_nce(
    features: torch.Tensor, labels: torch.Tensor, memories: Sequence[torch.Tensor], temperature: float
) -> torch.Tensor:
    """Eq. 8 read literally: one softmax over the union of all memories' entries.

    Each feature has one positive per memory (its cluster's entry in each); the loss averages
    -log p over those positives, all sharing the union's denominator.
    """
    stacked = torch.cat([m.detach().float() for m in memories], dim=0)
    log_prob = F.log_softmax(features.float() @ stacked.t() / temperature, dim=1)
    n_clusters = memories[0].shape[0]
    positives = labels[:, None] + n_clusters * torch.arange(len(memories), device=labels.device)[None, :]
    return -log_prob.gather(1, positives).mean()


def contrast_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    memories: Sequence[torch.Tensor],
    temperature: float,
    combine: str = "mean",
) -> torch.Tensor:
    """Lq against one or several memories; ``combine`` = ``mean`` (one InfoNCE per memory, averaged)
    or ``union`` (one softmax over all entries). Both agree when there is a single memory."""
    if combine not in MEMORY_COMBINATIONS:
        raise SpcreidError(f"method.memory_combination is '{combine}'; use one of {list(MEMORY_COMBINATIONS)}")
    if len(memories) == 1:
        return info_nce(features, labels, memories[0], temperature)
    if combine == "union":
        return union_info_nce(features, labels, memories, temperature)
    return torch.stack([info_nce(features, labels, m, temperature) for m in memories]).mean()


def view_log_distributions(
    features: torch.Tensor, distribution: str, temperature: float, memories: Sequence[torch.Tensor] = ()
) -> torch.Tensor:
    """Log-probabilities that the self-identity KL compares, one row per feature.

    ``features``: softmax over the feature's own dimensions at temperature t (the paper's "KL
    between features"). ``memory``: softmax over the similarities to every memory entry at
    temperature t, i.e. the soft pseudo-identity assignment.
    """
    if distribution == "features":
        return feature_log_distribution(features, temperature)
    if distribution == "memory":
        if not memories:
            raise ValueError("the 'memory' KL distribution needs the cluster memories")
        stacked = torch.cat([m.detach().float() for m in memories], dim=0)
        return F.log_softmax(features.float() @ stacked.t() / temperature, dim=-1)
    raise SpcreidError(f"method.kl_distribution is '{distribution}'; use one of {list(KL_DISTRIBUTIONS)}")


def self_identity_loss(
    features: torch.Tensor,
    distribution: str = "features",
    temperature: float = 0.05,
    memories: Sequence[torch.Tensor] = (),
) -> torch.Tensor:
    """Eq. 9: sum over images and over all ordered view pairs (a, b) of KL(p_a || p_b), / (G * V).

    Summing over ordered pairs makes the constraint symmetric (both KL directions) and gives every
    view, the source included, a gradient. Pairs a = b contribute zero.
    """
    n_images, n_views, _ = features.shape
    log_p = view_log_distributions(features.reshape(n_images * n_views, -1), distribution, temperature, memories)
    log_p = log_p.reshape(n_images, n_views, -1)
    p = log_p.exp()
    # KL(a || b) = sum_v p_a log p_a - sum_v p_a log p_b, for all (a, b) at once.
    neg_entropy = (p * log_p).sum(dim=-1)
    cross = torch.einsum("gav,gbv->gab", p, log_p)
    pairwise_kl = neg_entropy[:, :, None] - cross
    return pairwise_kl.sum() / (n_images * n_views)


@dataclass
class LossTerms:
    total: torch.Tensor
    contrast: torch.Tensor
    self_identity: torch.Tensor


def training_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    memories: Sequence[torch.Tensor],
    *,
    temperature: float,
    alpha: float,
    use_self_identity: bool,
    memory_combination: str = "mean",
    kl_distribution: str = "features",
    kl_temperature: float = 0.05,
) -> LossTerms:
    """L = Lq + alpha * Ls for features (G, V, D) of G real images with V views and labels (G,).

    Every view inherits its source's pseudo label and enters Lq; Ls only runs when
    ``use_self_identity`` is set and there are copies (V > 1).
    """
    n_images, n_views, dim = features.shape
    view_labels = labels.to(torch.long).repeat_interleave(n_views)
    contrast = contrast_loss(features.reshape(-1, dim), view_labels, memories, temperature, memory_combination)
    if use_self_identity and n_views > 1:
        self_identity = self_identity_loss(features, kl_distribution, kl_temperature, memories)
    else:
        self_identity = contrast.new_zeros(())
    return LossTerms(total=contrast + alpha * self_identity, contrast=contrast, self_identity=self_identity)
