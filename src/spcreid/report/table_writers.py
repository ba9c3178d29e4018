"""The tables of :mod:`spcreid.report.tables` as files: CSV (numbers), Markdown, LaTeX (booktabs), HTML,
and the compact DVC metrics file ``summary.json`` (ours only, headline cells: mean R1 / mAP and the seed-level
difference from the compared row; each reference row once; not the paper's constants).

The CSV keeps every context column (profile, source, dataset, setting, gallery mode); the human-readable
formats drop the ones that say the same on every row and show the rows in labelled blocks: quoted
literature, ours, the upper bound, the lower bounds.

Markdown is written by the few lines below rather than ``DataFrame.to_markdown``: that needs tabulate,
which the runtime image does not install.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from spcreid.config.experiments import BOUND_TITLES
from spcreid.io import write_file_set
from spcreid.report.run_results import METRICS
from spcreid.report.table_layout import CHECK, DATASET_TITLES, HEADLINE_MODE, STATISTICS, heading, profile_caption
from spcreid.report.verdict import verdict_markdown

SETTING_TITLES = {"cc": "Clothing change", "sc": "Same clothing", "general": "General"}
BLOCKS = {
    "quoted": "Quoted in the paper (no run of ours)",
    "ours": "Ours",
    BOUND_TITLES["upper"]: "Reference row, upper bound",
    BOUND_TITLES["lower"]: "Reference rows, lower bounds",
}
CONTEXT = ("Dataset", "Setting", "Gallery")
OUTPUT_FORMATS = ("csv", "md", "tex", "html")


# ---- Cells as text ----------------------------------------------------------------------------------------------


def _value(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def fmt_number(x: Any) -> str:
    x = _value(x)
    if x is None:
        return "-"
    # The paper gives some literature values to two decimals (e.g. 18.55); keep what it gives.
    return f"{x:.1f}" if round(x, 1) == round(x, 2) else f"{x:.2f}"


def fmt_ours(mean: Any, std: Any) -> str:
    mean, std = _value(mean), _value(std)
    if mean is None:
        return "-"
    return f"{mean:.1f} ± {std:.1f}" if std is not None else f"{mean:.1f}"


def fmt_diff(x: Any) -> str:
    x = _value(x)
    return "-" if x is None else f"{x:+.1f}"


def fmt_interval(diff: Any, low: Any, high: Any, adj_low: Any, adj_high: Any, compared: Any) -> str:
    """``+3.2 [+1.2, +5.2; -0.5, +6.9]``: the effect, its 95% interval, then the family-adjusted one."""
    if compared == "reference row":
        return "ref"
    diff, low, high, adj_low, adj_high = map(_value, (diff, low, high, adj_low, adj_high))
    if diff is None:
        return "-"
    adjusted = "" if adj_low is None else f"; {adj_low:+.1f}, {adj_high:+.1f}"
    return f"{diff:+.1f} [{low:+.1f}, {high:+.1f}{adjusted}]"


def _p_text(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_p(p: Any, compared: Any, adjusted: Any = None) -> str:
    """``0.012 (0.048)``: the p-value, then its Holm adjustment when there is one."""
    if compared == "reference row":
        return "ref"
    p, adjusted = _value(p), _value(adjusted)
    if p is None:
        return "-"
    return _p_text(p) + ("" if adjusted is None else f" ({_p_text(adjusted)})")


def display_table(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Strings for reading: ours as mean ± std, signed diffs, paired effect with its CI, '-' for no value."""
    body = frame[frame["Source"] != "quoted"]
    shown = pd.DataFrame(index=frame.index)
    compared = frame["Compared"] if "Compared" in frame.columns else pd.Series([None] * len(frame), frame.index)
    shown[heading(table)] = frame[heading(table)].astype(str)
    for column in ("Ca", "Ci", "Cs"):
        if column in frame.columns:
            shown[column] = frame[column].fillna("").astype(str)
    for column in CONTEXT:
        if body[column].nunique() > 1:
            titles = DATASET_TITLES if column == "Dataset" else SETTING_TITLES if column == "Setting" else {}
            shown[column] = [titles.get(x, x) if isinstance(x, str) else "" for x in frame[column]]
    for label in METRICS:
        shown[f"{label} ours"] = [fmt_ours(m, s) for m, s in zip(frame[f"{label} ours"], frame[f"{label} ours std"])]
        if f"{label} trials std" in frame.columns:
            shown[f"{label} trials std"] = [fmt_number(x) for x in frame[f"{label} trials std"]]
        shown[f"{label} paper"] = [fmt_number(x) for x in frame[f"{label} paper"]]
        shown[f"{label} diff"] = [fmt_diff(x) for x in frame[f"{label} diff"]]
        if f"{label} vs ref" in frame.columns:
            column = {suffix: _column(frame, f"{label} {suffix}") for suffix in STATISTICS}
            shown[f"{label} vs ref [95% CI; adj.]"] = [
                fmt_interval(*values)
                for values in zip(
                    column["vs ref"],
                    column["vs ref low"],
                    column["vs ref high"],
                    column["vs ref adj low"],
                    column["vs ref adj high"],
                    compared,
                )
            ]
            shown[f"{label} p (Holm)"] = [fmt_p(p, c, h) for p, c, h in zip(column["p"], compared, column["p Holm"])]
            shown[f"{label} MDE"] = [
                "ref" if c == "reference row" else fmt_number(x) for x, c in zip(column["MDE"], compared)
            ]
            shown[f"{label} query-level p"] = [fmt_p(p, c) for p, c in zip(column["query p"], compared)]
    return shown


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    """A statistic column, or all-missing where the frame has none (e.g. no seed-level p with one seed)."""
    return frame[name] if name in frame.columns else pd.Series([None] * len(frame), frame.index)


