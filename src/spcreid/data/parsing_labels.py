"""The 8-class human-parsing label set used throughout spcreid.

Parsing maps are single-channel PNGs of the image's size whose pixel values are these labels.
The clothing synthesiser replaces the appearance of ``CLOTHES_LABELS`` and must leave every other
label's pixels untouched. The PISE backend remaps these to PISE's own 8-class order
(``spcreid.synthesis.pise``); real datasets' 20-class CIHP/LIP parsings are remapped with
``LIP_TO_SPCREID``.
"""

BACKGROUND, HAIR, FACE, UPPER_CLOTHES, LOWER_CLOTHES, ARMS, LEGS, SHOES = range(8)

LABEL_NAMES = {
    BACKGROUND: "background",
    HAIR: "hair",
    FACE: "face",
    UPPER_CLOTHES: "upper_clothes",
    LOWER_CLOTHES: "lower_clothes",
    ARMS: "arms",
    LEGS: "legs",
    SHOES: "shoes",
}
NUM_LABELS = len(LABEL_NAMES)
CLOTHES_LABELS = (UPPER_CLOTHES, LOWER_CLOTHES)

# CIHP / LIP 20-class human parsing (SCHP's LIP model, in this order) -> spcreid 8 classes.
LIP_LABEL_NAMES = (
    "background",
    "hat",
    "hair",
    "glove",
    "sunglasses",
    "upper-clothes",
    "dress",
    "coat",
    "socks",
    "pants",
    "jumpsuits",
    "scarf",
    "skirt",
    "face",
    "left-arm",
    "right-arm",
    "left-leg",
    "right-leg",
    "left-shoe",
    "right-shoe",
)
# Why each non-obvious entry (docs/PARSING.md): hat joins hair and sunglasses join face because both sit on
# the head, which the synthesiser keeps; dress, coat, jumpsuit and scarf are worn on the torso and change
# with the outfit; a skirt is lower clothing; gloves cover the hands (arms); socks are footwear.
LIP_TO_SPCREID = {
    0: BACKGROUND,
    1: HAIR,
    2: HAIR,
    3: ARMS,
    4: FACE,
    5: UPPER_CLOTHES,
    6: UPPER_CLOTHES,
    7: UPPER_CLOTHES,
    8: SHOES,
    9: LOWER_CLOTHES,
    10: UPPER_CLOTHES,
    11: UPPER_CLOTHES,
    12: LOWER_CLOTHES,
    13: FACE,
    14: ARMS,
    15: ARMS,
    16: LEGS,
    17: LEGS,
    18: SHOES,
    19: SHOES,
}


def lip_lookup():
    """uint8 array ``table[lip_label] = spcreid_label`` for remapping whole maps at once."""
    import numpy as np

    return np.array([LIP_TO_SPCREID[label] for label in range(len(LIP_LABEL_NAMES))], dtype=np.uint8)
