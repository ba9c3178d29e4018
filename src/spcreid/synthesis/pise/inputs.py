"""PISE's input layout, built from ReID crops, and the exact inverse for its outputs.

PISE was trained on DeepFashion at 256x176 (height x width) padded with 40 white columns on each
side to 256x256; its loader adds 40 to every keypoint x read from the annotation CSV, so the CSV
holds coordinates in the unpadded 256x176 frame while images and parsing maps are stored padded.

The adapter (:mod:`.runner`) gets these as tensors from :func:`person_tensors`, in the form PISE's own
FashionDataset hands its generator: the image in [-1, 1] (ToTensor + Normalize(0.5, 0.5)), the parsing
one-hot over PISE's 8 classes, and 18 Gaussian pose heatmaps (sigma 6) placed at x + 40 on the canvas.

How a ReID crop enters the 256x176 frame (``fit``, docs/SYNTHESIS.md): ``pad`` (default) resizes it with its
aspect kept to the frame's height and centres it between white columns, the colour of PISE's own padding;
``stretch`` resizes it to 256x176, widening a 2:1 crop 1.375x. PISE learned DeepFashion bodies at their own
proportions, so ``pad`` shows it bodies shaped like those it was trained on; the copy is cut back out of the
same box, so either way it returns at the crop's size.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from spcreid.data.parsing_labels import (
    ARMS,
    BACKGROUND,
    FACE,
    HAIR,
    LEGS,
    LOWER_CLOTHES,
    SHOES,
    UPPER_CLOTHES,
)
from spcreid.errors import SpcreidError

PISE_HEIGHT, PISE_WIDTH = 256, 176
FITS = ("pad", "stretch")
DEFAULT_FIT = "pad"
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


def label_lookup(label_map: str) -> np.ndarray:
    if label_map not in PISE_LABEL_MAPS:
        raise SpcreidError(f"--pise-label-map '{label_map}' is unknown; choose one of {sorted(PISE_LABEL_MAPS)}")
    table = PISE_LABEL_MAPS[label_map]
    return np.array([table[label] for label in range(len(table))], dtype=np.uint8)


def check_fit(fit: str) -> str:
    if fit not in FITS:
        raise SpcreidError(f"--pise-fit '{fit}' is unknown; choose one of {', '.join(FITS)}")
    return fit


def fit_box(size: tuple[int, int], fit: str = DEFAULT_FIT) -> tuple[int, int, int, int]:
    """Where an h x w crop lies in the unpadded 256x176 frame: (top, left, height, width)."""
    h, w = size
    if check_fit(fit) == "stretch":
        return 0, 0, PISE_HEIGHT, PISE_WIDTH
    scale = min(PISE_HEIGHT / h, PISE_WIDTH / w)
    new_h = min(PISE_HEIGHT, max(1, round(h * scale)))
    new_w = min(PISE_WIDTH, max(1, round(w * scale)))
    return (PISE_HEIGHT - new_h) // 2, (PISE_WIDTH - new_w) // 2, new_h, new_w


def _place(resized: np.ndarray, box: tuple[int, int, int, int], fill: int) -> np.ndarray:
    top, left, h, w = box
    frame = np.full((PISE_HEIGHT, PISE_WIDTH) + resized.shape[2:], fill, dtype=resized.dtype)
    frame[top : top + h, left : left + w] = resized
    pad = ((0, 0), (PAD, PAD)) + ((0, 0),) * (resized.ndim - 2)
    return np.pad(frame, pad, constant_values=fill)


def to_pise_image(image: np.ndarray, fit: str = DEFAULT_FIT) -> np.ndarray:
    """H x W x 3 crop -> 256 x 256 x 3: into the 256x176 frame by ``fit``, white around it and 40 columns each side."""
    box = fit_box(image.shape[:2], fit)
    resized = np.asarray(Image.fromarray(image).resize((box[3], box[2]), Image.BILINEAR))
    return _place(resized, box, 255)


def to_pise_parsing(parsing: np.ndarray, label_map: str = "issue20", fit: str = DEFAULT_FIT) -> np.ndarray:
    """spcreid parsing -> PISE-order parsing, resized (nearest) into the frame by ``fit``, background around it."""
    remapped = label_lookup(label_map)[parsing]
    box = fit_box(parsing.shape, fit)
    resized = np.asarray(Image.fromarray(remapped).resize((box[3], box[2]), Image.NEAREST))
    return _place(resized, box, 0)


def from_pise_image(canvas: np.ndarray, size: tuple[int, int], fit: str = DEFAULT_FIT) -> np.ndarray:
    """Inverse of :func:`to_pise_image`: cut the crop's box out, resize back to ``size`` (h, w)."""
    if canvas.shape[:2] != (PISE_HEIGHT, CANVAS):
        raise SpcreidError(f"PISE output must be {PISE_HEIGHT}x{CANVAS}, got {canvas.shape[1]}x{canvas.shape[0]}")
    top, left, box_h, box_w = fit_box(size, fit)
    crop = np.ascontiguousarray(canvas[top : top + box_h, PAD + left : PAD + left + box_w, :3])
    h, w = size
    if (h, w) == crop.shape[:2]:
        return crop
    return np.asarray(Image.fromarray(crop).resize((w, h), Image.BILINEAR))


