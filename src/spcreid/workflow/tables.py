"""The paper's tables rebuilt from our runs, beside the paper's own numbers.

For every table cell of ``params.yaml`` the per-seed metrics JSON files written by ``spcreid evaluate``
(``<metrics-dir>/<dataset>/<experiment>/seed<N>.json``, ``{setting: {rank1, mAP, ...}}`` as fractions)
are read, converted to %, and summarised as mean and sample standard deviation over the profile's seeds.
The paper's values live once, in ``results/paper/<table>.csv`` (columns ``row,dataset,setting,rank1,mAP,
source``; ``source`` is ``paper`` for Sync-Person-Cloud's own numbers and ``quoted`` for the literature rows
the paper copied into its Table 1). ``diff`` is always ours - paper.

Every table has the same long layout, so one builder and one set of writers serve all four.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from spcreid.errors import SpcreidError
from spcreid.io import write_json, write_text
from spcreid.workflow.experiments import Run, method_config, profile, table_cells

# Column label -> key in the metrics JSON written by `spcreid evaluate`.
METRICS = {"R1": "rank1", "mAP": "mAP"}
PAPER_COLUMNS = ("row", "dataset", "setting", "rank1", "mAP", "source")
PAPER_SOURCES = ("paper", "quoted")
DATASET_TITLES = {"prcc": "PRCC", "vcclothes": "VC-Clothes", "ltcc": "LTCC"}
SETTING_TITLES = {"cc": "Clothing change", "sc": "Same clothing", "general": "General"}
# The first column's heading, as the paper names it.
ROW_HEADINGS = {"table1": "Method", "table2": "Method", "table3": "Sampling", "table4": "eps"}
# Table 2 marks the components of each row (Ca: augmentation, Ci: self-identity loss, Cs: sampling).
COMPONENT_TABLES = ("table2",)
CHECK = "✓"
OUTPUT_FORMATS = ("csv", "md", "tex", "html")


def metrics_path(metrics_dir: str | os.PathLike, run: Run) -> Path:
    return Path(metrics_dir) / run.dataset / run.experiment / f"seed{run.seed}.json"


def read_run_metrics(path: Path, setting: str) -> dict[str, float]:
    """R1 and mAP (in %) of one run and setting."""
    try:
        with open(path) as handle:
            metrics = json.load(handle)
    except json.JSONDecodeError as exc:
        raise SpcreidError(f"{path} is not valid JSON ({exc}); delete it and rerun its evaluation") from exc
    if setting not in metrics:
        raise SpcreidError(
            f"{path} has no setting '{setting}' (it has {sorted(metrics)}); the table cell asks for a setting "
            "that this dataset's protocol does not produce: change the cell's setting in params.yaml or rerun "
            "the run's evaluation"
        )
    values = {}
    for label, key in METRICS.items():
        if key not in metrics[setting]:
            raise SpcreidError(f"{path}: setting '{setting}' has no '{key}'; rerun its evaluation")
        value = metrics[setting][key]
        # NaN (json.load accepts it), null or a string would otherwise become a blank or wrong cell.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0.0 <= value <= 1.0:
            raise UnusableMetrics(
                f"{path}: setting '{setting}' has {key} = {value!r}, not a fraction in [0, 1]; rerun its "
                "evaluation (the model may have diverged), or pass --allow-missing to leave the cell empty"
            )
        values[label] = 100.0 * float(value)
    return values


class UnusableMetrics(SpcreidError):
    """A metrics file that exists but holds no usable number; --allow-missing treats it as absent."""


def ours(params: dict[str, Any], cell: dict[str, Any], metrics_dir: str | os.PathLike, allow_missing: bool = False
         ) -> dict[str, Any]:
    """Mean, standard deviation (ddof=1, None for one seed) and seed count of a cell's runs, in %."""
    per_seed: dict[str, list[float]] = {label: [] for label in METRICS}
    for seed in profile(params)["seeds"]:
        path = metrics_path(metrics_dir, Run(cell["dataset"], cell["experiment"], int(seed)))
        if not path.is_file():
            if allow_missing:
                continue
            raise SpcreidError(
                f"{path} not found: evaluate run {cell['dataset']}/{cell['experiment']}/seed{seed} first "
                "(`snakemake metrics`), or pass --allow-missing to leave the cell empty"
            )
        try:
            run_values = read_run_metrics(path, cell["setting"])
        except UnusableMetrics as exc:
            if not allow_missing:
                raise
            print(f"warning: {exc}; cell left without this seed")
            continue
        for label, value in run_values.items():
            per_seed[label].append(value)
    n = len(per_seed["R1"])
    summary: dict[str, Any] = {"seeds": n}
    for label, values in per_seed.items():
        summary[label] = float(np.mean(values)) if n else None
        summary[f"{label} std"] = float(np.std(values, ddof=1)) if n > 1 else None
    return summary


