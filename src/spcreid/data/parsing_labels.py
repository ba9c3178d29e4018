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

# CIHP / LIP 20-class human parsing -> spcreid 8 classes.
# 0 bg, 1 hat, 2 hair, 3 glove, 4 sunglasses, 5 upper-clothes, 6 dress, 7 coat, 8 socks, 9 pants,
# 10 jumpsuit, 11 scarf, 12 skirt, 13 face, 14 left-arm, 15 right-arm, 16 left-leg, 17 right-leg,
# 18 left-shoe, 19 right-shoe.
LIP_TO_SPCREID = {
    0: BACKGROUND, 1: HAIR, 2: HAIR, 3: ARMS, 4: FACE, 5: UPPER_CLOTHES, 6: UPPER_CLOTHES,
    7: UPPER_CLOTHES, 8: SHOES, 9: LOWER_CLOTHES, 10: UPPER_CLOTHES, 11: UPPER_CLOTHES,
    12: LOWER_CLOTHES, 13: FACE, 14: ARMS, 15: ARMS, 16: LEGS, 17: LEGS, 18: SHOES, 19: SHOES,
}