def blocks(frame: pd.DataFrame) -> list[tuple[str, list[int]]]:
    """(block label, row positions) in table order."""
    out: list[tuple[str, list[int]]] = []
    for position, source in enumerate(frame["Source"]):
        label = BLOCKS.get(source, source)
        if not out or out[-1][0] != label:
            out.append((label, []))
        out[-1][1].append(position)
    return out


def statistics_note(params: dict[str, Any], table: str, frame: pd.DataFrame) -> str:
    seeds = len(params["profiles"][params["profile"]]["seeds"])
    note = f"Ours: mean ± sample std over {seeds} seed(s); diff = ours - paper on the {HEADLINE_MODE}-shot rows."
    if any(c.endswith("trials std") for c in frame.columns):
        note += (
            " Single-shot rows: mean over random one-image-per-identity galleries (trials); trials std = their spread."
        )
    target = params["tables"][table].get("compare_to")
    if target is not None and any(c.endswith(" vs ref") for c in frame.columns):
        note += (
            f" vs ref: ours - row '{target}' (same dataset, setting and gallery) with the training seed as the unit:"
            " mean over seeds, [95% two-stage bootstrap interval (seeds, then queries within a seed); the same"
            " interval at the family-adjusted level 1 - 0.05/m, m = compared rows of this table and gallery mode];"
            " p: two-sided paired t-test over seeds (Holm-adjusted over the same family); MDE: the smallest"
            " difference detectable with 80% power at the adjusted level, from the seeds' sd of the difference;"
            " query-level p (secondary): paired permutation test over (seed, query) pairs, which treats queries"
            " as independent and says nothing about other seeds."
        )
    return note


# ---- Writers -----------------------------------------------------------------------------------------------------


def _md_line(cells) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def to_markdown(shown: pd.DataFrame, frame: pd.DataFrame, title: str, note: str) -> str:
    parts = [f"**{title}**", ""]
    for label, rows in blocks(frame):
        part = shown.iloc[rows]
        parts += [f"*{label}*", "", _md_line(part.columns), _md_line(["---"] * len(part.columns))]
        parts += [_md_line(values) for values in part.itertuples(index=False)] + [""]
    return "\n".join(parts + [note]) + "\n"


_CAPTION_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
# Left in place by pandas' escaping; LaTeX without extra packages needs them spelled out.
_LATEX_SYMBOLS = {"±": r"$\pm$", CHECK: r"\checkmark"}


def latex_text(text: str) -> str:
    escaped = "".join(_CAPTION_ESCAPES.get(ch, ch) for ch in str(text))
    for symbol, latex in _LATEX_SYMBOLS.items():
        escaped = escaped.replace(symbol, latex)
    return escaped


def to_latex(shown: pd.DataFrame, frame: pd.DataFrame, title: str, note: str, label: str) -> str:
    """booktabs (pandas' default rules), one \\midrule and an italic label row per block."""
    n_text = sum(not c.startswith(tuple(METRICS)) for c in shown.columns)
    spec = "l" * n_text + "r" * (len(shown.columns) - n_text)
    latex = shown.to_latex(
        index=False,
        escape=True,
        column_format=spec,
        position="t",
        caption=latex_text(f"{title}. {note}"),
        label=f"tab:{label}",
    )
    for symbol, replacement in _LATEX_SYMBOLS.items():
        latex = latex.replace(symbol, replacement)
    lines = latex.splitlines()
    first_row = lines.index(r"\midrule") + 1
    body, before = lines[first_row:], lines[:first_row]
    end = body.index(r"\bottomrule")
    body, after = body[:end], body[end:]
    rows = []
    for i, (block, positions) in enumerate(blocks(frame)):
        # The header's \midrule already opens the first block.
        rows += [r"\midrule"] if i else []
        rows += [rf"\multicolumn{{{len(shown.columns)}}}{{l}}{{\textit{{{latex_text(block)}}}}} \\"]
        rows += [body[p] for p in positions]
    before.insert(1, r"\centering")
    return "\n".join(before + rows + after) + "\n"


