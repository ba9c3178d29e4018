"""``parsing-swap``: a fast, deterministic outfit change driven by the parsing maps.

A real change of clothes changes garment *shapes* (long trousers to a skirt, long sleeves to a
vest, trainers to boots), not only their colours, and leaves the person's head and skin alone. The
swap therefore redraws the source's garment and shoe regions from the donor's:

1. Align: the donor's parsing map and image are mapped onto the source's grid by one similarity
   transform (scale = source person height / donor person height, feet on the source's feet line,
   torsos centred), nearest-neighbour, so labels stay exact.
2. Cover: every source pixel where the aligned donor shows upper clothes, lower clothes or shoes
   takes the donor's pixel, unless the source shows face or hair there (the head is never
   covered). The donor's pattern and print come with it; its luminance is multiplied by the source's
   smoothed clothing shading (``shading_strength``), so the new garment sits in the source's light.
3. Uncover: source garment or shoe pixels the new outfit does not cover become bare skin where the
   aligned donor shows skin (shorts reveal legs, short sleeves arms), painted in the source's own
   skin colour; everywhere else they become background, filled from the source's surrounding
   background.

Face, hair and skin pixels of the source are copied byte for byte wherever the new garment does not
cover them; so is the background outside the old and new outfit. All steps are a few vectorised
numpy/scipy calls per copy; the source-side maps are computed once per source.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from spcreid.data.parsing_labels import ARMS, BACKGROUND, FACE, HAIR, LEGS, LOWER_CLOTHES, SHOES, UPPER_CLOTHES
from spcreid.synthesis.base import Person, Synthesizer, register

# ITU-R BT.601 full-range (JPEG) RGB <-> YCbCr.
_RGB_TO_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_YCC_TO_RGB = np.linalg.inv(_RGB_TO_YCC)
_CHROMA_OFFSET = np.array([0.0, 128.0, 128.0])

OUTFIT_LABELS = (UPPER_CLOTHES, LOWER_CLOTHES, SHOES)
SKIN_LABELS = (FACE, ARMS, LEGS)
HEAD_LABELS = (FACE, HAIR)


def _table(labels) -> np.ndarray:
    """Lookup table label -> membership: ``_table(L)[parsing]`` is a fast ``np.isin(parsing, L)``."""
    table = np.zeros(256, bool)
    table[list(labels)] = True
    return table


_IS_OUTFIT, _IS_SKIN, _IS_HEAD = _table(OUTFIT_LABELS), _table(SKIN_LABELS), _table(HEAD_LABELS)
_IS_LIMB, _IS_CLOTHES = _table((ARMS, LEGS)), _table((UPPER_CLOTHES, LOWER_CLOTHES))


def rgb_to_ycc(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ _RGB_TO_YCC.T.astype(np.float32) + _CHROMA_OFFSET.astype(np.float32)


def ycc_to_rgb(ycc: np.ndarray) -> np.ndarray:
    rgb = (ycc - _CHROMA_OFFSET.astype(np.float32)) @ _YCC_TO_RGB.T.astype(np.float32)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def masked_blur(values: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Box blur (width ~ 2.5 sigma, cost independent of it) that only averages pixels inside ``mask``.

    Normalised convolution: blur(values * mask) / blur(mask), over a 2-D map.
    """
    size = max(3, int(round(2.5 * sigma)) | 1)
    weight = ndimage.uniform_filter(mask.astype(np.float32), size, mode="nearest")
    blurred = ndimage.uniform_filter(np.where(mask, values, 0.0).astype(np.float32), size, mode="nearest")
    return blurred / np.maximum(weight, 1e-6)


def row_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per row, the mean colour of the ``mask`` pixels (rows without any: the nearest row that has some).

    Pedestrian backdrops are banded (wall above, floor below the horizon), so a row's own background
    is the right colour for a pixel that an outfit no longer covers.
    """
    counts = mask.sum(axis=1)
    sums = np.einsum("hw,hwc->hc", mask.astype(np.float32), image.astype(np.float32))
    have = np.flatnonzero(counts)
    nearest = have[np.clip(np.searchsorted(have, np.arange(len(counts))), 0, len(have) - 1)]
    means = sums[nearest] / counts[nearest, None]
    return np.broadcast_to(means[:, None, :], image.shape)


def person_frame(parsing: np.ndarray) -> tuple[float, float, float] | None:
    """(top row, feet row, torso centre column) of the person in a parsing map; None without a person."""
    body = parsing != BACKGROUND
    rows = np.flatnonzero(body.any(axis=1))
    if rows.size == 0:
        return None
    torso = np.isin(parsing, (UPPER_CLOTHES, LOWER_CLOTHES))
    cols = np.flatnonzero(torso.any(axis=0)) if torso.any() else np.flatnonzero(body.any(axis=0))
    return float(rows[0]), float(rows[-1] + 1), float(0.5 * (cols[0] + cols[-1] + 1))


def align_indices(source_frame, donor_frame, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each source pixel, the donor pixel it maps to (rows, cols) and whether that lies in the image."""
    s_top, s_feet, s_cx = source_frame
    d_top, d_feet, d_cx = donor_frame
    scale = (d_feet - d_top) / max(s_feet - s_top, 1.0)  # donor pixels per source pixel
    height, width = shape
    rows = np.floor(d_feet + (np.arange(height) + 0.5 - s_feet) * scale).astype(np.int64)
    cols = np.floor(d_cx + (np.arange(width) + 0.5 - s_cx) * scale).astype(np.int64)
    inside = (rows >= 0)[:, None] & (rows < height)[:, None] & (cols >= 0)[None, :] & (cols < width)[None, :]
    return np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1), inside


