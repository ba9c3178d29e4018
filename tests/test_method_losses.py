"""Losses: Eq. 8 InfoNCE (one and two memories), Eq. 9 self-identity KL, L = Lq + alpha Ls, gradients."""

import math

import pytest
import torch

from spcreid.errors import SpcreidError
from spcreid.method.losses import contrast_loss, info_nce, self_identity_loss, training_loss

LN2 = math.log(2)


def test_info_nce_two_clusters_by_hand():
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = info_nce(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), memory, temperature=0.5)
    # logits (2, 0): -log(e^2 / (e^2 + 1))
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-6)


def test_info_nce_three_clusters_by_hand_and_batch_mean():
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    features = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    loss = info_nce(features, torch.tensor([1, 2]), memory, temperature=0.1)
    # feature 1: logits (6, 8, -6), positive 8;  feature 2: logits (10, 0, -10), positive -10
    first = -8 + math.log(math.exp(6) + math.exp(8) + math.exp(-6))
    second = 10 + math.log(math.exp(10) + 1 + math.exp(-10))
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-6)


def test_two_memories_mean_and_union_by_hand():
    hard = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    average = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    feature = torch.tensor([[1.0, 0.0]])
    label = torch.tensor([0])
    # tau = 1: hard logits (1, 0), positive 1;  average logits (0, 1), positive 0
    mean = contrast_loss(feature, label, [hard, average], 1.0, combine="mean")
    per_memory = [-1 + math.log(math.e + 1), 0 + math.log(1 + math.e)]
    assert mean.item() == pytest.approx(sum(per_memory) / 2, rel=1e-6)
    # union: one softmax over (1, 0, 0, 1) with positives at 1 (hard) and 0 (average)
    union = contrast_loss(feature, label, [hard, average], 1.0, combine="union")
    denominator = math.log(2 * math.e + 2)
    assert union.item() == pytest.approx(((denominator - 1) + (denominator - 0)) / 2, rel=1e-6)
    with pytest.raises(SpcreidError, match="memory_combination"):
        contrast_loss(feature, label, [hard, average], 1.0, combine="max")


def test_self_identity_kl_by_hand():
    # one image, two views; t = 1: p = softmax(ln2, 0) = (2/3, 1/3), q = softmax(0, 0) = (1/2, 1/2)
    features = torch.tensor([[[LN2, 0.0], [0.0, 0.0]]])
    kl_pq = 2 / 3 * math.log(4 / 3) + 1 / 3 * math.log(2 / 3)
    kl_qp = 0.5 * math.log(0.75) + 0.5 * math.log(1.5)
    loss = self_identity_loss(features, "features", temperature=1.0)
    # both ordered pairs, normalised by P*K*(S+1) = 1 * 2
    assert loss.item() == pytest.approx((kl_pq + kl_qp) / 2, rel=1e-6)


def test_self_identity_memory_distribution_matches_features_for_identity_memory():
    features = torch.randn(3, 4, 5)
    memory = torch.eye(5)
    by_memory = self_identity_loss(features, "memory", 0.5, memories=[memory])
    by_features = self_identity_loss(features, "features", 0.5)
    assert by_memory.item() == pytest.approx(by_features.item(), rel=1e-5)
    assert by_features.item() > 0


def test_self_identity_is_zero_for_identical_views():
    features = torch.randn(2, 1, 8).expand(2, 5, 8)
    assert self_identity_loss(features, "features", 0.05).item() == pytest.approx(0.0, abs=1e-6)


def tiny_backbone(images):
    """A linear 'backbone' so gradients to its weights can be checked."""
    weight = torch.randn(4, 6, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    features = torch.nn.functional.normalize(images @ weight.t(), dim=-1)
    return weight, features


def test_self_identity_gradient_vanishes_when_copies_equal_the_source():
    sources = torch.randn(3, 1, 6)
    weight, features = tiny_backbone(sources.expand(3, 5, 6))
    self_identity_loss(features, "features", 0.05).backward()
    equal_views_grad = weight.grad.abs().max().item()

    weight, features = tiny_backbone(sources + 0.1 * torch.randn(3, 5, 6))
    self_identity_loss(features, "features", 0.05).backward()
    # float32 round-off aside, identical views give no gradient; perturbed copies do.
    assert equal_views_grad < 1e-5
    assert weight.grad.abs().max().item() > 1e3 * equal_views_grad


def test_self_identity_gradient_reaches_source_and_copies():
    features = torch.nn.functional.normalize(torch.randn(2, 3, 4), dim=-1).requires_grad_(True)
    self_identity_loss(features, "features", 0.1).backward()
    assert (features.grad.abs().sum(dim=-1) > 0).all()


def test_memories_receive_no_gradient_and_backbone_does():
    images = torch.randn(4, 2, 6)
    weight, features = tiny_backbone(images)
    memory = torch.nn.functional.normalize(torch.randn(3, 4), dim=1).requires_grad_(True)
    terms = training_loss(
        features, torch.tensor([0, 1, 2, 0]), [memory], temperature=0.05, alpha=0.3, use_self_identity=True
    )
    terms.total.backward()
    assert memory.grad is None
    assert weight.grad is not None and weight.grad.abs().sum() > 0


def test_total_loss_combines_terms_and_copies_enter_lq():
    features = torch.nn.functional.normalize(torch.randn(2, 3, 4), dim=-1)
    memory = torch.nn.functional.normalize(torch.randn(2, 4), dim=1)
    labels = torch.tensor([1, 0])
    full = training_loss(features, labels, [memory], temperature=0.05, alpha=0.3, use_self_identity=True)
    assert full.total.item() == pytest.approx(full.contrast.item() + 0.3 * full.self_identity.item(), rel=1e-6)
    assert full.self_identity.item() > 0

    # augment without self-identity: Ls is off, Lq averages over sources and copies alike
    augment_only = training_loss(features, labels, [memory], temperature=0.05, alpha=0.3, use_self_identity=False)
    assert augment_only.self_identity.item() == 0.0
    per_view = [info_nce(features[g, v : v + 1], labels[g : g + 1], memory, 0.05) for g in range(2) for v in range(3)]
    assert augment_only.total.item() == pytest.approx(torch.stack(per_view).mean().item(), rel=1e-6)
