"""Decode checks for dataset images and parsing maps.

A truncated JPEG often passes ``Image.verify()`` (which only reads the header and chunk structure)
and fails later in the middle of training, so every check here also decodes the pixels.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from spcreid.data.parsing_labels import NUM_LABELS

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

# PIL raises a zoo of exception types for damaged files; all of them mean "not decodable".
DECODE_ERRORS = (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError)


def list_files(folder: Path, problems: list[str] | None = None) -> list[Path]:
    """Visible regular files of ``folder``, sorted by name so results never depend on disk order.

    A symbolic link whose target is missing or loops is not a file; with ``problems`` it is reported there,
    since dropping an image without a word changes the dataset.
    """
    entries = sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)
    if problems is not None:
        problems += [
            f"{p}: broken symbolic link (its target is missing or it points to itself); fix or remove it"
            for p in entries
            if p.is_symlink() and not p.exists()
        ]
    return [p for p in entries if p.is_file()]


def list_dirs(folder: Path) -> list[Path]:
    """Visible sub-folders of ``folder``, sorted by name."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _decode(path: Path) -> Image.Image:
    with Image.open(path) as probe:
        probe.verify()
    # verify() leaves the file object unusable; a fresh open is needed to decode the pixels.
    image = Image.open(path)
    image.load()
    return image


# Modes with more than 8 bits per channel: Pillow's conversion to RGB clips them (a 16-bit PNG turns almost white).
_WIDE_MODES = ("I", "F") + tuple(f"I;16{order}" for order in ("", "B", "L", "N"))


def image_problem(path: str | os.PathLike) -> str | None:
    """None if ``path`` is a fully decodable image, else a message naming the file."""
    try:
        image = _decode(Path(path))
    except FileNotFoundError:
        return f"{path}: file is missing"
    except DECODE_ERRORS as exc:
        return f"{path}: not a decodable image ({exc}); re-extract or re-download the dataset"
    with image:
        if image.mode in _WIDE_MODES:
            return (
                f"{path}: image has mode {image.mode} (16-bit or float), which would be clipped when read as 8-bit "
                "RGB; convert it to 8-bit RGB"
            )
    return None


def parsing_map_problem(parsing_path: str | os.PathLike, image_path: str | os.PathLike) -> str | None:
    """None if the parsing map is a single-channel PNG of the image's size with labels 0..7."""
    try:
        parsing = _decode(Path(parsing_path))
    except FileNotFoundError:
        return f"{parsing_path}: parsing map is missing (for image {image_path})"
    except DECODE_ERRORS as exc:
        return f"{parsing_path}: parsing map is not a decodable image ({exc})"
    with parsing:
        if parsing.mode not in ("L", "P"):
            return f"{parsing_path}: parsing map has mode {parsing.mode}; expected single-channel (L or P)"
        try:
            with Image.open(image_path) as image:
                image_size = image.size
        except (FileNotFoundError, *DECODE_ERRORS):
            return None  # the image check reports the image itself; one message per fault is enough
        if parsing.size != image_size:
            width, height = parsing.size
            return f"{parsing_path}: parsing map is {width}x{height}, image is {image_size[0]}x{image_size[1]}"
        top = int(np.asarray(parsing).max(initial=0))
    if top >= NUM_LABELS:
        return f"{parsing_path}: parsing map holds label {top}; labels must be 0..{NUM_LABELS - 1}"
    return None


def run_checks(
    items: Sequence, check: Callable[..., str | None], desc: str, workers: int = 4, star: bool = False
) -> list[str]:
    """Apply ``check`` to every item on a thread pool (decoding releases the GIL), with a progress bar.

    Returns the problems in item order, so a report lists them deterministically.
    """
    call: Callable = (lambda args: check(*args)) if star else check
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(tqdm(pool.map(call, items), total=len(items), desc=desc, unit="img", leave=False, disable=None))
    return [r for r in results if r is not None]
