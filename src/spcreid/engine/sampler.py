"""P x K identity sampling over pseudo labels, preferring cross-camera positives.

Each batch holds P pseudo identities with K images each: one anchor and K-1 partners taken from
cameras other than the anchor's where the cluster has them, so that the contrastive loss sees the
same person under different viewpoints (the idea of Cluster Contrast's camera-aware sampler).
Only when those run out are same-camera images used, and only when the cluster has fewer than K
images at all is any image repeated. Outliers (label -1) are never drawn.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from spcreid.errors import SpcreidError


class CameraAwarePKSampler:
    """An iterable of ``iters`` index lists, each of length P*K, grouped identity by identity.

    Every list is ``[anchor_0, partners_0..., anchor_1, ...]``: K consecutive indices per identity.
    All choices come from ``generator``; iterating again continues its stream (new batches).
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray | torch.Tensor,
        camids: Sequence[int] | np.ndarray | torch.Tensor,
        P: int,
        K: int,
        iters: int,
        generator: torch.Generator,
    ):
        labels = _as_int_array(labels)
        camids = _as_int_array(camids)
        if labels.shape != camids.shape:
            raise SpcreidError(f"sampler: {len(labels)} pseudo labels but {len(camids)} camera ids")
        for name, value, minimum in (("P", P, 1), ("K", K, 1), ("iters", iters, 0)):
            if int(value) < minimum:
                raise SpcreidError(f"sampler: {name} must be >= {minimum}, got {value} (method.{name} in params.yaml)")
        self.P, self.K, self.iters = int(P), int(K), int(iters)
        self.generator = generator
        clustered = np.flatnonzero(labels >= 0)
        if clustered.size == 0:
            raise SpcreidError(
                "sampler: every training image is an outlier (pseudo label -1); nothing can be sampled. "
                "Raise method.eps or lower method.min_samples"
            )
        # Stable sort keeps members of an identity in index order: the draws alone decide the batch.
        order = clustered[np.argsort(labels[clustered], kind="stable")]
        ids, starts = np.unique(labels[order], return_index=True)
        self.ids = ids
        self.members = np.split(order, starts[1:])
        self.member_cams = [camids[m] for m in self.members]

    def __len__(self) -> int:
        return self.iters

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.iters):
            yield self._batch()

    def _batch(self) -> list[int]:
        batch: list[int] = []
        for slot in self._choose_identities():
            batch.extend(self._identity_images(slot))
        return batch

    def _choose_identities(self) -> list[int]:
        count = len(self.members)
        if count >= self.P:
            return torch.randperm(count, generator=self.generator)[: self.P].tolist()
        return torch.randint(0, count, (self.P,), generator=self.generator).tolist()

    def _identity_images(self, slot: int) -> list[int]:
        """Anchor, then partners: other cameras first, then the anchor's camera, then repeats."""
        members, cams = self.members[slot], self.member_cams[slot]
        anchor = int(torch.randint(0, len(members), (1,), generator=self.generator))
        others = np.flatnonzero(cams != cams[anchor])
        same_camera = np.flatnonzero(cams == cams[anchor])
        same_camera = same_camera[same_camera != anchor]
        chosen = [anchor]
        for pool in (others, same_camera):
            needed = self.K - len(chosen)
            if needed <= 0:
                break
            shuffled = pool[torch.randperm(len(pool), generator=self.generator).numpy()]
            chosen.extend(shuffled[:needed].tolist())
        shortfall = self.K - len(chosen)
        if shortfall > 0:
            chosen.extend(torch.randint(0, len(members), (shortfall,), generator=self.generator).tolist())
        return members[chosen].tolist()


def _as_int_array(values: Sequence[int] | np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.int64).reshape(-1)
