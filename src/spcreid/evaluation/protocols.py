"""Dataset evaluation protocols: which queries meet which gallery, under which matching rule.

* PRCC: gallery = the gallery role (camera A, camid 0). Same-clothes queries come from camera B
  (camid 1), clothing-change queries from camera C (camid 2). PRCC has no clothes labels: the camera
  split *is* the clothes split, so both are scored with the general rule. Every evaluation scores
  all three gallery modes (multi-shot; single-shot, 10 trials, mean and std; single-shot CMC with
  full-gallery mAP) from one feature extraction. The headline mode (the flat keys tables read) is
  ``multi``: the paper's PRCC cells all have R1 > mAP, which pure single-shot cannot give (see
  docs/EVALUATION.md).
* VC-Clothes: general = every query against every gallery image; same-clothes = cameras 2 and 3
  only (query and gallery); clothing-change = cameras 3 and 4 only; multi-shot. Clothes ids come
  from the file names, so the sc / cc rules also apply, guarding against any outfit mislabelled by
  camera.
* LTCC: general and clothing-change over all cameras; multi-shot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spcreid.errors import SpcreidError
from spcreid.evaluation.gallery import check_gallery_mode
from spcreid.evaluation.metrics import as_numpy, distance, score_modes

REQUIRED_COLUMNS = ("pid", "camid", "clothes_id", "role")


@dataclass(frozen=True)
class SettingSpec:
    """One reported setting: a query/gallery camera filter and the matching rule applied to it."""

    rule: str
    query_cameras: tuple[int, ...] | None = None  # None: every camera
    gallery_cameras: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Protocol:
    default_gallery_mode: str  # the headline mode: its metrics are the flat ``{setting: {...}}`` keys
    settings: dict[str, SettingSpec]
    gallery_modes: tuple[str, ...] = ("multi",)  # every mode one evaluation scores and reports
    # The cameras each role may hold: a manifest of another dataset's layout fails here instead of being scored
    # (camera filters alone let a VC-Clothes manifest through --protocol prcc, exit 0, wrong numbers).
    role_cameras: dict[str, tuple[int, ...]] | None = None


PROTOCOLS = {
    "prcc": Protocol(
        default_gallery_mode="multi",
        gallery_modes=("multi", "single", "single-cmc"),
        role_cameras={"query": (1, 2), "gallery": (0,)},
        settings={
            "sc": SettingSpec(rule="general", query_cameras=(1,)),
            "cc": SettingSpec(rule="general", query_cameras=(2,)),
        },
    ),
    "vcclothes": Protocol(
        default_gallery_mode="multi",
        role_cameras={"query": (1, 2, 3, 4), "gallery": (1, 2, 3, 4)},
        settings={
            "general": SettingSpec(rule="general"),
            "sc": SettingSpec(rule="sc", query_cameras=(2, 3), gallery_cameras=(2, 3)),
            "cc": SettingSpec(rule="cc", query_cameras=(3, 4), gallery_cameras=(3, 4)),
        },
    ),
    "ltcc": Protocol(
        default_gallery_mode="multi",
        settings={"general": SettingSpec(rule="general"), "cc": SettingSpec(rule="cc")},
    ),
}


def evaluate_protocol(
    protocol: str,
    features: Any,
    test_rows: Any,
    gallery_mode: str | None = None,
    seed: int = 0,
    trials: int = 10,
    progress: bool = True,
) -> dict[str, dict]:
    """Score L2-normalised features (rows aligned with the manifest rows ``test_rows``) in one mode.

    Returns ``{setting: metrics}``; each metrics dict also names the protocol, the matching rule and
    the camera filters, so a results file says exactly how it was computed.
    """
    scored = _score(protocol, features, test_rows, gallery_mode, seed, trials, progress, every_mode=False)
    return {name: by_mode[mode] for name, (mode, by_mode, _, _) in scored.items()}


def evaluate_report(
    protocol: str,
    features: Any,
    test_rows: Any,
    gallery_mode: str | None = None,
    seed: int = 0,
    trials: int = 10,
    progress: bool = True,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every gallery mode of the protocol from one set of features: the metrics file and per-query arrays.

    The report keeps ``{setting: metrics}`` of the headline mode (``gallery_mode``, default the
    protocol's) as its flat keys and adds ``headline_gallery_mode``, ``gallery_modes`` and
    ``settings: {setting: {mode: metrics}}``. The arrays are named ``<setting>/<mode>/first_rank``,
    ``<setting>/<mode>/ap`` (see ``score_modes``), ``<setting>/query_row`` (index into ``test_rows``)
    and ``<setting>/query_path``, so queries can be paired across models.
    """
    scored = _score(protocol, features, test_rows, gallery_mode, seed, trials, progress, every_mode=True)
    report: dict[str, Any] = {}
    settings: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    headline = None
    for name, (mode, by_mode, per_query, query_rows) in scored.items():
        headline = mode
        report[name] = by_mode[mode]
        settings[name] = by_mode
        arrays[f"{name}/query_row"] = query_rows
        if "path" in test_rows.columns:
            arrays[f"{name}/query_path"] = test_rows["path"].to_numpy()[query_rows].astype(str)
        for mode_name, values in per_query.items():
            for key, array in values.items():
                arrays[f"{name}/{mode_name}/{key}"] = array
    report.update(headline_gallery_mode=headline, gallery_modes=list(next(iter(settings.values()))), settings=settings)
    return report, arrays


