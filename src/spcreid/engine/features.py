"""Feature extraction for clustering and evaluation: resize + normalise, no augmentation, input order kept."""

from __future__ import annotations

import contextlib
import os
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from spcreid.engine.images import normalise, read_rgb
from spcreid.errors import SpcreidError


class TestImages(Dataset):
    """Images resized to ``height x width`` and normalised, paired with an error message ("" if fine).

    Errors travel as data rather than exceptions: a worker process's exception would reach the
    user wrapped in a multi-line traceback instead of the one-line message naming the file.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, paths: Sequence[str | os.PathLike], height: int, width: int):
        self.paths = [os.fspath(p) for p in paths]
        self.height, self.width = height, width

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
        try:
            return normalise(read_rgb(self.paths[index], self.height, self.width)), ""
        except SpcreidError as exc:
            return torch.zeros(3, self.height, self.width), str(exc)


def extract_features(
    model: nn.Module,
    paths: Sequence[str | os.PathLike],
    height: int,
    width: int,
    batch_size: int = 128,
    device: str | torch.device = "cpu",
    workers: int = 0,
    desc: str = "features",
) -> torch.Tensor:
    """Run ``model`` in eval mode over ``paths``; float32 CPU tensor (N, D), row i for paths[i].

    On CUDA the model runs channels-last under bf16 autocast (the features are re-normalised in
    float32 afterwards so bf16 rounding does not leave them off the unit sphere). The model's
    train/eval mode is restored afterwards; it is moved to ``device``.
    """
    device = torch.device(device)
    on_cuda = device.type == "cuda"
    loader = DataLoader(
        TestImages(paths, height, width),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=on_cuda,
    )
    was_training = model.training
    model.to(device)
    if on_cuda:
        model.to(memory_format=torch.channels_last)
    model.eval()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else contextlib.nullcontext()
    chunks: list[torch.Tensor] = []
    try:
        with torch.no_grad(), autocast:
            for images, problems in tqdm(loader, desc=desc, unit="batch", leave=False, disable=None):
                problem = next((p for p in problems if p), None)
                if problem:
                    raise SpcreidError(problem)
                images = images.to(device, non_blocking=True)
                if on_cuda:
                    images = images.contiguous(memory_format=torch.channels_last)
                chunks.append(model(images).float())
    finally:
        model.train(was_training)
    if not chunks:
        return torch.empty(0, int(getattr(model, "feature_dim", 0)))
    features = torch.cat(chunks)
    if on_cuda:
        features = F.normalize(features, dim=1)
    return features.cpu()
