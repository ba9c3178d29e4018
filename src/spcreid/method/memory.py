"""Cluster memories: one L2-normalised feature per pseudo identity, refreshed during an epoch.

The paper (Section 3.3) keeps two (C, D) memories, rebuilt at the start of every epoch from the
clustered train features and updated after every optimiser step:

* Eq. 4 initialises both with ONE uniformly sampled member feature per cluster
  (:func:`sample_cluster_features`);
* Eq. 6, ``hardest``: per cluster present in the batch, the batch instance least similar to the
  memory entry is blended in with momentum ``m``;
* Eq. 7, ``average``: the batch mean of the cluster's features (originals and synthetic copies) is
  blended in with momentum ``m``.

Sampling mode ``none`` is the Cluster Contrast baseline the paper builds on (Table 2 "Baseline",
Table 3 "No sample"): a single memory initialised with the cluster centroids and updated instance by
instance, in batch order, renormalising after each step. docs/METHOD.md gives the reasons.

Every entry is renormalised after an update so that ``f . M^T`` stays a cosine similarity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from spcreid.config.schema import method_choices
from spcreid.errors import SpcreidError

# Allowed values are declared once, in the params schema.
SAMPLING_MODES = method_choices("sampling")
UPDATE_RULES = ("instance", "average", "hardest")
HARD_MEASURES = method_choices("hard_measure")


def _check_labels(labels: torch.Tensor, n_features: int) -> int:
    """Return the cluster count C; labels must be 0..C-1 (outliers dropped by the caller)."""
    if labels.numel() != n_features:
        raise ValueError(f"{labels.numel()} labels for {n_features} features")
    if labels.numel() == 0 or int(labels.min()) < 0:
        raise ValueError("cluster labels must be non-negative: drop outliers (-1) before building memories")
    n_clusters = int(labels.max()) + 1
    if torch.bincount(labels, minlength=n_clusters).min() == 0:
        raise ValueError("cluster labels must be contiguous 0..C-1 (relabel after dropping outliers)")
    return n_clusters


def sample_cluster_features(features: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Eq. 4: one member feature per cluster, drawn uniformly at random; returns (C, D), row c = cluster c.

    Vectorised: every instance gets a random key and, within each cluster, the instance with the
    smallest key wins, which is a uniform draw among the cluster's members.
    """
    labels = labels.to(torch.long).cpu()
    n_clusters = _check_labels(labels, features.shape[0])
    keys = torch.rand(labels.numel(), generator=generator, dtype=torch.float64)
    # Sorting by label + key in [0, 1) groups clusters and orders members by their random key.
    order = torch.argsort(labels.to(torch.float64) + keys)
    first_of_cluster = torch.ones(labels.numel(), dtype=torch.bool)
    first_of_cluster[1:] = labels[order][1:] != labels[order][:-1]
    chosen = order[first_of_cluster]
    assert chosen.numel() == n_clusters
    return F.normalize(features[chosen.to(features.device)].detach().float(), dim=1)


