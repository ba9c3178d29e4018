"""The metrics JSON of one run: which run it is, and its results per setting and gallery mode.

Written by ``spcreid evaluate``. Top level: the run's identity (``profile``, ``dataset``, ``experiment``,
``seed``, ``config_hash``; :func:`run_identity`), the headline gallery mode's metrics as flat
``{setting: {...}}`` keys, and, from evaluations that score every gallery mode at once,
``settings: {setting: {mode: {...}}}`` with ``headline_gallery_mode``, ``gallery_modes`` and ``per_query``
(the per-query file, relative to the JSON's folder; :mod:`spcreid.evaluation.per_query`). The flat
keys win over ``settings`` for their mode (``gallery_mode``, else ``headline_gallery_mode``, else multi).

Values are fractions in [0, 1]. ``config_hash`` is the SHA-256 of the run's resolved configuration
(config.json without ``inputs``, whose absolute paths differ between machines), as canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spcreid.errors import SpcreidError

IDENTITY_KEYS = ("profile", "dataset", "experiment", "seed", "config_hash")
# Top-level keys that are not a setting's metrics.
REPORT_KEYS = (*IDENTITY_KEYS, "settings", "headline_gallery_mode", "gallery_modes", "per_query", "source")
GALLERY_MODE_ORDER = ("multi", "single", "single-cmc")
TABLE_MODES = ("multi", "single")


def config_hash(config: dict[str, Any]) -> str:
    resolved = {key: value for key, value in config.items() if key != "inputs"}
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def run_identity(config: dict[str, Any]) -> dict[str, Any]:
    """The identity fields of a run config (``run_config`` / config.json), as the metrics file records them."""
    return {
        "profile": config["profile"],
        "dataset": config["dataset"],
        "experiment": config["experiment"],
        "seed": int(config["seed"]),
        "config_hash": config_hash(config),
    }


@dataclass(frozen=True)
class MetricsFile:
    path: Path
    identity: dict[str, Any]
    results: dict[str, dict[str, dict[str, Any]]]  # setting -> gallery mode -> metrics
    per_query: str | None = None  # the per-query file it names, relative to its folder

    def modes(self, setting: str) -> list[str]:
        """The gallery modes the tables show, headline (multi) first. ``single-cmc`` is left out: its CMC is
        the single-shot one and its mAP the multi-shot one, so it adds no number of its own."""
        present = self.results.get(setting, {})
        return [mode for mode in GALLERY_MODE_ORDER if mode in present and mode in TABLE_MODES]

    def value(self, setting: str, mode: str, key: str) -> float:
        """A finite metric; anything else is an error naming the file."""
        if setting not in self.results:
            raise SpcreidError(
                f"{self.path} has no setting '{setting}' (it has {sorted(self.results)}); the table cell asks "
                "for a setting that this dataset's protocol does not produce: change the cell's setting in "
                "params.yaml or rerun the run's evaluation"
            )
        if mode not in self.results[setting]:
            raise SpcreidError(f"{self.path}: setting '{setting}' has no gallery mode '{mode}'; rerun its evaluation")
        metrics = self.results[setting][mode]
        if key not in metrics:
            raise SpcreidError(f"{self.path}: setting '{setting}' ({mode}) has no '{key}'; rerun its evaluation")
        value = metrics[key]
        # NaN (json.load accepts it), null, a string or a percentage would become a blank or wrong cell.
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not 0.0 <= value <= 1.0
        ):
            raise NonFiniteMetric(
                f"{self.path}: setting '{setting}' ({mode}) has {key} = {value!r}, not a fraction in [0, 1]; rerun "
                "its evaluation (the model may have diverged), or pass --allow-missing to leave the cell empty"
            )
        return float(value)


class NonFiniteMetric(SpcreidError):
    """A metric that is NaN, infinite, not a number or not a fraction: the file exists but is unusable."""


def read_metrics_file(path: str | os.PathLike) -> MetricsFile:
    path = Path(path)
    try:
        with open(path) as handle:
            data = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpcreidError(f"{path} is not valid JSON ({exc}); delete it and rerun its evaluation") from exc
    except RecursionError as exc:
        raise SpcreidError(
            f"{path} is nested too deep to be a metrics file; delete it and rerun its evaluation"
        ) from exc
    if not isinstance(data, dict):
        raise SpcreidError(f"{path}: expected a JSON object of settings; rerun its evaluation")
    identity = {key: data[key] for key in IDENTITY_KEYS if key in data}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    if "settings" in data:
        if not isinstance(data["settings"], dict):
            raise SpcreidError(f"{path}: 'settings' must map settings to gallery modes; rerun its evaluation")
        for setting, modes in data["settings"].items():
            if not isinstance(modes, dict) or not all(isinstance(m, dict) for m in modes.values()):
                raise SpcreidError(f"{path}: settings.{setting} must map gallery modes to metrics")
            results[setting] = dict(modes)
    # The flat keys are the headline mode's metrics, and what a reader of the file sees first: they win.
    headline = str(data.get("headline_gallery_mode", "multi"))
    for setting, metrics in data.items():
        if setting in REPORT_KEYS:
            continue
        if not isinstance(metrics, dict):
            raise SpcreidError(f"{path}: '{setting}' is not a setting's metrics object; rerun its evaluation")
        results.setdefault(setting, {})[str(metrics.get("gallery_mode", headline))] = metrics
    recorded = data.get("per_query")
    return MetricsFile(path, identity, results, recorded if isinstance(recorded, str) else None)
