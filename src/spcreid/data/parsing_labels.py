"""The 8-class human-parsing label set used throughout spcreid.

Parsing maps are single-channel PNGs of the image's size whose pixel values are these labels.
The clothing synthesiser replaces the appearance of ``CLOTHES_LABELS`` and must leave every other
label's pixels untouched. The PISE backend remaps these to PISE's own 8-class order
(``spcreid.synthesis.pise``). Other parsers' label sets are remapped by ``LABEL_SETS``: LIP (20 classes, SCHP's LIP
model, ``LIP_TO_SPCREID``), CIHP (20 classes; same names as LIP except label 10, torso skin where LIP has
jumpsuits) and ATR (18 classes). docs/PARSING.md cites the published lists and gives the reason for each entry.
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


# CIHP (Gong et al., ECCV 2018): LIP's list with label 10 torso skin, not jumpsuits. Torso skin is skin, which the
# synthesiser keeps; spcreid's only skin class of the upper body is arms (PISE's own 8 classes merge all skin).
CIHP_LABEL_NAMES = LIP_LABEL_NAMES[:10] + ("torso-skin",) + LIP_LABEL_NAMES[11:]
CIHP_TO_SPCREID = {**LIP_TO_SPCREID, 10: ARMS}

# ATR (Liang et al., TPAMI 2015), in SCHP's ATR model's order. A belt is worn with the trousers and changes with
# them; a bag is carried, not worn, and is kept like the background rather than repainted as a garment.
ATR_LABEL_NAMES = (
    "background",
    "hat",
    "hair",
    "sunglasses",
    "upper-clothes",
    "skirt",
    "pants",
    "dress",
    "belt",
    "left-shoe",
    "right-shoe",
    "face",
    "left-leg",
    "right-leg",
    "left-arm",
    "right-arm",
    "bag",
    "scarf",
)
ATR_TO_SPCREID = {
    0: BACKGROUND,
    1: HAIR,
    2: HAIR,
    3: FACE,
    4: UPPER_CLOTHES,
    5: LOWER_CLOTHES,
    6: LOWER_CLOTHES,
    7: UPPER_CLOTHES,
    8: LOWER_CLOTHES,
    9: SHOES,
    10: SHOES,
    11: FACE,
    12: LEGS,
    13: LEGS,
    14: ARMS,
    15: ARMS,
    16: BACKGROUND,
    17: UPPER_CLOTHES,
}

# Label set name -> (its class names in label order, label -> spcreid label).
LABEL_SETS = {
    "lip": (LIP_LABEL_NAMES, LIP_TO_SPCREID),
    "cihp": (CIHP_LABEL_NAMES, CIHP_TO_SPCREID),
    "atr": (ATR_LABEL_NAMES, ATR_TO_SPCREID),
}


def label_set_lookup(name: str):
    """uint8 array ``table[label] = spcreid_label`` of label set ``name`` (lip, cihp or atr)."""
    # lazy: the label tables import nothing heavy
    import numpy as np

    from spcreid.errors import SpcreidError

    if name not in LABEL_SETS:
        raise SpcreidError(f"label set '{name}' is unknown; use one of {', '.join(LABEL_SETS)}")
    names, table = LABEL_SETS[name]
    return np.array([table[label] for label in range(len(names))], dtype=np.uint8)


def lip_lookup():
    """uint8 array ``table[lip_label] = spcreid_label`` for remapping whole maps at once."""
    return label_set_lookup("lip")