def read_paper_table(paper_dir: str | os.PathLike, table: str) -> pd.DataFrame:
    path = Path(paper_dir) / f"{table}.csv"
    if not path.is_file():
        raise SpcreidError(f"{path} not found: the paper's values of {table} belong there (see results/paper/)")
    frame = pd.read_csv(path, dtype={"row": str, "dataset": str, "setting": str, "source": str})
    missing = [column for column in PAPER_COLUMNS if column not in frame.columns]
    if missing:
        raise SpcreidError(f"{path}: missing column(s) {missing}; expected {list(PAPER_COLUMNS)}")
    bad = sorted(set(frame["source"]) - set(PAPER_SOURCES))
    if bad:
        raise SpcreidError(f"{path}: column 'source' has {bad}; use 'paper' or 'quoted'")
    duplicated = frame.duplicated(["row", "dataset", "setting"])
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        raise SpcreidError(f"{path}: row '{first['row']}' ({first['dataset']}, {first['setting']}) appears twice")
    return frame


def _components(params: dict[str, Any], experiment: str) -> dict[str, str]:
    method = method_config(params, experiment)
    return {
        "Ca": CHECK if method["augment"] else "",
        "Ci": CHECK if method["self_identity"] else "",
        "Cs": CHECK if method["sampling"] == "both" else "",
    }