def cluster_centroids(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cluster Contrast's initialisation: the L2-normalised mean feature of every cluster, (C, D)."""
    labels = labels.to(torch.long).to(features.device)
    n_clusters = _check_labels(labels, features.shape[0])
    sums = torch.zeros(n_clusters, features.shape[1], dtype=torch.float32, device=features.device)
    sums.index_add_(0, labels, features.detach().float())
    return F.normalize(sums, dim=1)


def feature_log_distribution(features: torch.Tensor, temperature: float) -> torch.Tensor:
    """A feature vector read as a distribution over its dimensions: log softmax(f / t), row-wise.

    This is how the paper's "KL between features" (Eq. 6 and 9) is made concrete; ``t`` sets how
    peaked the distributions are, and hence the scale of the divergence.
    """
    return F.log_softmax(features.float() / temperature, dim=-1)


def hardness(features: torch.Tensor, entries: torch.Tensor, measure: str, kl_temperature: float) -> torch.Tensor:
    """How far each feature is from its cluster's memory entry (larger = harder), shape (B,).

    ``kl``: KL(p_f || p_M) with p = softmax over feature dimensions (the paper's wording of Eq. 6).
    ``cosine``: 1 - f . M (the "minimum similarity" reading; Cluster Contrast's hard variant).
    """
    if measure == "cosine":
        return 1.0 - (features.float() * entries.float()).sum(dim=1)
    if measure == "kl":
        log_p = feature_log_distribution(features, kl_temperature)
        log_q = feature_log_distribution(entries, kl_temperature)
        return (log_p.exp() * (log_p - log_q)).sum(dim=1)
    raise SpcreidError(f"method.hard_measure is '{measure}'; use one of {list(HARD_MEASURES)}")


class ClusterMemory:
    """A (C, D) table of normalised cluster features with one momentum update rule.

    ``update_rule``: ``instance`` (Cluster Contrast baseline), ``average`` (Eq. 7) or ``hardest``
    (Eq. 6). The table never takes part in autograd: the loss reads it as a constant and
    :meth:`update` runs under ``torch.no_grad`` after the optimiser step.
    """

    def __init__(
        self,
        features: torch.Tensor,
        momentum: float,
        update_rule: str,
        hard_measure: str = "kl",
        kl_temperature: float = 0.05,
    ) -> None:
        if update_rule not in UPDATE_RULES:
            raise ValueError(f"update_rule must be one of {UPDATE_RULES}, got {update_rule!r}")
        if hard_measure not in HARD_MEASURES:
            raise SpcreidError(f"method.hard_measure is '{hard_measure}'; use one of {list(HARD_MEASURES)}")
        self.features = F.normalize(features.detach().float().clone(), dim=1)
        self.momentum = float(momentum)
        self.update_rule = update_rule
        self.hard_measure = hard_measure
        self.kl_temperature = float(kl_temperature)

    @property
    def num_clusters(self) -> int:
        return self.features.shape[0]

    def to(self, device: torch.device | str) -> ClusterMemory:
        self.features = self.features.to(device)
        return self

    def state_dict(self) -> dict:
        return {
            "features": self.features.cpu(),
            "momentum": self.momentum,
            "update_rule": self.update_rule,
            "hard_measure": self.hard_measure,
            "kl_temperature": self.kl_temperature,
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> ClusterMemory:
        return cls(
            state["features"], state["momentum"], state["update_rule"], state["hard_measure"], state["kl_temperature"]
        )

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Blend a batch's features (B, D) with pseudo labels (B,) into the table."""
        features = features.detach().float().to(self.features.device)
        labels = labels.to(torch.long).to(self.features.device)
        if self.update_rule == "instance":
            self._update_instance_by_instance(features, labels)
            return
        clusters = torch.unique(labels)
        if self.update_rule == "average":
            targets = self._batch_means(features, labels, clusters)
        else:
            targets = self._batch_hardest(features, labels, clusters)
        self._blend(clusters, targets)

    def _blend(self, clusters: torch.Tensor, targets: torch.Tensor) -> None:
        mixed = self.momentum * self.features[clusters] + (1.0 - self.momentum) * targets
        self.features[clusters] = F.normalize(mixed, dim=1)

    def _update_instance_by_instance(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        # Sequential on purpose: a cluster seen twice in a batch is updated twice, the second time
        # from the already-updated entry (Cluster Contrast's rule). The loop is over <= a few
        # hundred rows of a no-grad update, negligible next to the forward pass.
        for feature, label in zip(features, labels.tolist()):
            mixed = self.momentum * self.features[label] + (1.0 - self.momentum) * feature
            self.features[label] = F.normalize(mixed, dim=0)

    @staticmethod
    def _batch_means(features: torch.Tensor, labels: torch.Tensor, clusters: torch.Tensor) -> torch.Tensor:
        # Eq. 7 divides by (S + 1) * K, i.e. by the number of the cluster's instances in the batch.
        position = torch.searchsorted(clusters, labels)
        sums = torch.zeros(clusters.numel(), features.shape[1], dtype=features.dtype, device=features.device)
        sums.index_add_(0, position, features)
        counts = torch.bincount(position, minlength=clusters.numel()).to(features.dtype)
        return sums / counts[:, None]

    def _batch_hardest(self, features: torch.Tensor, labels: torch.Tensor, clusters: torch.Tensor) -> torch.Tensor:
        distance = hardness(features, self.features[labels], self.hard_measure, self.kl_temperature)
        position = torch.searchsorted(clusters, labels)
        # Per-cluster argmax without a Python loop: find each cluster's max, then the first
        # instance (in batch order) that attains it.
        best = torch.full((clusters.numel(),), -torch.inf, device=features.device)
        best = best.scatter_reduce(0, position, distance, reduce="amax")
        is_best = distance == best[position]
        index = torch.arange(labels.numel(), device=features.device)
        sentinel = torch.full((clusters.numel(),), labels.numel(), device=features.device)
        first = sentinel.scatter_reduce(0, position[is_best], index[is_best], reduce="amin")
        return features[first]


def build_memories(
    sampling: str,
    features: torch.Tensor,
    labels: torch.Tensor,
    momentum: float,
    generator: torch.Generator,
    hard_measure: str = "kl",
    kl_temperature: float = 0.05,
) -> list[ClusterMemory]:
    """The memories of one epoch for a sampling mode (``none`` | ``average`` | ``hardest`` | ``both``).

    ``features`` (N, D) and ``labels`` (N,) are the clustered real train images without outliers.
    With ``both`` the two memories start from the same Eq. 4 sample, as the paper says.
    """
    if sampling not in SAMPLING_MODES:
        raise SpcreidError(f"method.sampling is '{sampling}'; use one of {list(SAMPLING_MODES)}")
    options = dict(momentum=momentum, hard_measure=hard_measure, kl_temperature=kl_temperature)
    if sampling == "none":
        return [ClusterMemory(cluster_centroids(features, labels), update_rule="instance", **options)]
    initial = sample_cluster_features(features, labels, generator)
    rules = {"average": ["average"], "hardest": ["hardest"], "both": ["hardest", "average"]}[sampling]
    return [ClusterMemory(initial, update_rule=rule, **options) for rule in rules]
