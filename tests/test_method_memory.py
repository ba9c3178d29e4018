"""Cluster memories: Eq. 4 initialisation, Eq. 6 hardest and Eq. 7 average updates, the baseline."""

import math

import pytest
import torch

from spcreid.errors import SpcreidError
from spcreid.method.memory import (
    ClusterMemory,
    build_memories,
    cluster_centroids,
    hardness,
    sample_cluster_features,
)


def unit(*values):
    v = torch.tensor(values, dtype=torch.float32)
    return v / v.norm()


# Five instances in three clusters; every feature is distinct so the chosen row identifies the instance.
FEATURES = torch.stack([unit(1, 0, 0), unit(0, 1, 0), unit(1, 1, 0), unit(0, 1, 1), unit(0, 0, 1)])
LABELS = torch.tensor([1, 0, 1, 0, 2])


def chosen_instances(memory_rows):
    return [int(torch.argmax(FEATURES @ row)) for row in memory_rows]


def test_eq4_init_picks_one_member_of_each_cluster():
    rows = sample_cluster_features(FEATURES, LABELS, torch.Generator().manual_seed(0))
    assert rows.shape == (3, 3)
    picks = chosen_instances(rows)
    assert picks[0] in (1, 3) and picks[1] in (0, 2) and picks[2] == 4
    for pick, row in zip(picks, rows):
        assert torch.allclose(row, FEATURES[pick])


def test_eq4_init_is_seeded_and_uniform():
    def picks(seed):
        return chosen_instances(sample_cluster_features(FEATURES, LABELS, torch.Generator().manual_seed(seed)))

    assert picks(7) == picks(7)
    draws = [picks(seed)[0] for seed in range(400)]
    # Cluster 0 = instances {1, 3}: a uniform draw picks each about 200 times out of 400
    # (binomial sd 10; 150..250 is five sd either way).
    assert 150 <= draws.count(1) <= 250
    assert draws.count(1) + draws.count(3) == 400


def test_labels_with_outliers_are_rejected():
    with pytest.raises(ValueError, match="outliers"):
        sample_cluster_features(FEATURES, torch.tensor([0, -1, 0, 1, 1]), torch.Generator())


def test_baseline_init_is_the_normalised_cluster_mean():
    rows = cluster_centroids(FEATURES, LABELS)
    # cluster 1 = (1,0,0) and (1,1,0)/sqrt2: mean direction (1 + 1/sqrt2, 1/sqrt2, 0)
    a = 1 + 1 / math.sqrt(2)
    b = 1 / math.sqrt(2)
    expected = torch.tensor([a, b, 0.0]) / math.hypot(a, b)
    assert torch.allclose(rows[1], expected, atol=1e-6)
    assert torch.allclose(rows[2], FEATURES[4])


def test_eq7_average_update_with_momentum_and_renormalisation():
    memory = ClusterMemory(torch.stack([unit(1, 0), unit(0, 1)]), momentum=0.3, update_rule="average")
    batch = torch.stack([unit(0, 1), unit(0.6, 0.8)])
    memory.update(batch, torch.tensor([0, 0]))
    # mean = (0.3, 0.9); 0.3 * (1, 0) + 0.7 * (0.3, 0.9) = (0.51, 0.63), then unit length
    expected = torch.tensor([0.51, 0.63]) / math.hypot(0.51, 0.63)
    assert torch.allclose(memory.features[0], expected, atol=1e-6)
    assert torch.equal(memory.features[1], unit(0, 1))  # absent from the batch: untouched


def test_eq6_hardest_update_takes_the_least_similar_instance():
    memory = ClusterMemory(torch.stack([unit(1, 0), unit(0, 1)]), 0.3, "hardest", hard_measure="cosine")
    batch = torch.stack([unit(0.8, 0.6), unit(0.1, 1), unit(0.6, 0.8), unit(0.6, 0.8)])
    memory.update(batch, torch.tensor([0, 0, 0, 1]))
    # cluster 0: similarities 0.8, 0.0995, 0.6 -> (0.1, 1)/|.| is the hardest
    hard = unit(0.1, 1)
    expected0 = 0.3 * unit(1, 0) + 0.7 * hard
    assert torch.allclose(memory.features[0], expected0 / expected0.norm(), atol=1e-6)
    # cluster 1 has a single instance, which is then its hardest
    expected1 = 0.3 * unit(0, 1) + 0.7 * unit(0.6, 0.8)
    assert torch.allclose(memory.features[1], expected1 / expected1.norm(), atol=1e-6)


