"""Contact sheet of synthetic copies: one row per source, columns = source, its parsing, its copies.

Used to eyeball whether a backend produces "the same person in other clothes" before training on it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from spcreid.errors import SpcreidError
from spcreid.io import atomic_path
from spcreid.synthesis.base import load_image, load_parsing
from spcreid.synthesis.cache import SynthesisCache

# One colour per spcreid parsing label (background, hair, face, upper, lower, arms, legs, shoes).
PARSING_PALETTE = np.array(
    [
        [40, 40, 40],
        [120, 70, 20],
        [255, 205, 160],
        [220, 30, 60],
        [40, 90, 220],
        [245, 165, 40],
        [140, 215, 90],
        [150, 60, 200],
    ],
    dtype=np.uint8,
)
HEADER_HEIGHT = 16
GAP = 4


def colourise_parsing(parsing: np.ndarray) -> np.ndarray:
    return PARSING_PALETTE[np.clip(parsing, 0, len(PARSING_PALETTE) - 1)]


def contact_sheet(rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str], scale: int = 1) -> np.ndarray:
    """Tile equally sized RGB images into a grid with a title per column, upscaled by ``scale``."""
    if not rows:
        raise SpcreidError("contact sheet: nothing to show")
    h, w = rows[0][0].shape[:2]
    cell_h, cell_w = h * scale, w * scale
    n_cols = max(len(r) for r in rows)
    sheet = np.full((HEADER_HEIGHT + len(rows) * (cell_h + GAP), n_cols * (cell_w + GAP) - GAP, 3), 255, np.uint8)
    for r, images in enumerate(rows):
        top = HEADER_HEIGHT + r * (cell_h + GAP)
        for c, image in enumerate(images):
            if image.shape[:2] != (h, w):  # a cache made at another size: fit it into the cell
                image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
            cell = image.repeat(scale, axis=0).repeat(scale, axis=1)  # nearest: keeps pixels honest
            left = c * (cell_w + GAP)
            sheet[top : top + cell_h, left : left + cell_w] = cell
    canvas = Image.fromarray(sheet)
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(titles[:n_cols]):
        draw.text((c * (cell_w + GAP) + 2, 2), title, fill=(0, 0, 0))
    return np.asarray(canvas)


def pick_sources(paths: Sequence[str], pids: Sequence[int], count: int) -> list[int]:
    """Row indices of up to ``count`` sources spread over identities (first image of each chosen pid)."""
    first_of_pid: dict[int, int] = {}
    for i in sorted(range(len(paths)), key=lambda i: paths[i]):
        first_of_pid.setdefault(int(pids[i]), i)
    pid_order = sorted(first_of_pid)
    if count >= len(pid_order):
        return [first_of_pid[p] for p in pid_order]
    picks = np.linspace(0, len(pid_order) - 1, count).round().astype(int)
    return [first_of_pid[pid_order[k]] for k in picks]


def write_preview(
    cache_folder: str | os.PathLike,
    sources: Sequence[str],
    parsings: Sequence[str],
    pids: Sequence[int],
    out_png: str | os.PathLike,
    count: int = 6,
) -> Path:
    """Render the contact sheet of ``count`` cached sources to ``out_png`` (written atomically)."""
    if count < 1:
        raise SpcreidError(f"--preview-count must be at least 1, got {count}")
    cache = SynthesisCache(cache_folder)
    chosen = pick_sources(sources, pids, count)
    rows = []
    for i in chosen:
        image = load_image(sources[i])
        rows.append(
            [image, colourise_parsing(load_parsing(parsings[i]))] + [load_image(p) for p in cache.copies(sources[i])]
        )
    titles = ["source", "parsing"] + [f"copy {k + 1}" for k in range(cache.copies_per_source)]
    scale = max(1, round(160 / rows[0][0].shape[0]))
    sheet = contact_sheet(rows, titles, scale=scale)
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        Image.fromarray(sheet).save(tmp, format="PNG", optimize=True)
    return out_png
