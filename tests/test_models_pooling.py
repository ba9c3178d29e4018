"""Pooling: GeM against hand-computed values and its limits (p=1 is the mean, large p nears the max)."""

from __future__ import annotations

import math

import pytest
import torch

from spcreid.errors import SpcreidError
from spcreid.models import GeneralizedMeanPool, GlobalAvgPool, build_pooling


def test_gem_with_p_1_equals_average_pooling():
    x = torch.rand(2, 5, 4, 3) + 0.1
    torch.testing.assert_close(GeneralizedMeanPool(p=1.0)(x), GlobalAvgPool()(x))
    torch.testing.assert_close(GlobalAvgPool()(x), x.mean(dim=(2, 3)))


def test_gem_p_3_hand_computed():
    # Channel 0 holds 1 and 2 -> cube root of (1 + 8) / 2; channel 1 is constant 4 -> 4.
    x = torch.tensor([[[[1.0, 2.0]], [[4.0, 4.0]]]])
    torch.testing.assert_close(GeneralizedMeanPool(p=3.0)(x), torch.tensor([[4.5 ** (1 / 3), 4.0]]))


def test_gem_large_p_approaches_max_and_zeros_stay_finite():
    x = torch.tensor([[[[0.0, 0.0], [0.0, 3.0]]]])
    pooled = GeneralizedMeanPool(p=60.0)(x)
    assert math.isclose(float(pooled), 3.0 * 0.25 ** (1 / 60), rel_tol=1e-4)
    assert torch.isfinite(GeneralizedMeanPool(p=3.0)(torch.zeros(1, 1, 2, 2))).all()


def test_learnable_exponent_receives_gradient_and_fixed_one_does_not():
    x = torch.rand(2, 3, 4, 4) + 0.1
    learnable = GeneralizedMeanPool(p=3.0, learnable=True)
    learnable(x).sum().backward()
    assert learnable.p.grad is not None and learnable.p.grad.abs() > 0
    fixed = build_pooling("gem")
    assert not any(True for _ in fixed.parameters()) and float(fixed.p) == 3.0


def test_invalid_pooling_settings_are_user_errors():
    with pytest.raises(SpcreidError, match="positive"):
        GeneralizedMeanPool(p=0.0)
    with pytest.raises(SpcreidError, match="method.pooling"):
        build_pooling("median")
