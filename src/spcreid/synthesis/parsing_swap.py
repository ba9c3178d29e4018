"""``parsing-swap``: a fast, deterministic clothing swap driven by the parsing map.

Only pixels labelled upper or lower clothes change. Inside each clothing region the new appearance
is built in YCbCr:

* the donor's clothing (its luminance and chroma, pattern included) is resampled from the donor
  region's bounding box onto the source region's bounding box, so stripes or prints keep their
  relative placement on the body;
* the source's shading (folds, light fall-off) is kept by multiplying the donor's luminance with
  the source's *smoothed* luminance relative to its regional mean. Smoothing first removes the
  source garment's own print, so the old pattern does not bleed through the new one.

Everything else (face, hair, skin, shoes, background) is copied byte for byte. The whole
computation is a handful of vectorised numpy/scipy calls per region.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from spcreid.data.parsing_labels import LOWER_CLOTHES, UPPER_CLOTHES
from spcreid.synthesis.base import Person, Synthesizer, register

# ITU-R BT.601 full-range (JPEG) RGB <-> YCbCr.
_RGB_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_YCC_TO_RGB = np.linalg.inv(_RGB_TO_YCC)
_CHROMA_OFFSET = np.array([0.0, 128.0, 128.0])

# Where the donor lacks a garment, borrow its other one (a dress-wearer has no lower clothes).
_FALLBACK_REGION = {UPPER_CLOTHES: LOWER_CLOTHES, LOWER_CLOTHES: UPPER_CLOTHES}


def rgb_to_ycc(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ _RGB_TO_YCC.T + _CHROMA_OFFSET


def ycc_to_rgb(ycc: np.ndarray) -> np.ndarray:
    rgb = (ycc - _CHROMA_OFFSET) @ _YCC_TO_RGB.T
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def masked_blur(values: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur over the two spatial axes that only averages pixels inside ``mask``.

    Normalised convolution: blur(values * mask) / blur(mask). ``values`` may carry trailing
    channel axes, which are blurred independently in one call.
    """
    weight = ndimage.gaussian_filter(mask.astype(np.float64), sigma, mode="nearest")
    extra = values.ndim - 2
    masked = np.where(mask.reshape(mask.shape + (1,) * extra), values, 0.0)
    blurred = ndimage.gaussian_filter(masked, (sigma, sigma) + (0,) * extra, mode="nearest")
    return blurred / np.maximum(weight, 1e-6).reshape(weight.shape + (1,) * extra)


def donor_texture(donor_ycc: np.ndarray, donor_mask: np.ndarray, target_shape: tuple[int, int]) -> np.ndarray:
    """The donor region's YCbCr, resampled from its bounding box to ``target_shape`` (h, w).

    Non-garment pixels inside the donor's box (an arm across the shirt) are filled with the garment's
    smoothed colour first, so bilinear sampling never pulls skin or background into the clothes.
    """
    y0, y1, x0, x1 = _bbox(donor_mask)
    box = donor_ycc[y0:y1, x0:x1]
    box_mask = donor_mask[y0:y1, x0:x1]
    sigma = max(1.0, 0.15 * min(box_mask.shape))
    box = np.where(box_mask[..., None], box, masked_blur(box, box_mask, sigma))
    th, tw = target_shape
    # Pixel-centre alignment: target pixel i maps to donor (i + 0.5) * scale - 0.5.
    rows = (np.arange(th) + 0.5) * (box.shape[0] / th) - 0.5
    cols = (np.arange(tw) + 0.5) * (box.shape[1] / tw) - 0.5
    grid = np.meshgrid(rows, cols, indexing="ij")
    return np.stack(
        [ndimage.map_coordinates(box[..., c], grid, order=1, mode="nearest") for c in range(3)], axis=-1
    )


class ParsingSwap(Synthesizer):
    """Parsing-guided clothing swap (see the module docstring).

    ``shading_strength`` scales how much of the source's shading survives (0 = flat donor colour,
    1 = full source shading); ``shading_sigma`` is the smoothing width as a fraction of the image
    height, which decides what counts as shading (kept) versus the old garment's print (dropped).
    """

    def __init__(self, shading_strength: float = 1.0, shading_sigma: float = 0.03):
        self.shading_strength = float(shading_strength)
        self.shading_sigma = float(shading_sigma)

    def synthesize(self, source: Person, donors: Sequence[Person]) -> list[np.ndarray]:
        # The source side (masks, boxes, shading) is the same for every donor: compute it once.
        regions = [(region, *self._source_shading(source, region))
                   for region in (UPPER_CLOTHES, LOWER_CLOTHES) if (source.parsing == region).any()]
        return [self._swap(source.image, regions, donor) for donor in donors]

    def _source_shading(self, source: Person, region: int) -> tuple[np.ndarray, tuple, np.ndarray]:
        """Mask, bounding box and multiplicative shading map (over the box) of one source garment."""
        target = source.parsing == region
        y0, y1, x0, x1 = _bbox(target)
        box_target = target[y0:y1, x0:x1]
        luma = rgb_to_ycc(source.image[y0:y1, x0:x1])[..., 0]
        sigma = max(0.75, self.shading_sigma * target.shape[0])
        smooth = masked_blur(luma, box_target, sigma)
        # Shading as a ratio to the regional mean: dark folds stay darker, lit areas lighter.
        shading = smooth / max(float(luma[box_target].mean()), 1.0)
        shading = 1.0 + self.shading_strength * (np.clip(shading, 0.3, 2.0) - 1.0)
        return target, (y0, y1, x0, x1), shading

    def _swap(self, image: np.ndarray, regions: list, donor: Person) -> np.ndarray:
        out = image.copy()
        donor_ycc = None
        for region, target, (y0, y1, x0, x1), shading in regions:
            donor_mask = self._donor_region(donor.parsing, region)
            if donor_mask is None:
                continue  # a donor without any garment leaves the source's clothes as they are
            if donor_ycc is None:
                donor_ycc = rgb_to_ycc(donor.image)
            box_target = target[y0:y1, x0:x1]
            new = donor_texture(donor_ycc, donor_mask, box_target.shape)
            new[..., 0] = np.clip(new[..., 0] * shading, 0.0, 255.0)
            # Row-major order of target inside its box equals its order in the full image.
            out[target] = ycc_to_rgb(new[box_target])
        return out

    @staticmethod
    def _donor_region(donor_parsing: np.ndarray, region: int) -> np.ndarray | None:
        for label in (region, _FALLBACK_REGION[region]):
            mask = donor_parsing == label
            if mask.any():
                return mask
        return None


register("parsing-swap")(ParsingSwap)