def _value(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def build_table(params: dict[str, Any], table: str, metrics_dir: str | os.PathLike, paper_dir: str | os.PathLike,
                allow_missing: bool = False) -> pd.DataFrame:
    """One table as numbers: quoted literature rows first (paper only), then one row per table cell."""
    if table not in params["tables"]:
        raise SpcreidError(f"params.yaml has no table '{table}' (tables: {sorted(params['tables'])})")
    paper = read_paper_table(paper_dir, table)
    paper_by_key = {(r.row, r.dataset, r.setting): r for r in paper.itertuples(index=False)}
    heading = ROW_HEADINGS.get(table, "Row")
    records = []
    for r in paper[paper["source"] == "quoted"].itertuples(index=False):
        record = {heading: r.row, "Source": "quoted", "Dataset": r.dataset, "Setting": r.setting}
        for label, key in METRICS.items():
            record.update({f"{label} ours": None, f"{label} ours std": None,
                           f"{label} paper": _value(getattr(r, key)), f"{label} diff": None})
        records.append(record | {"Seeds": 0})
    cells = [cell for cell in table_cells(params) if cell["table"] == table]
    for cell in tqdm(cells, desc=table, unit="cell", disable=None):
        summary = ours(params, cell, metrics_dir, allow_missing)
        reference = paper_by_key.get((cell["row"], cell["dataset"], cell["setting"]))
        record = {heading: cell["row"], "Source": "ours", "Dataset": cell["dataset"], "Setting": cell["setting"]}
        if table in COMPONENT_TABLES:
            record |= _components(params, cell["experiment"])
        for label, key in METRICS.items():
            mine = summary[label]
            theirs = _value(getattr(reference, key)) if reference is not None else None
            record.update({
                f"{label} ours": mine,
                f"{label} ours std": summary[f"{label} std"],
                f"{label} paper": theirs,
                f"{label} diff": mine - theirs if mine is not None and theirs is not None else None,
            })
        records.append(record | {"Seeds": summary["seeds"]})
    frame = pd.DataFrame.from_records(records)
    if table in COMPONENT_TABLES:
        frame[["Ca", "Ci", "Cs"]] = frame[["Ca", "Ci", "Cs"]].fillna("")
    return frame


def without_constant_context(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop Source/Dataset/Setting where they say the same on every row (the ablations: all ours, PRCC, CC),
    so those tables keep the paper's columns; Table 1 spans datasets and quoted rows and keeps them."""
    context = ["Source", "Dataset", "Setting"]
    if all(frame[column].nunique() == 1 for column in context) and (frame["Source"] == "ours").all():
        return frame.drop(columns=context)
    return frame


# ---- Formatting -------------------------------------------------------------------------------------------------

def _fmt_number(x: Any) -> str:
    x = _value(x)
    if x is None:
        return "-"
    # The paper gives some literature values to two decimals (e.g. 18.55); keep what it gives.
    return f"{x:.1f}" if round(x, 1) == round(x, 2) else f"{x:.2f}"


def _fmt_ours(mean: Any, std: Any) -> str:
    mean, std = _value(mean), _value(std)
    if mean is None:
        return "-"
    return f"{mean:.1f} ± {std:.1f}" if std is not None else f"{mean:.1f}"


def _fmt_diff(x: Any) -> str:
    x = _value(x)
    return "-" if x is None else f"{x:+.1f}"


def display_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Strings for reading: ours as mean ± std, signed diffs, '-' where there is no value."""
    shown = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        if column.endswith(" ours std") or column == "Seeds":
            continue
        if column.endswith(" ours"):
            shown[column] = [_fmt_ours(m, s) for m, s in zip(frame[column], frame[f"{column} std"])]
        elif column.endswith(" paper"):
            shown[column] = [_fmt_number(x) for x in frame[column]]
        elif column.endswith(" diff"):
            shown[column] = [_fmt_diff(x) for x in frame[column]]
        elif column == "Dataset":
            shown[column] = [DATASET_TITLES.get(x, x) for x in frame[column]]
        elif column == "Setting":
            shown[column] = [SETTING_TITLES.get(x, x) for x in frame[column]]
        else:
            shown[column] = frame[column].astype(str)
    return shown


def to_markdown(shown: pd.DataFrame, title: str) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    rows = [f"**{title}**", "", line(shown.columns), line(["---"] * len(shown.columns))]
    rows += [line(values) for values in shown.itertuples(index=False)]
    return "\n".join(rows) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", CHECK: r"\checkmark", "−": "-"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def to_latex(shown: pd.DataFrame, title: str, label: str) -> str:
    spec = "l" * (len(shown.columns) - sum(c.endswith((" ours", " paper", " diff")) for c in shown.columns))
    spec += "r" * (len(shown.columns) - len(spec))
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(title)}}}",
        rf"\label{{tab:{label}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\hline",
        " & ".join(latex_escape(c) for c in shown.columns) + r" \\",
        r"\hline",
    ]
    lines += [" & ".join(latex_escape(v) for v in values) + r" \\" for values in shown.itertuples(index=False)]
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_html(shown: pd.DataFrame, title: str) -> str:
    body = shown.to_html(index=False, border=0, classes="spcreid-table", escape=True)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            "<style>table{border-collapse:collapse;font-family:sans-serif;font-size:13px}"
            "td,th{padding:3px 8px;border-bottom:1px solid #ccc;text-align:right}"
            "td:first-child,th:first-child{text-align:left}</style></head>\n"
            f"<body><h3>{html.escape(title)}</h3>\n{body}\n</body></html>\n")


def summary_entry(frame: pd.DataFrame, table: str) -> dict[str, Any]:
    """Our cells as nested dicts (row -> dataset_setting -> values): the DVC metrics file."""
    heading = ROW_HEADINGS.get(table, "Row")
    entry: dict[str, Any] = {}
    for record in frame.to_dict("records"):
        if record.get("Source", "ours") != "ours":
            continue
        where = f"{record['Dataset']}_{record['Setting']}"
        values = {column.replace(" ", "_"): _value(record[column]) for column in frame.columns
                  if column.startswith(tuple(METRICS))}
        entry.setdefault(str(record[heading]), {})[where] = values
    return entry


def profile_caption(params: dict[str, Any]) -> str:
    """Which data produced "ours": on the embedded profile the dataset columns are toy stand-ins."""
    datasets = profile(params)["datasets"]
    stand_ins = [DATASET_TITLES.get(key, key) for key, spec in datasets.items() if spec["source"] == "toy"]
    caption = f"profile {params['profile']}, seeds {', '.join(map(str, profile(params)['seeds']))}"
    if stand_ins:
        caption += f"; ours on procedural toy stand-ins for {', '.join(stand_ins)}"
    return caption


def write_tables(params: dict[str, Any], metrics_dir: str | os.PathLike, paper_dir: str | os.PathLike,
                 out_dir: str | os.PathLike, allow_missing: bool = False) -> dict[str, pd.DataFrame]:
    """Every table of params.yaml as CSV (numbers), Markdown, LaTeX and HTML, plus summary.json."""
    out_dir = Path(out_dir)
    # Build everything before writing anything: a bad metrics file must not leave half the tables new.
    frames = {table: build_table(params, table, metrics_dir, paper_dir, allow_missing)
              for table in sorted(params["tables"])}
    summary = {}
    for table, frame in frames.items():
        title = f'{params["tables"][table]["title"]} [{profile_caption(params)}]'
        compact = without_constant_context(frame)
        shown = display_table(compact)
        write_text(out_dir / f"{table}.csv", compact.to_csv(index=False, float_format="%.4f"))
        write_text(out_dir / f"{table}.md", to_markdown(shown, title))
        write_text(out_dir / f"{table}.tex", to_latex(shown, title, table))
        write_text(out_dir / f"{table}.html", to_html(shown, title))
        summary[table] = summary_entry(frame, table)
    write_json(out_dir / "summary.json", summary)
    return frames
