"""``spcreid bench input-pipeline``: images/s of the training data path alone, of the model step alone,
and of both together, on generated JPEGs in a temporary folder; ``spcreid bench train-throughput``: the
model step alone, on one batch of random images.

The data path is the trainer's: decode everything once into the store (timed separately), then per
batch gather -> shared crop/flip -> normalise on the device. The model step is the trainer's too:
forward (bf16 autocast, channels_last on CUDA), Eq. 8 contrast + self-identity loss against a random
memory, backward, Adam. ``data_to_model_ratio`` > 1 means the data path outruns the model it feeds.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from spcreid.device import resolve_device
from spcreid.engine.determinism import seed_everything
from spcreid.engine.images import TrainImages
from spcreid.errors import SpcreidError
from spcreid.method.losses import training_loss
from spcreid.models.backbone import build_model


def write_images(folder: Path, count: int, height: int, width: int, seed: int) -> list[str]:
    """``count`` JPEGs that compress like photographs (smooth shapes, some noise), not like pure noise."""
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        coarse = rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        pixels = np.asarray(image, dtype=np.int16) + rng.integers(-12, 13, (height, width, 3))
        path = folder / f"img{index:05d}.jpg"
        Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


def _timed(step: Callable[[], Any], steps: int, device: torch.device) -> float:
    """Seconds per call of ``step``, after one untimed warm-up call; CUDA work is waited for."""
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / steps


def measure_input_pipeline(
    arch: str = "resnet50",
    height: int = 256,
    width: int = 128,
    groups: int = 32,
    copies: int = 4,
    sources: int = 128,
    source_size: tuple[int, int] = (256, 128),
    data_steps: int = 20,
    model_steps: int = 2,
    device: str = "auto",
    store: str = "auto",
    workers: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    if min(groups, sources, data_steps) < 1 or copies < 0 or model_steps < 0 or workers < 0:
        raise SpcreidError("--groups, --sources and --data-steps must be >= 1; --copies, --model-steps, --workers >= 0")
    torch_device = resolve_device(device)
    on_cuda = torch_device.type == "cuda"
    views = 1 + copies
    batch_images = groups * views
    generator = torch.Generator().manual_seed(seed)
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(torch_device) if on_cuda else f"cpu ({torch.get_num_threads()} threads)",
        "arch": arch,
        "height": height,
        "width": width,
        "groups_per_batch": groups,
        "views_per_group": views,
        "batch_images": batch_images,
        "store_images": sources * views,
        "decode_workers": workers,
        "torch": torch.__version__,
    }
    with tempfile.TemporaryDirectory(prefix="spcreid-bench-") as tmp:
        paths = write_images(Path(tmp), sources * views, *source_size, seed)
        copy_paths = [paths[i * views + 1 : (i + 1) * views] for i in range(sources)] if copies else None
        images = TrainImages(
            paths[::views], copy_paths, height, width, workers=workers, device=torch_device, store=store, plain=True
        )
        started = time.perf_counter()
        built = images.build()
        decode_seconds = time.perf_counter() - started
    result["store"] = built.describe()
    result["decode_images_per_s"] = round(sources * views / decode_seconds, 1)

    def draw_indices() -> list[int]:
        return torch.randint(0, sources, (groups,), generator=generator).tolist()

    def data_step() -> torch.Tensor:
        batch = images.batch(draw_indices(), generator)
        return batch.contiguous(memory_format=torch.channels_last)

    seconds = _timed(data_step, data_steps, torch_device)
    result["data_seconds_per_batch"] = round(seconds, 5)
    result["data_images_per_s"] = round(batch_images / seconds, 1)
    if model_steps == 0:
        return result

    model = build_model(arch, None, "avg", last_stride=1).to(torch_device, memory_format=torch.channels_last).train()
    memory = torch.nn.functional.normalize(torch.randn(500, model.feature_dim, generator=generator), dim=1)
    memory = memory.to(torch_device)
    labels = torch.randint(0, 500, (groups,), generator=generator).to(torch_device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3.5e-4, weight_decay=5e-4)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else contextlib.nullcontext()

    def model_step(batch: torch.Tensor) -> None:
        with autocast:
            features = model(batch)
        features = torch.nn.functional.normalize(features.float(), dim=1).view(groups, views, -1)
        loss = training_loss(
            features, labels, [memory], temperature=0.05, alpha=0.5, use_self_identity=copies > 0
        ).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    fixed = data_step()
    seconds = _timed(lambda: model_step(fixed), model_steps, torch_device)
    result["model_seconds_per_step"] = round(seconds, 4)
    result["model_images_per_s"] = round(batch_images / seconds, 2)
    seconds = _timed(lambda: model_step(data_step()), model_steps, torch_device)
    result["data_and_model_seconds_per_step"] = round(seconds, 4)
    result["data_and_model_images_per_s"] = round(batch_images / seconds, 2)
    result["data_to_model_ratio"] = round(result["data_images_per_s"] / result["model_images_per_s"], 1)
    result["precision"] = "bf16 autocast, channels_last" if on_cuda else "float32, channels_last"
    return result


def measure_train_throughput(
    arch: str, batch: int, height: int, width: int, steps: int, clusters: int, device: str = "auto"
) -> dict[str, Any]:
    """Time forward + backward + Adam step of one batch of random images on ``device``.

    The loss is the Eq. 8 InfoNCE against a random cluster memory, so the measured step is the
    training step minus data loading and the (negligible) memory update.
    """
    if batch < 1 or steps < 1 or clusters < 2:
        raise SpcreidError("--batch and --steps must be >= 1 and --clusters >= 2")
    torch_device = resolve_device(device)
    on_cuda = torch_device.type == "cuda"
    generator = seed_everything(0)
    model = build_model(arch, None, "avg", last_stride=1).to(torch_device).train()
    images = torch.randn(batch, 3, height, width, generator=generator).to(torch_device)
    model.to(memory_format=torch.channels_last)
    images = images.contiguous(memory_format=torch.channels_last)
    memory = torch.nn.functional.normalize(torch.randn(clusters, model.feature_dim, generator=generator), dim=1)
    memory = memory.to(torch_device)
    labels = torch.randint(0, clusters, (batch,), generator=generator).to(torch_device)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3.5e-4, weight_decay=5e-4)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else contextlib.nullcontext()

    def step() -> None:
        with autocast:
            features = model(images)
        loss = training_loss(
            features.float()[:, None], labels, [memory], temperature=0.05, alpha=0.0, use_self_identity=False
        ).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up: allocator, kernel selection
    if on_cuda:
        torch.cuda.synchronize(torch_device)
    started = time.perf_counter()
    for _ in tqdm(range(steps), desc="train steps", leave=False):
        step()
    if on_cuda:
        torch.cuda.synchronize(torch_device)
    seconds = (time.perf_counter() - started) / steps
    return {
        "device": torch.cuda.get_device_name(torch_device) if on_cuda else f"cpu ({torch.get_num_threads()} threads)",
        "arch": arch,
        "batch": batch,
        "height": height,
        "width": width,
        "steps": steps,
        "precision": "bf16 autocast, channels_last" if on_cuda else "float32, channels_last",
        "seconds_per_step": round(seconds, 4),
        "images_per_s": round(batch / seconds, 2),
        "torch": torch.__version__,
    }
