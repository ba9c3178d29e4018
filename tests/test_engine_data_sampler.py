"""Camera-aware P x K sampler: batch structure, outliers, cross-camera preference, small clusters, determinism."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from spcreid.engine.sampler import CameraAwarePKSampler
from spcreid.errors import SpcreidError


def pseudo_labelled_set():
    """Six clusters of different sizes and camera spreads plus interleaved outliers."""
    clusters = {
        0: [1, 1, 2, 2, 3, 3],  # three cameras, two images each
        1: [1, 2, 2, 2, 2, 2],  # a single image on camera 1
        2: [4, 4, 4, 4, 4],  # one camera only
        3: [1, 2],  # fewer than K images
        4: [3, 3, 1, 1, 2],
        5: [2, 4, 4, 4],
    }
    labels, camids = [], []
    for label, cams in clusters.items():
        for cam in cams:
            labels.append(label)
            camids.append(cam)
            labels.append(-1)  # an outlier after every image, on the same camera
            camids.append(cam)
    return np.array(labels), np.array(camids)


def draw(labels, camids, P=4, K=4, iters=60, seed=0):
    return list(CameraAwarePKSampler(labels, camids, P, K, iters, torch.Generator().manual_seed(seed)))


def groups_of(batch, K):
    return [batch[start : start + K] for start in range(0, len(batch), K)]


def test_batches_hold_p_distinct_identities_with_k_images_and_no_outliers():
    labels, camids = pseudo_labelled_set()
    batches = draw(labels, camids)
    assert len(batches) == 60
    for batch in batches:
        assert len(batch) == 16
        assert all(labels[i] >= 0 for i in batch)
        group_labels = [set(labels[group]) for group in groups_of(batch, 4)]
        assert all(len(s) == 1 for s in group_labels)
        assert len({next(iter(s)) for s in group_labels}) == 4


def test_every_identity_gets_drawn():
    labels, camids = pseudo_labelled_set()
    counts = Counter(int(labels[b[0]]) for batch in draw(labels, camids, iters=100) for b in groups_of(batch, 4))
    assert set(counts) == {0, 1, 2, 3, 4, 5}
    # Uniform over identities: 400 picks of 6 ids, about 67 each whatever the cluster size.
    assert min(counts.values()) > 40


def test_partners_come_from_other_cameras_whenever_the_cluster_has_them():
    labels, camids = pseudo_labelled_set()
    for batch in draw(labels, camids, iters=100):
        for anchor, *partners in groups_of(batch, 4):
            cluster = np.flatnonzero(labels == labels[anchor])
            available_elsewhere = int(np.sum(camids[cluster] != camids[anchor]))
            partners_elsewhere = len({p for p in partners if camids[p] != camids[anchor]})
            assert partners_elsewhere == min(3, available_elsewhere)


def test_the_lone_camera_1_image_of_cluster_1_joins_every_camera_2_anchor():
    labels, camids = pseudo_labelled_set()
    lone = int(np.flatnonzero((labels == 1) & (camids == 1))[0])
    anchored_on_camera_2 = 0
    for batch in draw(labels, camids, iters=100):
        for anchor, *partners in groups_of(batch, 4):
            if labels[anchor] == 1 and camids[anchor] == 2:
                anchored_on_camera_2 += 1
                assert lone in partners
    assert anchored_on_camera_2 > 10


def test_no_repeats_when_a_cluster_has_k_images_and_all_images_when_it_has_fewer():
    labels, camids = pseudo_labelled_set()
    small = set(np.flatnonzero(labels == 3).tolist())
    for batch in draw(labels, camids, iters=100):
        for group in groups_of(batch, 4):
            if labels[group[0]] == 3:
                assert set(group) == small  # both images, then repeats from the same two
            else:
                assert len(set(group)) == 4


def test_fewer_identities_than_p_are_drawn_with_replacement():
    labels = np.array([0, 0, 0, 1, 1, 1, -1])
    camids = np.array([1, 2, 3, 1, 2, 3, 1])
    for batch in draw(labels, camids, P=5, K=3, iters=20):
        assert len(batch) == 15
        assert all(len(set(labels[g])) == 1 and labels[g[0]] in (0, 1) for g in groups_of(batch, 3))


def test_same_generator_seed_same_batches():
    labels, camids = pseudo_labelled_set()
    assert draw(labels, camids, seed=5) == draw(labels, camids, seed=5)
    assert draw(labels, camids, seed=5) != draw(labels, camids, seed=6)
    # Torch tensors as input behave like arrays.
    assert draw(torch.from_numpy(labels), torch.from_numpy(camids), seed=5) == draw(labels, camids, seed=5)


def test_len_is_the_number_of_iterations():
    labels, camids = pseudo_labelled_set()
    assert len(CameraAwarePKSampler(labels, camids, 2, 2, 7, torch.Generator())) == 7


def test_user_errors():
    with pytest.raises(SpcreidError, match="every training image is an outlier"):
        CameraAwarePKSampler([-1, -1], [1, 2], 2, 2, 1, torch.Generator())
    with pytest.raises(SpcreidError, match="3 pseudo labels but 2 camera ids"):
        CameraAwarePKSampler([0, 0, 1], [1, 2], 2, 2, 1, torch.Generator())
    with pytest.raises(SpcreidError, match=r"K must be >= 1.*method\.K"):
        CameraAwarePKSampler([0, 0], [1, 2], 2, 0, 1, torch.Generator())
