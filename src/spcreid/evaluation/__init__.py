"""Re-identification evaluation: CMC / mAP, the general / same-clothes / clothing-change settings,
multi- and single-shot gallery modes, and the PRCC / VC-Clothes / LTCC dataset protocols.

See docs/EVALUATION.md for the definitions and the choices made where papers differ. The names below are
imported on first use (PEP 562), so that ``spcreid --help`` does not import torch through this package.
"""

from __future__ import annotations

from spcreid._lazy import lazy_getattr

_EXPORTS = {
    "GALLERY_MODES": "spcreid.evaluation.gallery",
    "single_shot_gallery": "spcreid.evaluation.gallery",
    "distance": "spcreid.evaluation.metrics",
    "evaluate": "spcreid.evaluation.metrics",
    "score_modes": "spcreid.evaluation.metrics",
    "PROTOCOLS": "spcreid.evaluation.protocols",
    "evaluate_protocol": "spcreid.evaluation.protocols",
    "evaluate_report": "spcreid.evaluation.protocols",
    "SETTINGS": "spcreid.evaluation.settings",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(globals(), _EXPORTS)