def scale_keypoints(keypoints: np.ndarray, size: tuple[int, int], fit: str = DEFAULT_FIT) -> np.ndarray:
    """(18, 2) (y, x) keypoints of an H x W crop, in floating point -> int in the unpadded 256x176 frame.

    This is the only rounding between the detector's sub-pixel output and PISE's integer annotation
    coordinates; -1 (missing) stays -1.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    h, w = size
    top, left, box_h, box_w = fit_box(size, fit)
    factor = np.array([box_h / h, box_w / w])
    # Pixel centres map onto pixel centres under resizing: (p + 0.5) * f - 0.5.
    scaled = np.rint((keypoints + 0.5) * factor - 0.5 + np.array([top, left])).astype(np.int64)
    missing = (keypoints == MISSING).any(axis=1)
    scaled[missing] = MISSING
    return np.clip(scaled, MISSING, [PISE_HEIGHT - 1, PISE_WIDTH - 1])


def pose_heatmaps(keypoints: np.ndarray, sigma: float = HEATMAP_SIGMA) -> np.ndarray:
    """(256, 256, 18) Gaussian maps of 256x176-frame keypoints placed on the padded canvas (x + 40).

    Identical to what PISE's loader builds from its annotation CSV (checked on its FashionDataset).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    yy = np.arange(PISE_HEIGHT, dtype=np.float64)[:, None, None]
    xx = np.arange(CANVAS, dtype=np.float64)[None, :, None]
    ky, kx = keypoints[:, 0], keypoints[:, 1] + PAD
    maps = np.exp(-((yy - ky) ** 2 + (xx - kx) ** 2) / (2.0 * sigma**2))
    maps[..., (keypoints == MISSING).any(axis=1)] = 0.0
    return maps.astype(np.float32)


def person_tensors(
    image: np.ndarray,
    parsing: np.ndarray,
    keypoints: np.ndarray | None,
    label_map: str = "issue20",
    fit: str = DEFAULT_FIT,
):
    """One ReID crop -> PISE's generator inputs: image (3,256,256) in [-1,1], parsing one-hot (8,256,256),
    and, when ``keypoints`` ((18, 2) (y, x) in the crop's pixels) are given, heatmaps (18,256,256)."""
    import torch

    canvas = torch.from_numpy(to_pise_image(image, fit)).permute(2, 0, 1).float().div(255.0).mul(2.0).sub(1.0)
    labels = torch.from_numpy(to_pise_parsing(parsing, label_map, fit).astype(np.int64))
    one_hot = torch.nn.functional.one_hot(labels, len(PISE_LABEL_MAPS[label_map])).permute(2, 0, 1).float()
    if keypoints is None:
        return canvas, one_hot, None
    pose = torch.from_numpy(pose_heatmaps(scale_keypoints(keypoints, parsing.shape, fit))).permute(2, 0, 1)
    return canvas, one_hot, pose


def clothes_labels(label_map: str = "issue20") -> tuple[int, int]:
    """PISE's labels of spcreid's upper and lower clothes under ``label_map``: the codes a donor gives."""
    table = label_lookup(label_map)
    return int(table[UPPER_CLOTHES]), int(table[LOWER_CLOTHES])
