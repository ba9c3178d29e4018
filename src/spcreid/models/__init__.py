"""Backbones (ResNet-50 last stride 1, ResNet-18, a narrow CPU ResNet-18), pooling and the BN neck."""

from spcreid.models.backbone import ARCHS, ReIDModel, build_model, load_trunk_weights
from spcreid.models.pooling import POOLINGS, GeneralizedMeanPool, GlobalAvgPool, build_pooling

__all__ = [
    "ARCHS",
    "POOLINGS",
    "GeneralizedMeanPool",
    "GlobalAvgPool",
    "ReIDModel",
    "build_model",
    "build_pooling",
    "load_trunk_weights",
]
