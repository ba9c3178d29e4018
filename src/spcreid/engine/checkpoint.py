"""Checkpoints (everything needed to resume bit-exactly) and final model files.

A resumed run must reach the same weights as an uninterrupted one, so besides model and optimiser
the checkpoint holds every random state the loop draws from: torch's global generator (model
init, CUDA kernels), numpy's and Python's (used by third-party code such as the sampler or
clustering) and the explicit ``torch.Generator`` that drives sampling, augmentation and memory
initialisation. All of it is stored as tensors and plain Python values so that it loads with
``torch.load(weights_only=True)``, which never unpickles arbitrary objects.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spcreid.errors import SpcreidError
from spcreid.io import atomic_write

CHECKPOINT_FORMAT = 1


def capture_rng_states(generator: torch.Generator) -> dict[str, Any]:
    name, keys, position, has_gauss, cached_gauss = np.random.get_state()
    states = {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gauss": float(cached_gauss),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    generator.set_state(states["generator"])
    np_state = states["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["position"],
            np_state["has_gauss"],
            np_state["cached_gauss"],
        )
    )
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _save(path: str | os.PathLike, obj: dict[str, Any]) -> None:
    """torch.save into memory, then write atomically.

    torch names the zip entries after the file it writes (``<stem>/data.pkl``); saved by name to a
    temporary file, the random temporary name would make two identical runs differ byte for byte. A
    buffer always gets the same entry name, so identical weights give identical files.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getbuffer())


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write atomically: an interrupted save leaves the previous checkpoint intact."""
    _save(path, {"format": CHECKPOINT_FORMAT, **state})


def load_verified(
    path: str | os.PathLike, what: str, remedy: str, file_format: int = CHECKPOINT_FORMAT, mmap: bool = False
) -> dict[str, Any]:
    """The contents of a torch file spcreid wrote, after checking it is one: every spcreid file is read here.

    Tensors and plain values only (``weights_only``: nothing is unpickled that could run code), and only a
    dict whose ``format`` is ``file_format``. Every failure is one line naming ``what`` and the file, then
    ``remedy``. ``mmap``: map the tensors from the file instead of reading them (a large packed store).
    """
    path = Path(path)
    if not path.is_file():
        raise SpcreidError(f"{what} {path} not found; {remedy}")
    try:
        state = torch.load(path, map_location="cpu", mmap=mmap, weights_only=True)
    except Exception as exc:  # torch raises pickle, zip and EOF errors alike for a damaged file
        raise SpcreidError(f"{what} {path} cannot be read ({type(exc).__name__}); {remedy}") from exc
    if not isinstance(state, dict) or state.get("format") != file_format:
        raise SpcreidError(f"{what} {path} is not a spcreid file of format {file_format}; {remedy}")
    return state


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    return load_verified(path, "checkpoint", "train again without --resume")


def save_model(path: str | os.PathLike, model: torch.nn.Module, meta: dict[str, Any]) -> None:
    """Final weights plus what is needed to rebuild the network (arch, pooling, input size)."""
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    _save(path, {"format": CHECKPOINT_FORMAT, "meta": dict(meta), "state_dict": state})


def load_model_file(path: str | os.PathLike) -> dict[str, Any]:
    """``{"meta": {...}, "state_dict": {...}}`` of a model.pt written by :func:`save_model`."""
    return load_verified(path, "model file", "train the run again (spcreid train)")
