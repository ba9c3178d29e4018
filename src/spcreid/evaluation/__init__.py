"""Re-identification evaluation: CMC / mAP, the general / same-clothes / clothing-change settings,
multi- and single-shot gallery modes, and the PRCC / VC-Clothes / LTCC dataset protocols.

See docs/EVALUATION.md for the definitions and the choices made where papers differ.
"""

from spcreid.evaluation.gallery import GALLERY_MODES, single_shot_gallery
from spcreid.evaluation.metrics import distance, evaluate, score_modes
from spcreid.evaluation.protocols import PROTOCOLS, evaluate_protocol, evaluate_report
from spcreid.evaluation.settings import SETTINGS

__all__ = [
    "GALLERY_MODES",
    "PROTOCOLS",
    "SETTINGS",
    "distance",
    "evaluate",
    "evaluate_protocol",
    "evaluate_report",
    "score_modes",
    "single_shot_gallery",
]
