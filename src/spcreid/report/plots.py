"""Figures of the ablations (ours beside the paper) and the DBSCAN eps curve, from the tables' numbers.

Matplotlib runs headless (Agg). The plotted values come from :func:`spcreid.report.tables.build_table`,
so a figure can never disagree with its table: bars and points are the multi-shot means over seeds, error
bars one sample std, and the reference rows (oracle, lower bounds) are horizontal lines. Every figure is
written as PNG (the report), SVG and PDF (papers), titled with the profile that made it; the vector files
carry no creation date, so identical numbers give identical files.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from spcreid.config.experiments import BOUND_TITLES, method_config, table_cells
from spcreid.errors import SpcreidError
from spcreid.io import atomic_path, write_text
from spcreid.report.run_results import METRICS, RunStore
from spcreid.report.table_layout import HEADLINE_MODE, heading, profile_caption
from spcreid.report.tables import build_table

# Which table each figure shows (file stem -> table).
ABLATION_FIGURES = {"ablation_components": "table2", "ablation_sampling": "table3"}
EPS_FIGURE, EPS_TABLE = "eps_curve", "table4"
FIGURE_FORMATS = ("png", "svg", "pdf")
OURS_COLOUR, PAPER_COLOUR = "#1f77b4", "#bbbbbb"
REFERENCE_STYLES = {BOUND_TITLES["upper"]: "--", BOUND_TITLES["lower"]: ":"}
REFERENCE_COLOURS = ("#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
# SVG ids and PDF metadata would otherwise change on every run.
matplotlib.rcParams["svg.hashsalt"] = "spcreid"
# Text stays text in the SVG: searchable, editable, and the title (with its profile) readable by tools.
matplotlib.rcParams["svg.fonttype"] = "none"
NO_DATES = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}, "png": {}}


def figure_files(out_dir: str | os.PathLike, stem: str) -> list[Path]:
    return [Path(out_dir) / f"{stem}.{fmt}" for fmt in FIGURE_FORMATS]


def _require_table(params: dict[str, Any], table: str, figure: str) -> None:
    if table not in params["tables"]:
        raise SpcreidError(f"{figure} plots {table}, but params.yaml has no tables.{table}")


def _nan(values) -> np.ndarray:
    return np.array([np.nan if v is None or pd.isna(v) else float(v) for v in values], dtype=float)


def _headline(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    gallery = frame["Gallery"].astype(str).str.startswith(HEADLINE_MODE)
    return frame[(frame["Source"] == source) & gallery].reset_index(drop=True)


def heading_of(frame: pd.DataFrame) -> str:
    return str(frame.columns[0])


def _reference_lines(ax, frame: pd.DataFrame, label: str) -> None:
    """One horizontal line per reference row (multi-shot), dashed for the upper bound, dotted for lower ones."""
    references = frame[frame["Source"].isin(list(REFERENCE_STYLES))]
    references = references[references["Gallery"].astype(str).str.startswith(HEADLINE_MODE)]
    for colour, record in zip(REFERENCE_COLOURS, references.to_dict("records")):
        value = record[f"{label} ours"]
        if value is not None and not pd.isna(value):
            ax.axhline(
                float(value),
                color=colour,
                linestyle=REFERENCE_STYLES[record["Source"]],
                linewidth=1.2,
                label=f"{record[heading_of(frame)]}: {value:.1f}",
            )


def ablation_figure(frame: pd.DataFrame, table: str, title: str, out_dir: Path, stem: str) -> None:
    """Grouped bars per row: ours (std error bars) beside the paper, one panel per metric."""
    ours_rows = _headline(frame, "ours")
    labels = ours_rows[heading(table)].astype(str).tolist()
    x = np.arange(len(labels))
    width = 0.38
    fig, axes = plt.subplots(1, len(METRICS), figsize=(5.0 * len(METRICS), 5.2), sharey=True)
    for ax, label in zip(np.atleast_1d(axes), METRICS):
        ours, paper = _nan(ours_rows[f"{label} ours"]), _nan(ours_rows[f"{label} paper"])
        std = _nan(ours_rows[f"{label} ours std"])
        # Error bars only where several seeds give a spread; one seed has none to show.
        yerr = None if np.isnan(std).all() else np.nan_to_num(std)
        ax.bar(
            x - width / 2,
            np.nan_to_num(ours),
            width,
            yerr=yerr,
            capsize=3,
            color=OURS_COLOUR,
            label="ours (mean ± std over seeds)",
        )
        ax.bar(
            x + width / 2,
            np.nan_to_num(paper),
            width,
            color=PAPER_COLOUR,
            hatch="//",
            edgecolor="#666666",
            label="paper",
        )
        for xi, value, spread in zip(x - width / 2, ours, np.nan_to_num(std)):
            if not np.isnan(value):
                # Above the error bar, so that the number and the bar do not overlap.
                ax.annotate(
                    f"{value:.1f}",
                    (xi, value + spread),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
        _reference_lines(ax, frame, label)
        ax.set_ylim(0, 105)
        ax.set_title(f"{label} (%)")
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.set_xlabel(heading(table))
        ax.grid(axis="y", alpha=0.3)
    first = np.atleast_1d(axes)[0]
    first.set_ylabel("%")
    fig.suptitle(title, fontsize=9)
    handles, names = first.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=2, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.07 + 0.03 * ((len(names) + 1) // 2), 1, 1))
    _save(fig, out_dir, stem)


def eps_curve_data(params: dict[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """Table 4's multi-shot rows indexed by the eps each row's experiment actually uses (not its label)."""
    cells = [cell for cell in table_cells(params) if cell["table"] == EPS_TABLE]
    ours = _headline(frame, "ours")
    data = pd.DataFrame(
        {
            "eps": [float(method_config(params, cell["experiment"])["eps"]) for cell in cells],
            "profile": params["profile"],
            "dataset": [cell["dataset"] for cell in cells],
            "setting": [cell["setting"] for cell in cells],
        }
    )
    for label in METRICS:
        for suffix in ("ours", "ours std", "paper"):
            data[f"{label} {suffix}"] = _nan(ours[f"{label} {suffix}"])
        if f"{label} p" in ours.columns:
            data[f"{label} p"] = _nan(ours[f"{label} p"])
    return data.sort_values("eps", kind="stable").reset_index(drop=True)


def eps_figure(data: pd.DataFrame, title: str, out_dir: Path, stem: str) -> None:
    fig, ax = plt.subplots(figsize=(6.0, 4.6))
    for label, colour in zip(METRICS, ("#1f77b4", "#ff7f0e")):
        std = data[f"{label} ours std"].to_numpy(dtype=float)
        ax.errorbar(
            data["eps"],
            data[f"{label} ours"],
            yerr=None if np.isnan(std).all() else np.nan_to_num(std),
            marker="o",
            color=colour,
            capsize=3,
            label=f"{label} ours (mean ± std)",
        )
        ax.plot(
            data["eps"],
            data[f"{label} paper"],
            marker="s",
            linestyle="--",
            color=colour,
            alpha=0.6,
            label=f"{label} paper",
        )
    ax.set_xlabel("DBSCAN eps")
    ax.set_ylabel("%")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    _save(fig, out_dir, stem)


def _save(fig, out_dir: Path, stem: str) -> None:
    try:
        for path in figure_files(out_dir, stem):
            fmt = path.suffix[1:]
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=120, format=fmt, metadata=NO_DATES[fmt])
    finally:
        plt.close(fig)


def write_plots(
    params: dict[str, Any],
    metrics_dir: str | os.PathLike,
    paper_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    allow_missing: bool = False,
) -> list[Path]:
    """Each figure as PNG, SVG and PDF, and eps_curve.csv (the DVC plot's data), under ``out_dir``."""
    out_dir = Path(out_dir)
    for stem, table in [*ABLATION_FIGURES.items(), (EPS_FIGURE, EPS_TABLE)]:
        _require_table(params, table, stem)
    store = RunStore(Path(metrics_dir), params["profile"], allow_missing)
    # Build every frame before writing: a bad metrics file must not leave some figures new and some old.
    frames = {
        table: build_table(params, table, metrics_dir, paper_dir, allow_missing, store)
        for table in {*ABLATION_FIGURES.values(), EPS_TABLE}
    }
    # Wrapped: the embedded caption is longer than a small figure is wide.
    caption = textwrap.fill(f"[{profile_caption(params)}]", 70)
    written: list[Path] = []
    for stem, table in ABLATION_FIGURES.items():
        ablation_figure(frames[table], table, f"{params['tables'][table]['title']}\n{caption}", out_dir, stem)
        written += figure_files(out_dir, stem)
    data = eps_curve_data(params, frames[EPS_TABLE])
    write_text(out_dir / f"{EPS_FIGURE}.csv", data.to_csv(index=False, float_format="%.4f"))
    eps_figure(data, f"{params['tables'][EPS_TABLE]['title']}\n{caption}", out_dir, EPS_FIGURE)
    return [*written, out_dir / f"{EPS_FIGURE}.csv", *figure_files(out_dir, EPS_FIGURE)]