def _score(
    protocol: str,
    features: Any,
    test_rows: Any,
    gallery_mode: str | None,
    seed: int,
    trials: int,
    progress: bool,
    every_mode: bool,
) -> dict[str, tuple[str, dict, dict, np.ndarray]]:
    """``{setting: (headline mode, {mode: metrics}, {mode: per-query arrays}, query rows)}``; one distance matrix."""
    if protocol not in PROTOCOLS:
        raise SpcreidError(f"unknown evaluation protocol '{protocol}'; choose one of {sorted(PROTOCOLS)}")
    spec = PROTOCOLS[protocol]
    mode = spec.default_gallery_mode if gallery_mode is None else gallery_mode
    check_gallery_mode(mode)
    modes = list(dict.fromkeys((*spec.gallery_modes, mode))) if every_mode else [mode]

    missing = [c for c in REQUIRED_COLUMNS if c not in getattr(test_rows, "columns", ())]
    if missing:
        raise SpcreidError(f"test manifest rows lack column(s) {missing}; pass rows read with read_manifest")
    features = as_numpy(features)
    if features.ndim != 2 or features.shape[0] != len(test_rows):
        raise SpcreidError(
            f"features have shape {features.shape} but there are {len(test_rows)} test manifest rows; "
            "extract one feature per row, in manifest order"
        )
    role = test_rows["role"].to_numpy()
    pids, camids, clothes = (test_rows[c].to_numpy() for c in ("pid", "camid", "clothes_id"))
    query, gallery = np.flatnonzero(role == "query"), np.flatnonzero(role == "gallery")
    if query.size == 0 or gallery.size == 0:
        raise SpcreidError(
            f"protocol '{protocol}' needs test rows with role 'query' and role 'gallery'; "
            f"found {query.size} query and {gallery.size} gallery rows"
        )

    cameras = {"query": set(camids[query].tolist()), "gallery": set(camids[gallery].tolist())}
    for side, found in cameras.items():
        allowed = (spec.role_cameras or {}).get(side)
        if allowed is not None and not found <= set(allowed):
            fitting = [name for name in PROTOCOLS if _cameras_fit(PROTOCOLS[name], cameras)]
            raise SpcreidError(
                f"protocol '{protocol}' expects {side} images on camera(s) {list(allowed)}, but the manifest's are on "
                f"{sorted(found)}: it is another dataset's layout; pass that dataset's protocol "
                f"(--protocol {' or '.join(fitting)})"
            )
    all_distances = distance(features[query], features[gallery], metric="cosine")
    results = {}
    for name, setting in spec.settings.items():
        q_keep = _on_cameras(camids[query], setting.query_cameras, protocol, name, "query")
        g_keep = _on_cameras(camids[gallery], setting.gallery_cameras, protocol, name, "gallery")
        q, g = query[q_keep], gallery[g_keep]
        by_mode, per_query = score_modes(
            all_distances[np.ix_(q_keep, g_keep)],
            pids[q], pids[g], camids[q], camids[g], clothes[q], clothes[g],
            setting=setting.rule, modes=modes, trials=trials, seed=seed, progress=progress,
        )  # fmt: skip
        for metrics in by_mode.values():
            metrics.update(
                setting=name,
                rule=setting.rule,
                protocol=protocol,
                query_cameras=None if setting.query_cameras is None else list(setting.query_cameras),
                gallery_cameras=None if setting.gallery_cameras is None else list(setting.gallery_cameras),
            )
        results[name] = (mode, by_mode, per_query, q)
    return results


def _cameras_fit(spec: Protocol, cameras: dict[str, set[int]]) -> bool:
    return all(
        side not in (spec.role_cameras or {}) or found <= set(spec.role_cameras[side])
        for side, found in cameras.items()
    )


def _on_cameras(
    camids: np.ndarray, cameras: tuple[int, ...] | None, protocol: str, setting: str, side: str
) -> np.ndarray:
    """Indices (into ``camids``) of the images on ``cameras``; all of them when ``cameras`` is None."""
    if cameras is None:
        return np.arange(camids.size)
    keep = np.flatnonzero(np.isin(camids, cameras))
    if keep.size == 0:
        raise SpcreidError(
            f"protocol '{protocol}', setting '{setting}': no {side} image on camera(s) {list(cameras)}; "
            f"the {side} cameras present are {sorted(set(camids.tolist()))}"
        )
    return keep
