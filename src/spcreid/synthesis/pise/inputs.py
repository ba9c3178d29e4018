"""PISE's input layout, built from ReID crops, and the exact inverse for its outputs.

PISE was trained on DeepFashion at 256x176 (height x width) padded with 40 white columns on each
side to 256x256; its loader adds 40 to every keypoint x read from the annotation CSV, so the CSV
holds coordinates in the unpadded 256x176 frame while images and parsing maps are stored padded.

Staging folder written by :func:`stage_jobs` (PISE's ``--dataroot``, phase ``test``)::

    test/<name>.png                256x256 RGB, padded white
    testSPL8/<name>.png            256x256 parsing in PISE's 8-class order, padded background
    fasion-annotation-test.csv     name:keypoints_y:keypoints_x  (PISE's spelling of "fashion")
    fasion-pairs-test.csv          from,to,donor
    jobs.csv                       our bookkeeping: name -> source, copy, donor, output path

Each copy gets its own name ``jNNNNNN.png`` (a duplicate of its source) because PISE names its
output after the input pair; donors are staged once as ``dNNNNNN.png``. ``from`` and ``to`` are
both the copy itself: the pose and layout stay the source's, only the clothing codes come from
``donor`` (the texture-transfer patch in containers/pise reads that third column).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from spcreid.data.parsing_labels import ARMS, BACKGROUND, FACE, HAIR, LEGS, LOWER_CLOTHES, SHOES, UPPER_CLOTHES
from spcreid.errors import SpcreidError
from spcreid.io import atomic_path, atomic_write
from spcreid.synthesis.base import load_person

PISE_HEIGHT, PISE_WIDTH = 256, 176
PAD = 40
CANVAS = PISE_WIDTH + 2 * PAD  # 256
HEATMAP_SIGMA = 6.0
MISSING = -1

# spcreid label -> PISE label. The meaning of PISE's 8 classes is ambiguous in its own project:
# "issue20" is the author's answer in Zhangjinso/PISE#20 after re-checking the released data
# (0 background, 1 hat, 2 hair, 3 upper clothes, 4 and 5 "lower part of the body", 6 skin, 7 face),
# which matches a user's observation there that shoes have their own class and arm and leg skin
# share one; we read 4 as pants and 5 as shoes. "issue2" is the older CIHP->8 table from
# Zhangjinso/PISE#2 (1 hair, 2 upper, 3 lower, 4 shoes, 5 face, 6 arms, 7 legs). Verify on real
# outputs by visualising (docs/SYNTHESIS.md).
PISE_LABEL_MAPS = {
    "issue20": {BACKGROUND: 0, HAIR: 2, FACE: 7, UPPER_CLOTHES: 3, LOWER_CLOTHES: 4, ARMS: 6, LEGS: 6, SHOES: 5},
    "issue2": {BACKGROUND: 0, HAIR: 1, FACE: 5, UPPER_CLOTHES: 2, LOWER_CLOTHES: 3, ARMS: 6, LEGS: 7, SHOES: 4},
}
ANNOTATION_FILE = "fasion-annotation-test.csv"
PAIRS_FILE = "fasion-pairs-test.csv"
JOBS_FILE = "jobs.csv"
IMAGE_DIR, PARSING_DIR = "test", "testSPL8"


def label_lookup(label_map: str) -> np.ndarray:
    if label_map not in PISE_LABEL_MAPS:
        raise SpcreidError(f"--pise-label-map '{label_map}' is unknown; choose one of {sorted(PISE_LABEL_MAPS)}")
    table = PISE_LABEL_MAPS[label_map]
    return np.array([table[label] for label in range(len(table))], dtype=np.uint8)


def to_pise_image(image: np.ndarray) -> np.ndarray:
    """H x W x 3 crop -> 256 x 256 x 3: resized to 256x176, then 40 white columns each side."""
    resized = np.asarray(Image.fromarray(image).resize((PISE_WIDTH, PISE_HEIGHT), Image.BILINEAR))
    return np.pad(resized, ((0, 0), (PAD, PAD), (0, 0)), constant_values=255)


def to_pise_parsing(parsing: np.ndarray, label_map: str = "issue20") -> np.ndarray:
    """spcreid parsing -> PISE-order parsing, resized (nearest) to 256x176 and padded as background."""
    remapped = label_lookup(label_map)[parsing]
    resized = np.asarray(Image.fromarray(remapped).resize((PISE_WIDTH, PISE_HEIGHT), Image.NEAREST))
    return np.pad(resized, ((0, 0), (PAD, PAD)), constant_values=0)


def from_pise_image(canvas: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Inverse of :func:`to_pise_image`: drop the padding, resize back to ``size`` (h, w)."""
    if canvas.shape[:2] != (PISE_HEIGHT, CANVAS):
        raise SpcreidError(f"PISE output must be {PISE_HEIGHT}x{CANVAS}, got {canvas.shape[1]}x{canvas.shape[0]}")
    crop = np.ascontiguousarray(canvas[:, PAD:PAD + PISE_WIDTH, :3])
    h, w = size
    if (h, w) == crop.shape[:2]:
        return crop
    return np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR))


