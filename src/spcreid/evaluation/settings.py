"""Matching rules of the evaluation settings: which gallery images count as positives and which as junk.

For a query, every gallery image of another identity is a negative. Images of the *same* identity are
split by the setting into positives (they must be retrieved) and junk (removed from the ranking, so
they neither help nor hurt):

========  =========================================  ==============================================
setting   positive (same pid and ...)                junk (same pid and ...)
========  =========================================  ==============================================
general   other camera                               same camera
cc        other camera, other clothes                same camera or same clothes
sc        other camera, same clothes                 same camera or other clothes
========  =========================================  ==============================================

Clothes ids number the outfits *within* a person, so they are only ever compared for the same pid.
"""

from __future__ import annotations

import numpy as np

from spcreid.errors import SpcreidError

SETTINGS = ("general", "cc", "sc")
CLOTHES_SETTINGS = ("cc", "sc")


def check_setting(setting: str) -> None:
    if setting not in SETTINGS:
        raise SpcreidError(f"unknown evaluation setting '{setting}'; choose one of {list(SETTINGS)}")


def match_masks(
    setting: str,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    q_clothes: np.ndarray | None = None,
    g_clothes: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(positive, same_pid)``, boolean (n_query, n_gallery) matrices.

    Junk is ``same_pid & ~positive``; callers only need the two masks above because everything that
    is not the same identity is a negative in every setting.
    """
    check_setting(setting)
    same_pid = q_pids[:, None] == g_pids[None, :]
    other_cam = q_camids[:, None] != g_camids[None, :]
    positive = same_pid & other_cam
    if setting in CLOTHES_SETTINGS:
        if q_clothes is None or g_clothes is None:
            raise SpcreidError(f"setting '{setting}' needs clothes ids for queries and gallery (q_clothes, g_clothes)")
        same_clothes = q_clothes[:, None] == g_clothes[None, :]
        positive &= ~same_clothes if setting == "cc" else same_clothes
    return positive, same_pid
