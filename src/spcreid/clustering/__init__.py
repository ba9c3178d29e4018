"""Pseudo labels that scale: sparse k-reciprocal Jaccard distance + DBSCAN (docs/PSEUDO_LABELS.md).

The names below are imported on first use (PEP 562), so that importing a submodule such as
``spcreid.clustering.commands`` (which ``spcreid --help`` does) does not pay for torch and scikit-learn.
"""

from __future__ import annotations

import sys
import types

from spcreid._lazy import lazy_getattr

_EXPORTS = {
    "PseudoLabels": "spcreid.clustering.pseudo_labels",
    "cluster_distances": "spcreid.clustering.pseudo_labels",
    "pseudo_labels": "spcreid.clustering.pseudo_labels",
    "pseudo_labels_with_stats": "spcreid.clustering.pseudo_labels",
    "jaccard_distance": "spcreid.clustering.kreciprocal",
}
__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(globals(), _EXPORTS)


class _Package(types.ModuleType):
    # The function pseudo_labels shares its name with its submodule; the import system binds a submodule as
    # an attribute of its package when it is first loaded, which would hide the function whenever the
    # submodule is imported directly before anyone asked for the function.
    def __setattr__(self, name: str, value) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
