"""The synthesiser interface, input checks shared by all backends, and the backend registry.

A synthesiser turns one person image into copies of the same person wearing other clothes: it gets
the image (H x W x 3 uint8), its 8-class parsing map (H x W uint8, labels of
``spcreid.data.parsing_labels``) and one donor (image, parsing) pair per copy, and returns one
image of the source's size per donor. Backends register under a name (``parsing-swap``, ``pise``)
so that params.yaml and the CLI can pick one by that name.
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from spcreid.data.parsing_labels import NUM_LABELS
from spcreid.errors import SpcreidError


@dataclass(frozen=True)
class Person:
    """An image with its parsing map, already checked to belong together."""

    image: np.ndarray
    parsing: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.parsing.shape


def check_person(image: np.ndarray, parsing: np.ndarray, where: str) -> Person:
    """Validate shapes, dtypes and labels of an (image, parsing) pair; ``where`` names it in errors."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise SpcreidError(f"{where}: image must be H x W x 3 uint8, got shape {image.shape} dtype {image.dtype}")
    if parsing.ndim != 2 or not np.issubdtype(parsing.dtype, np.integer):
        raise SpcreidError(
            f"{where}: parsing map must be H x W integers, got shape {parsing.shape} dtype {parsing.dtype}"
        )
    if parsing.shape != image.shape[:2]:
        raise SpcreidError(
            f"{where}: parsing map is {parsing.shape[1]}x{parsing.shape[0]} but the image is "
            f"{image.shape[1]}x{image.shape[0]}; regenerate the parsing map at the image's size"
        )
    top = int(parsing.max(initial=0))
    if top >= NUM_LABELS or int(parsing.min(initial=0)) < 0:
        raise SpcreidError(
            f"{where}: parsing map holds label {top}, but only 0..{NUM_LABELS - 1} exist "
            "(spcreid.data.parsing_labels); remap 20-class CIHP/LIP maps with LIP_TO_SPCREID"
        )
    return Person(image=image, parsing=parsing.astype(np.uint8, copy=False))


def load_image(path: str | os.PathLike) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError as exc:
        raise SpcreidError(f"image {path} does not exist") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise SpcreidError(f"image {path} cannot be read ({exc}); re-extract or re-download it") from exc


def load_parsing(path: str | os.PathLike) -> np.ndarray:
    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "P", "I", "I;16"):
                raise SpcreidError(f"parsing map {path} has mode {img.mode}; expected a single-channel PNG")
            # Keep the stored integer type: a cast to uint8 here could wrap a bad label into a valid one.
            return np.asarray(img)
    except FileNotFoundError as exc:
        raise SpcreidError(f"parsing map {path} does not exist; run the human parser on this image first") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise SpcreidError(f"parsing map {path} cannot be read ({exc})") from exc


def load_person(image_path: str | os.PathLike, parsing_path: str | os.PathLike) -> Person:
    """Read an image and its parsing map from disk and check that they match."""
    image = load_image(image_path)
    return check_person(image, load_parsing(parsing_path), where=f"image {image_path} with parsing map {parsing_path}")


class Synthesizer(ABC):
    """A clothing-change backend: ``synthesize`` returns one copy of ``source`` per donor."""

    name: str = ""

    @abstractmethod
    def synthesize(self, source: Person, donors: Sequence[Person]) -> list[np.ndarray]:
        """Copies of ``source`` (same size, uint8 RGB) wearing each donor's clothes, in donor order."""


_REGISTRY: dict[str, Callable[..., Synthesizer]] = {}
# The built-in backends and the module whose @register adds each. Named, not imported: they import this module
# (a circle), and only a run that synthesises needs them.
BUILTIN_BACKENDS = {"parsing-swap": "spcreid.synthesis.parsing_swap", "pise": "spcreid.synthesis.pise.runner"}


def register(name: str) -> Callable:
    """Class decorator adding a backend to the registry under ``name``."""

    def add(factory: Callable[..., Synthesizer]) -> Callable[..., Synthesizer]:
        _REGISTRY[name] = factory
        factory.name = name
        return factory

    return add


def _load_builtin_backends() -> None:
    # Importing the modules runs their @register decorators.
    for module in BUILTIN_BACKENDS.values():
        importlib.import_module(module)


def backend_names() -> list[str]:
    _load_builtin_backends()
    return sorted(_REGISTRY)


def get_synthesizer(name: str, **options) -> Synthesizer:
    """Instantiate the backend registered as ``name`` with backend-specific ``options``."""
    _load_builtin_backends()
    if name not in _REGISTRY:
        raise SpcreidError(f"unknown synthesis backend '{name}'; available: {sorted(_REGISTRY)}")
    return _REGISTRY[name](**options)