def test_kl_hardness_value_by_hand():
    # t = 1: softmax(ln2, 0) = (2/3, 1/3) against softmax(0, 0) = (1/2, 1/2)
    value = hardness(torch.tensor([[math.log(2), 0.0]]), torch.tensor([[0.0, 0.0]]), "kl", kl_temperature=1.0)
    expected = 2 / 3 * math.log((2 / 3) / 0.5) + 1 / 3 * math.log((1 / 3) / 0.5)
    assert value.item() == pytest.approx(expected, rel=1e-6)


def test_kl_and_cosine_measures_can_pick_different_instances():
    entry = torch.tensor([[1.0, 0.0, 0.0]])
    # a: cos 0.5 to the entry, its other mass concentrated in one dimension;
    # b: cos 0.3, its other mass spread over two dimensions, so its softmax stays closer to the entry's.
    a = unit(0.5, 0.866, 0.0)
    b = unit(0.3, 0.674, 0.674)
    batch = torch.stack([a, b])
    by_cosine = hardness(batch, entry.expand(2, 3), "cosine", 0.05)
    by_kl = hardness(batch, entry.expand(2, 3), "kl", 0.05)
    assert int(by_cosine.argmax()) == 1
    assert int(by_kl.argmax()) == 0
    assert by_cosine[0].item() == pytest.approx(0.5, abs=1e-3)


def test_baseline_updates_instance_by_instance():
    memory = ClusterMemory(torch.stack([unit(1, 0), unit(0, 1)]), momentum=0.3, update_rule="instance")
    memory.update(torch.stack([unit(0, 1), unit(0, 1)]), torch.tensor([0, 0]))
    first = torch.tensor([0.3, 0.7]) / math.hypot(0.3, 0.7)
    second = 0.3 * first + 0.7 * torch.tensor([0.0, 1.0])
    assert torch.allclose(memory.features[0], second / second.norm(), atol=1e-6)


def test_update_takes_no_gradient_and_keeps_unit_rows():
    memory = ClusterMemory(torch.eye(3), momentum=0.3, update_rule="average")
    batch = torch.randn(6, 3, requires_grad=True)
    memory.update(batch, torch.tensor([0, 1, 2, 0, 1, 2]))
    assert not memory.features.requires_grad
    assert torch.allclose(memory.features.norm(dim=1), torch.ones(3))


def test_build_memories_per_sampling_mode():
    generator = torch.Generator().manual_seed(3)
    (baseline,) = build_memories("none", FEATURES, LABELS, 0.3, generator)
    assert baseline.update_rule == "instance"
    assert torch.allclose(baseline.features, cluster_centroids(FEATURES, LABELS))

    hardest, average = build_memories("both", FEATURES, LABELS, 0.3, torch.Generator().manual_seed(3))
    assert (hardest.update_rule, average.update_rule) == ("hardest", "average")
    assert torch.equal(hardest.features, average.features)  # one Eq. 4 sample initialises both
    average.update(unit(1, 1, 1)[None], torch.tensor([1]))
    assert not torch.equal(hardest.features, average.features)  # but they are separate tables

    with pytest.raises(SpcreidError, match="method.sampling"):
        build_memories("all", FEATURES, LABELS, 0.3, generator)


def test_state_dict_round_trip():
    memory = ClusterMemory(torch.eye(2), 0.2, "hardest", hard_measure="cosine", kl_temperature=0.1)
    copy = ClusterMemory.from_state_dict(memory.state_dict())
    assert torch.equal(copy.features, memory.features)
    assert (copy.momentum, copy.update_rule, copy.hard_measure, copy.kl_temperature) == (0.2, "hardest", "cosine", 0.1)