def scale_keypoints(keypoints: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(18, 2) (y, x) keypoints of an H x W crop -> the unpadded 256x176 frame; -1 stays -1."""
    keypoints = np.asarray(keypoints)
    h, w = size
    factor = np.array([PISE_HEIGHT / h, PISE_WIDTH / w])
    # Pixel centres map onto pixel centres under resizing: (p + 0.5) * f - 0.5.
    scaled = np.rint((keypoints + 0.5) * factor - 0.5).astype(np.int64)
    missing = (keypoints == MISSING).any(axis=1)
    scaled[missing] = MISSING
    return np.clip(scaled, MISSING, [PISE_HEIGHT - 1, PISE_WIDTH - 1])


def pose_heatmaps(keypoints: np.ndarray, sigma: float = HEATMAP_SIGMA) -> np.ndarray:
    """(256, 256, 18) Gaussian maps of 256x176-frame keypoints placed on the padded canvas (x + 40).

    PISE builds these itself from the CSV; this is for checking our keypoints against its inputs.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    yy = np.arange(PISE_HEIGHT, dtype=np.float64)[:, None, None]
    xx = np.arange(CANVAS, dtype=np.float64)[None, :, None]
    ky, kx = keypoints[:, 0], keypoints[:, 1] + PAD
    maps = np.exp(-((yy - ky) ** 2 + (xx - kx) ** 2) / (2.0 * sigma**2))
    maps[..., (keypoints == MISSING).any(axis=1)] = 0.0
    return maps.astype(np.float32)


def annotation_line(name: str, keypoints: np.ndarray) -> str:
    """One ``name:keypoints_y:keypoints_x`` row with JSON lists, the format PISE json-decodes."""
    keypoints = np.asarray(keypoints, dtype=np.int64)
    return f"{name}:{json.dumps(keypoints[:, 0].tolist())}:{json.dumps(keypoints[:, 1].tolist())}"


def read_annotations(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Parse an annotation CSV back to (18, 2) (y, x) arrays, as PISE's loader would."""
    frame = pd.read_csv(path, sep=":")
    return {
        row["name"]: np.stack([json.loads(row["keypoints_y"]), json.loads(row["keypoints_x"])], axis=1)
        for _, row in frame.iterrows()
    }


def _save_png(array: np.ndarray, path: Path) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def stage_jobs(
    jobs: Sequence,
    dataroot: str | os.PathLike,
    keypoints_of: Callable[[np.ndarray], np.ndarray],
    label_map: str = "issue20",
) -> pd.DataFrame:
    """Write PISE's test inputs for ``jobs`` (precompute.CopyJob) under ``dataroot``; return jobs.csv.

    ``keypoints_of(image)`` gives (18, 2) (y, x) OpenPose keypoints in the image's own pixels.
    """
    dataroot = Path(dataroot)
    label_lookup(label_map)  # fail before any work on a bad name
    donor_names: dict[Path, str] = {}
    annotations, pairs, records = [], [], []
    source_cache: dict[Path, tuple] = {}
    for n, job in enumerate(tqdm(jobs, desc="stage PISE inputs", unit="copy")):
        if job.source not in source_cache:
            person = load_person(job.source, job.source_parsing)
            keypoints = scale_keypoints(keypoints_of(person.image), person.size)
            source_cache = {job.source: (to_pise_image(person.image), to_pise_parsing(person.parsing, label_map),
                                         keypoints, person.size)}
        image, parsing, keypoints, size = source_cache[job.source]
        name = f"j{n:06d}.png"
        _save_png(image, dataroot / IMAGE_DIR / name)
        _save_png(parsing, dataroot / PARSING_DIR / name)
        annotations.append(annotation_line(name, keypoints))
        if job.donor not in donor_names:
            donor = load_person(job.donor, job.donor_parsing)
            donor_name = donor_names[job.donor] = f"d{len(donor_names):06d}.png"
            _save_png(to_pise_image(donor.image), dataroot / IMAGE_DIR / donor_name)
            _save_png(to_pise_parsing(donor.parsing, label_map), dataroot / PARSING_DIR / donor_name)
            annotations.append(annotation_line(donor_name, scale_keypoints(keypoints_of(donor.image), donor.size)))
        pairs.append({"from": name, "to": name, "donor": donor_names[job.donor]})
        records.append({"name": name, "source": str(job.source), "copy": job.copy, "donor": str(job.donor),
                        "out_path": str(job.out_path), "height": size[0], "width": size[1]})
    with atomic_write(dataroot / ANNOTATION_FILE) as handle:
        handle.write("name:keypoints_y:keypoints_x\n" + "".join(line + "\n" for line in annotations))
    with atomic_write(dataroot / PAIRS_FILE, newline="") as handle:
        pd.DataFrame(pairs, columns=["from", "to", "donor"]).to_csv(handle, index=False)
    frame = pd.DataFrame(records, columns=["name", "source", "copy", "donor", "out_path", "height", "width"])
    with atomic_write(dataroot / JOBS_FILE, newline="") as handle:
        frame.to_csv(handle, index=False)
    return frame