def to_html(shown: pd.DataFrame, frame: pd.DataFrame, title: str, note: str) -> str:
    sections = []
    for label, rows in blocks(frame):
        table = shown.iloc[rows].to_html(index=False, border=0, classes="spcreid-table", escape=True)
        sections.append(f"<h4>{html.escape(label)}</h4>\n{table}")
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        "<style>table{border-collapse:collapse;font-family:sans-serif;font-size:13px}"
        "td,th{padding:3px 8px;border-bottom:1px solid #ccc;text-align:right}"
        "td:first-child,th:first-child{text-align:left}</style></head>\n"
        f"<body><h3>{html.escape(title)}</h3>\n"
        + "\n".join(sections)
        + f"\n<p>{html.escape(note)}</p>\n</body></html>\n"
    )


def _rounded(x: Any) -> float | None:
    # Four decimals of a percentage: far below any difference a table shows, and readable in a diff.
    x = _value(x)
    return None if x is None else round(x, 4)


def summary_entry(
    params: dict[str, Any], frame: pd.DataFrame, table: str
) -> tuple[dict[str, Any], dict[str, dict[str, dict[str, float | None]]]]:
    """One table's DVC metrics: our rows, and its reference rows apart (they are the same in every table).

    Headline gallery mode only, as row -> ``<dataset>_<setting>`` -> the mean R1 and mAP over seeds (%), and for a
    compared row its seed-level difference from the table's ``compare_to`` row (``R1_vs_ref``, ``mAP_vs_ref``).
    Spreads, intervals, p-values, seed counts and the other gallery modes are in ``<table>.csv``.
    """
    names = {spec["label"]: name for name, spec in (params.get("references") or {}).items()}
    ours: dict[str, Any] = {}
    references: dict[str, dict[str, dict[str, float | None]]] = {}
    for record in frame.to_dict("records"):
        if record["Source"] == "quoted" or str(record["Gallery"]).split("-shot")[0] != HEADLINE_MODE:
            continue
        values: dict[str, float | None] = {label: _rounded(record[f"{label} ours"]) for label in METRICS}
        for label in METRICS:
            if _value(record.get(f"{label} vs ref")) is not None:
                values[f"{label}_vs_ref"] = _rounded(record[f"{label} vs ref"])
        row = str(record[heading(table)])
        where = f"{record['Dataset']}_{record['Setting']}"
        if record["Source"] == "ours":
            ours.setdefault(row, {})[where] = values
        else:
            references.setdefault(names.get(row, row), {})[where] = values
    return ours, references


def summary_metrics(params: dict[str, Any], frames: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """``summary.json``: ``references`` (each reference row once) and, per table, our rows (:func:`summary_entry`)."""
    summary: dict[str, Any] = {"references": {}}
    for table, frame in frames.items():
        summary[table], references = summary_entry(params, frame, table)
        for name, cells in references.items():
            for where, values in cells.items():
                seen = summary["references"].setdefault(name, {}).setdefault(where, values)
                if seen != values:
                    raise RuntimeError(f"reference row {name} ({where}) differs between tables: {seen} != {values}")
    return summary


def write_all(
    params: dict[str, Any], frames: dict[str, pd.DataFrame], out_dir: Path, verdict: pd.DataFrame | None = None
) -> None:
    # One set: a full disk must not leave some tables new and others old with nothing to tell them apart.
    files = {}
    for table, frame in frames.items():
        title = f"{params['tables'][table]['title']} [{profile_caption(params)}]"
        note = statistics_note(params, table, frame)
        shown = display_table(frame, table)
        files[f"{table}.csv"] = frame.to_csv(index=False, float_format="%.4f")
        files[f"{table}.md"] = to_markdown(shown, frame, title, note)
        files[f"{table}.tex"] = to_latex(shown, frame, title, note, table)
        files[f"{table}.html"] = to_html(shown, frame, title, note)
    if verdict is not None:
        files["verdict.csv"] = verdict.to_csv(index=False, float_format="%.4f")
        # Not in summary.json: DVC's metrics are numbers, and the verdict's words are in these two files.
        files["verdict.md"] = verdict_markdown(verdict, profile_caption(params))
    files["summary.json"] = json.dumps(summary_metrics(params, frames), indent=2, sort_keys=True) + "\n"
    write_file_set(out_dir, files)
