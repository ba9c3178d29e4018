"""Figures of the ablations (ours beside the paper) and the DBSCAN eps curve, from the tables' numbers.

Matplotlib runs headless (Agg). The plotted values come from :func:`spcreid.workflow.tables.build_table`,
so a figure can never disagree with its table.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from spcreid.errors import SpcreidError  # noqa: E402
from spcreid.io import atomic_path, write_text  # noqa: E402
from spcreid.workflow.experiments import method_config, table_cells  # noqa: E402
from spcreid.workflow.tables import METRICS, ROW_HEADINGS, build_table  # noqa: E402

# Which table each figure shows.
ABLATION_FIGURES = {"ablation_components.png": "table2", "ablation_sampling.png": "table3"}
EPS_TABLE = "table4"
OURS_COLOUR, PAPER_COLOUR = "#1f77b4", "#bbbbbb"


def _require_table(params: dict[str, Any], table: str, figure: str) -> None:
    if table not in params["tables"]:
        raise SpcreidError(f"{figure} plots {table}, but params.yaml has no tables.{table}")


def _nan(values) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def ablation_figure(frame: pd.DataFrame, table: str, title: str, path: str | os.PathLike) -> None:
    """Grouped bars per row: ours (std error bars) beside the paper, one panel per metric."""
    labels = frame[ROW_HEADINGS.get(table, "Row")].astype(str).tolist()
    x = np.arange(len(labels))
    width = 0.38
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.8), sharey=True)
    for ax, label in zip(np.atleast_1d(axes), METRICS):
        ours, paper = _nan(frame[f"{label} ours"]), _nan(frame[f"{label} paper"])
        std = _nan(frame[f"{label} ours std"])
        # Error bars only where several seeds give a spread; one seed has none to show.
        yerr = None if np.isnan(std).all() else np.nan_to_num(std)
        ax.bar(x - width / 2, np.nan_to_num(ours), width, yerr=yerr, capsize=3, color=OURS_COLOUR, label="ours")
        ax.bar(x + width / 2, np.nan_to_num(paper), width, color=PAPER_COLOUR, hatch="//", edgecolor="#666666",
               label="paper")
        for xi, value in zip(x - width / 2, ours):
            if not np.isnan(value):
                ax.annotate(f"{value:.1f}", (xi, value), ha="center", va="bottom", fontsize=7,
                            xytext=(0, 2), textcoords="offset points")
        ax.set_title(f"{label} (%)")
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    np.atleast_1d(axes)[0].set_ylabel("%")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def eps_curve_data(params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """Table 4 indexed by the eps each row's experiment actually uses (not by its printed label)."""
    cells = [cell for cell in table_cells(params) if cell["table"] == EPS_TABLE]
    data = pd.DataFrame({"eps": [float(method_config(params, cell["experiment"])["eps"]) for cell in cells]})
    ours = frame[frame.get("Source", pd.Series(["ours"] * len(frame))) == "ours"].reset_index(drop=True)
    for label in METRICS:
        for suffix in ("ours", "ours std", "paper"):
            data[f"{label} {suffix}"] = _nan(ours[f"{label} {suffix}"])
    return data.sort_values("eps", kind="stable").reset_index(drop=True)


def eps_figure(data: pd.DataFrame, title: str, path: str | os.PathLike) -> None:
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for label, colour in zip(METRICS, ("#1f77b4", "#d62728")):
        std = data[f"{label} ours std"].to_numpy(dtype=float)
        ax.errorbar(data["eps"], data[f"{label} ours"], yerr=None if np.isnan(std).all() else np.nan_to_num(std),
                    marker="o", color=colour, capsize=3, label=f"{label} ours")
        ax.plot(data["eps"], data[f"{label} paper"], marker="s", linestyle="--", color=colour, alpha=0.6,
                label=f"{label} paper")
    ax.set_xlabel("DBSCAN eps")
    ax.set_ylabel("%")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def write_plots(params: dict[str, Any], metrics_dir: str | os.PathLike, paper_dir: str | os.PathLike,
                out_dir: str | os.PathLike, allow_missing: bool = False) -> list[Path]:
    """ablation_components.png, ablation_sampling.png, eps_curve.png and eps_curve.csv under ``out_dir``."""
    out_dir = Path(out_dir)
    for figure, table in [*ABLATION_FIGURES.items(), ("eps_curve.png", EPS_TABLE)]:
        _require_table(params, table, figure)
    written = []
    for figure, table in ABLATION_FIGURES.items():
        frame = build_table(params, table, metrics_dir, paper_dir, allow_missing)
        ablation_figure(frame, table, params["tables"][table]["title"], out_dir / figure)
        written.append(out_dir / figure)
    frame = build_table(params, EPS_TABLE, metrics_dir, paper_dir, allow_missing)
    data = eps_curve_data(params, frame)
    write_text(out_dir / "eps_curve.csv", data.to_csv(index=False, float_format="%.4f"))
    eps_figure(data, params["tables"][EPS_TABLE]["title"], out_dir / "eps_curve.png")
    return [*written, out_dir / "eps_curve.csv", out_dir / "eps_curve.png"]
