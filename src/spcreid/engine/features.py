"""Feature extraction for clustering and evaluation: resize + normalise, no augmentation, input order kept.

Images travel as uint8 (4x less to copy than float32) and are normalised on the model's device.
From files, a ``DataLoader`` with worker processes decodes ahead (pinned memory on CUDA); from an
already decoded uint8 tensor (the training store's uncropped sources) nothing is decoded at all.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from spcreid.engine.decode import read_rgb
from spcreid.engine.images import normalise
from spcreid.errors import SpcreidError

# Images per forward pass when extracting features, for clustering and for evaluation alike.
FEATURE_BATCH_SIZE = 128


class TestImages(Dataset):
    """uint8 images resized to ``height x width``, paired with an error message ("" if fine).

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
            return read_rgb(self.paths[index], self.height, self.width), ""
        except SpcreidError as exc:
            return torch.zeros(3, self.height, self.width, dtype=torch.uint8), str(exc)


def _decoded_batches(
    paths: Sequence[str | os.PathLike], height: int, width: int, batch_size: int, workers: int, pin: bool = False
) -> Iterable[torch.Tensor]:
    """uint8 batches of ``paths`` in order; ``workers`` processes (0: this one) keep 4 batches each decoded ahead.

    The first unreadable image stops it with its file named.
    """
    loader = DataLoader(
        TestImages(paths, height, width),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=pin,
        prefetch_factor=4 if workers else None,
    )
    for images, problems in loader:
        problem = next((p for p in problems if p), None)
        if problem:
            raise SpcreidError(problem)
        yield images


def extract_features(
    model: nn.Module,
    paths: Sequence[str | os.PathLike],
    height: int,
    width: int,
    batch_size: int = FEATURE_BATCH_SIZE,
    device: str | torch.device = "cpu",
    workers: int = 0,
    desc: str = "features",
) -> torch.Tensor:
    """Run ``model`` in eval mode over ``paths``; float32 CPU tensor (N, D), row i for paths[i].

    ``workers`` decoding processes (0: in this process) keep 4 batches each decoded ahead.
    """
    device = torch.device(device)
    batches = _decoded_batches(paths, height, width, batch_size, workers, pin=device.type == "cuda")
    return _run_model(model, batches, device, desc, getattr(model, "feature_dim", 0))


def decode_images(
    paths: Sequence[str | os.PathLike], height: int, width: int, workers: int = 0, batch_size: int = FEATURE_BATCH_SIZE
) -> torch.Tensor:
    """uint8 (N, 3, height, width) of ``paths`` in order, decoded by ``workers`` processes (0: this one).

    For scoring several models on the same images (``spcreid evaluate`` with several runs): decode once,
    then ``extract_tensor_features`` per model.
    """
    chunks = list(_decoded_batches(paths, height, width, batch_size, workers))
    return torch.cat(chunks) if chunks else torch.empty(0, 3, height, width, dtype=torch.uint8)


def extract_tensor_features(
    model: nn.Module,
    images: torch.Tensor,
    batch_size: int = FEATURE_BATCH_SIZE,
    device: str | torch.device = "cpu",
    desc: str = "features",
) -> torch.Tensor:
    """As ``extract_features`` for already decoded uint8 images (N, 3, H, W) on any device."""
    device = torch.device(device)
    chunks = (images[start : start + batch_size] for start in range(0, len(images), batch_size))
    return _run_model(model, chunks, device, desc, getattr(model, "feature_dim", 0))


def _run_model(
    model: nn.Module, batches: Iterable[torch.Tensor], device: torch.device, desc: str, feature_dim: int
) -> torch.Tensor:
    """Eval-mode forward of uint8 batches; the model's train/eval mode is restored, it is moved to ``device``.

    The model runs channels-last (on a 2-core CPU too: a third less time per image for the narrow
    ResNets), on CUDA under bf16 autocast (the features are re-normalised in float32 afterwards so bf16
    rounding does not leave them off the unit sphere).
    """
    on_cuda = device.type == "cuda"
    was_training = model.training
    model.to(device, memory_format=torch.channels_last)
    model.eval()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else contextlib.nullcontext()
    chunks: list[torch.Tensor] = []
    try:
        with torch.no_grad(), autocast:
            for images in tqdm(batches, desc=desc, unit="batch", leave=False, disable=None):
                images = normalise(images.to(device, non_blocking=True))
                images = images.contiguous(memory_format=torch.channels_last)
                chunks.append(model(images).float())
    finally:
        model.train(was_training)
    if not chunks:
        return torch.empty(0, int(feature_dim))
    features = torch.cat(chunks)
    if on_cuda:
        features = F.normalize(features, dim=1)
    return features.cpu()
