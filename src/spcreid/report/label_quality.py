"""Pseudo-label quality per epoch: do the clusters follow people or clothes?

Every unsupervised run logs, per epoch, the adjusted Rand index and NMI of its pseudo-labels against
the true identities and against the true outfits (ground truth read for this monitor only, never for
training; ``spcreid.engine.logging.label_quality``). This module gathers those records from the run
folders into one tidy table and draws them: one panel per (dataset, experiment), mean over seeds with
a +- 1 std band, identity solid and outfit dashed, and the outlier fraction dotted. A run whose
clusters follow clothes shows ARI against outfits above ARI against identities.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd

from spcreid.errors import SpcreidError
from spcreid.io import atomic_path

QUALITY_KEYS = ("ari_identity", "ari_outfit", "nmi_identity", "nmi_outfit")
RECORD_KEYS = ("epoch", "n_clusters", "n_outliers", "n_images", *QUALITY_KEYS)
CSV_NAME, FIGURE_STEM = "label_quality.csv", "label_quality"
# (column, label, colour, line style): identity solid, outfit dashed, outliers dotted.
SERIES = (
    ("ari_identity", "ARI vs identity", "#1f77b4", "-"),
    ("ari_outfit", "ARI vs outfit", "#1f77b4", "--"),
    ("nmi_identity", "NMI vs identity", "#ff7f0e", "-"),
    ("nmi_outfit", "NMI vs outfit", "#ff7f0e", "--"),
    ("outlier_fraction", "outliers / images", "#7f7f7f", ":"),
)
PANEL_COLUMNS = 4


def read_run(run_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per logged epoch of the run folder (its config.json names dataset, experiment, seed)."""
    run_dir = Path(run_dir)
    config_path, log_path = run_dir / "config.json", run_dir / "log.jsonl"
    for path in (config_path, log_path):
        if not path.is_file():
            raise SpcreidError(f"{path} is missing: {run_dir} is not a finished training run; (re)train it first")
    try:
        config = json.loads(config_path.read_text())
        run = {key: config[key] for key in ("profile", "dataset", "experiment", "seed")}
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise SpcreidError(f"{config_path} is not a run config ({error}); retrain the run") from None
    rows = []
    for number, line in enumerate(log_path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise SpcreidError(f"{log_path} line {number} is not JSON; retrain the run") from None
        missing = [key for key in RECORD_KEYS if key not in record]
        if missing:
            raise SpcreidError(
                f"{log_path} line {number} lacks {', '.join(missing)}: only runs with ground truth in their "
                "manifest log pseudo-label quality (pid and clothes_id columns); retrain with such a manifest"
            )
        rows.append({**run, **{key: record[key] for key in RECORD_KEYS}})
    if not rows:
        raise SpcreidError(f"{log_path} holds no epoch; the run stopped before its first epoch, retrain it")
    return pd.DataFrame(rows)


def collect(run_dirs: list[str | os.PathLike]) -> pd.DataFrame:
    """The tidy table of every run's epochs, sorted by dataset, experiment, seed, epoch."""
    if not run_dirs:
        raise SpcreidError("no run folders given; pass the training runs' folders with --runs")
    frame = pd.concat([read_run(run) for run in run_dirs], ignore_index=True)
    profiles = sorted(frame["profile"].astype(str).unique())
    if len(profiles) > 1:
        raise SpcreidError(f"the runs come from several profiles ({', '.join(profiles)}); give one profile's runs")
    frame["outlier_fraction"] = frame["n_outliers"] / frame["n_images"]
    return frame.sort_values(["dataset", "experiment", "seed", "epoch"]).reset_index(drop=True)


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std (ddof 1; NaN for one seed) over seeds per (dataset, experiment, epoch)."""
    columns = [*QUALITY_KEYS, "outlier_fraction", "n_clusters"]
    grouped = frame.groupby(["dataset", "experiment", "epoch"])[columns]
    summary = grouped.mean().add_suffix(" mean").join(grouped.std(ddof=1).add_suffix(" std"))
    summary["seeds"] = grouped.size()
    return summary.reset_index()


def draw(frame: pd.DataFrame, out_dir: str | os.PathLike) -> list[Path]:
    """label_quality.{png,svg,pdf}: one panel per (dataset, experiment), every series on a 0-1 axis."""
    # lazy: matplotlib
    import matplotlib.pyplot as plt

    from spcreid.report.plots import FIGURE_FORMATS, NO_DATES

    summary = summarise(frame)
    panels = list(summary.groupby(["dataset", "experiment"], sort=True))
    rows = math.ceil(len(panels) / PANEL_COLUMNS)
    columns = min(PANEL_COLUMNS, len(panels))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False, sharey=True)
    for ax, ((dataset, experiment), data) in zip(axes.flat, panels):
        epochs = data["epoch"].to_numpy()
        for column, label, colour, style in SERIES:
            mean = data[f"{column} mean"].to_numpy()
            std = data[f"{column} std"].fillna(0.0).to_numpy()
            ax.plot(epochs, mean, color=colour, linestyle=style, linewidth=1.4, label=label)
            ax.fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.12, linewidth=0)
        ax.set_title(f"{dataset} / {experiment} ({int(data['seeds'].max())} seeds)", fontsize=9)
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("score (0-1)")
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(SERIES), fontsize=8, frameon=False)
    profile = str(frame["profile"].iloc[0])
    fig.suptitle(
        f"Pseudo-label quality per epoch, mean +- std over seeds [profile {profile}]\n"
        "clusters follow clothes when ARI vs outfit (dashed) lies above ARI vs identity (solid)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    written = []
    try:
        for fmt in FIGURE_FORMATS:
            path = Path(out_dir) / f"{FIGURE_STEM}.{fmt}"
            with atomic_path(path) as tmp:
                fig.savefig(tmp, dpi=110, format=fmt, metadata=NO_DATES[fmt])
            written.append(path)
    finally:
        plt.close(fig)
    return written


def write_label_quality(run_dirs: list[str | os.PathLike], out_dir: str | os.PathLike) -> list[Path]:
    """Read the runs' logs and write OUT/label_quality.csv (every epoch of every run) and the figures."""
    frame = collect(run_dirs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = ["dataset", "experiment", "seed", "epoch", "n_clusters", "n_outliers", "n_images", *QUALITY_KEYS]
    with atomic_path(out_dir / CSV_NAME) as tmp:
        frame[columns].to_csv(tmp, index=False)
    return [out_dir / CSV_NAME, *draw(frame, out_dir)]