class _Source:
    """What every copy of one source needs, computed once."""

    def __init__(self, person: Person, shading_strength: float, shading_sigma: float):
        self.image = person.image
        self.parsing = person.parsing
        self.frame = person_frame(person.parsing)
        self.outfit = _IS_OUTFIT[person.parsing]
        self.head = _IS_HEAD[person.parsing]
        height = person.parsing.shape[0]
        image = person.image
        skin = _IS_SKIN[person.parsing]
        # Bare skin that appears is painted in the person's own tone (face when no limb is visible).
        limbs = _IS_LIMB[person.parsing]
        self.skin = None
        if skin.any():
            self.skin = np.rint(np.median(image[limbs if limbs.any() else skin], axis=0)).astype(np.uint8)
        background = person.parsing == BACKGROUND
        fill = (
            row_fill(image, background) if background.any() else np.broadcast_to(image.mean(axis=(0, 1)), image.shape)
        )
        self.background = np.clip(np.rint(fill), 0, 255).astype(np.uint8)
        # Shading of the old clothes, smoothed so that their print does not survive, as a luminance ratio.
        clothes = _IS_CLOTHES[person.parsing]
        self.shading = None
        if clothes.any() and shading_strength > 0:
            luma = rgb_to_ycc(person.image)[..., 0]
            smooth = masked_blur(luma, clothes, max(0.75, shading_sigma * height))
            ratio = np.clip(smooth / max(float(luma[clothes].mean()), 1.0), 0.3, 2.0)
            self.shading = 1.0 + shading_strength * (ratio - 1.0)


class ParsingSwap(Synthesizer):
    """Parsing-guided outfit change (see the module docstring).

    ``shading_strength`` scales how much of the source's clothing shading the new garment takes
    (0 = the donor's pixels as they are, 1 = full source shading); ``shading_sigma`` is the smoothing
    width as a fraction of the image height, which decides what counts as shading (kept) versus the
    old garment's print (dropped).
    """

    def __init__(self, shading_strength: float = 1.0, shading_sigma: float = 0.03):
        self.shading_strength = float(shading_strength)
        self.shading_sigma = float(shading_sigma)

    def synthesize(self, source: Person, donors: Sequence[Person]) -> list[np.ndarray]:
        prepared = _Source(source, self.shading_strength, self.shading_sigma)
        return [self.swap(prepared, donor)[0] for donor in donors]

    def swap_with_parsing(self, source: Person, donor: Person) -> tuple[np.ndarray, np.ndarray]:
        """One copy and its parsing map (for previews and tests)."""
        return self.swap(_Source(source, self.shading_strength, self.shading_sigma), donor)

    def swap(self, source: _Source, donor: Person) -> tuple[np.ndarray, np.ndarray]:
        out = source.image.copy()
        labels = source.parsing.copy()
        donor_frame = person_frame(donor.parsing)
        if source.frame is None or donor_frame is None:
            return out, labels  # nobody to dress, or no outfit to take
        rows, cols, inside = align_indices(source.frame, donor_frame, labels.shape)
        # One flat gather index serves both the donor's labels and its pixels.
        flat = (rows[:, None] * labels.shape[1] + cols[None, :]).ravel()
        donor_labels = donor.parsing.ravel()[flat].reshape(labels.shape)
        donor_labels[~inside] = BACKGROUND
        cover = _IS_OUTFIT[donor_labels] & ~source.head
        if not cover.any():
            return out, labels
        # New garments: the donor's pixels, relit with the source's clothing shading.
        new = donor.image.reshape(-1, 3)[flat[cover.ravel()]]
        if source.shading is not None:
            ycc = rgb_to_ycc(new)
            ycc[:, 0] = np.clip(ycc[:, 0] * source.shading[cover], 0.0, 255.0)
            new = ycc_to_rgb(ycc)
        out[cover] = new
        labels[cover] = donor_labels[cover]
        # Old garments the new outfit leaves uncovered: skin where the donor's limbs are, else background.
        uncovered = source.outfit & ~cover
        if uncovered.any():
            bare = uncovered & _IS_LIMB[donor_labels] if source.skin is not None else np.zeros_like(uncovered)
            out[bare] = source.skin
            labels[bare] = donor_labels[bare]
            empty = uncovered & ~bare
            out[empty] = source.background[empty]
            labels[empty] = BACKGROUND
        return out, labels


register("parsing-swap")(ParsingSwap)
