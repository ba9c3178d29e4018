"""The paper's tables rebuilt from our runs, beside the paper's own numbers, with statistics.

For every table cell of ``params.yaml`` the per-seed metrics files written by ``spcreid evaluate``
(``<metrics-dir>/<dataset>/<experiment>/seed<N>.json``, read by :mod:`spcreid.evaluation.metrics_file`)
are checked (:mod:`spcreid.report.run_results`), converted to %, and summarised as mean and sample
standard deviation over the profile's seeds, one row per gallery mode the files hold (PRCC: multi-shot,
the headline that is compared with the paper, and single-shot over trials). A table with ``compare_to``
compares every row with that row, with the training seed as the unit and Holm's adjustment over the table's
comparisons (:mod:`spcreid.report.seed_level`).
The reference rows of ``params.yaml: references`` follow in their own block.

The paper's values live once, in ``<paper-dir>/<table>.csv`` (columns ``row,dataset,setting,rank1,mAP,
source``; ``source`` is ``paper`` for Sync-Person-Cloud's own numbers and ``quoted`` for the literature
rows the paper copied into its Table 1). ``diff`` is always ours - paper.

Every table has the same long layout, so one builder serves all four; the writers are in
:mod:`spcreid.report.table_writers`, and what both use in :mod:`spcreid.report.table_layout`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from spcreid.config.experiments import (
    BOUND_TITLES,
    Run,
    method_config,
    profile,
    reference_seeds,
    references,
    table_cells,
)
from spcreid.errors import SpcreidError
from spcreid.report.run_results import (
    METRICS,
    RunStore,
    cell_runs,
    modes_of,
    paired_arrays,
    summarise,
)
from spcreid.report.seed_level import SeedLevelResult, adjust_family, seed_level_test
from spcreid.report.table_layout import CHECK, HEADLINE_MODE, STATISTICS, heading
from spcreid.report.table_writers import write_all
from spcreid.report.verdict import build_verdict, paper_values

PAPER_COLUMNS = ("row", "dataset", "setting", "rank1", "mAP", "source")
PAPER_SOURCES = ("paper", "quoted")
PAPER_KEYS = {"R1": "rank1", "mAP": "mAP"}
# Table 2 marks the components of each row (Ca: augmentation, Ci: self-identity loss, Cs: sampling).
COMPONENT_TABLES = ("table2",)
SOURCES = ("quoted", "ours", BOUND_TITLES["upper"], BOUND_TITLES["lower"])
TEST_SEED = 0


def gallery_label(mode: str, trials: int | None) -> str:
    if mode == "multi":
        return "multi-shot"
    return f"{mode}-shot ({trials} trials)" if trials else f"{mode}-shot"


def read_paper_table(paper_dir: str | os.PathLike, table: str) -> pd.DataFrame:
    path = Path(paper_dir) / f"{table}.csv"
    if not path.is_file():
        raise SpcreidError(f"{path} not found: the paper's values of {table} belong there (see --paper-dir)")
    try:
        frame = pd.read_csv(path, dtype={"row": str, "dataset": str, "setting": str, "source": str})
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise SpcreidError(
            f"{path} is not a readable CSV ({type(exc).__name__}); fix it or check it out from git"
        ) from exc
    missing = [column for column in PAPER_COLUMNS if column not in frame.columns]
    if missing:
        raise SpcreidError(f"{path}: missing column(s) {missing}; expected {list(PAPER_COLUMNS)}")
    # The paper's figures are percentages: text would stop the diff with a traceback, 2960 would be a silent typo.
    for column in PAPER_KEYS.values():
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame[(values.isna() & frame[column].notna()) | (values < 0) | (values > 100)]
        if len(bad):
            first = bad.iloc[0]
            raise SpcreidError(
                f"{path}: row '{first['row']}' ({first['dataset']}, {first['setting']}) has {column} = "
                f"'{first[column]}', not a percentage in [0, 100]; fix it (an empty cell if the paper gives none)"
            )
        frame[column] = values
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


def _runs(dataset: str, experiment: str, seeds: list[int]) -> list[Run]:
    return [Run(dataset, experiment, int(seed)) for seed in seeds]


def _numbers(summary: dict[str, Any], paper: Any = None) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for label, key in PAPER_KEYS.items():
        mine = summary[label]
        theirs = _value(getattr(paper, key)) if paper is not None else None
        record.update(
            {
                f"{label} ours": mine,
                f"{label} ours std": summary[f"{label} std"],
                f"{label} trials std": summary[f"{label} trials std"],
                f"{label} paper": theirs,
                f"{label} diff": mine - theirs if mine is not None and theirs is not None else None,
            }
        )
    return record | {"Seeds": summary["seeds"]}


def _paired_results(
    store: RunStore, row: list[Run], reference: list[Run], setting: str, mode: str
) -> tuple[dict[str, SeedLevelResult], str] | None:
    """Per metric, the seed-level comparison of a row with its reference row, and what was compared."""
    pairs = paired_arrays(store, row, reference, setting, mode)
    if not pairs:
        return None
    results = {label: seed_level_test(pairs[label], seed=TEST_SEED) for label in METRICS}
    return results, f"{len(pairs['R1'])} seeds x {pairs['R1'][0][0].size} queries"


def _family_columns(results: list[dict[str, SeedLevelResult]]) -> list[dict[str, Any]]:
    """The statistic columns of one family (a table's compared rows in one gallery mode), per metric.

    Holm adjusts the family's seed-level p-values; the adjusted interval is the Bonferroni-level two-stage
    bootstrap interval (1 - 0.05 / m), and the minimum detectable effect is at that level too, so that a verdict
    read from the adjusted interval knows the size it could have seen (docs/EVALUATION.md, "Statistics").
    """
    columns: list[dict[str, Any]] = [{} for _ in results]
    for label in METRICS:
        members = [result[label] for result in results]
        for out, r, adjusted in zip(columns, members, adjust_family(members)):
            out.update(
                {
                    f"{label} vs ref": r.diff,
                    f"{label} vs ref low": r.low,
                    f"{label} vs ref high": r.high,
                    f"{label} p": r.p,
                    f"{label} p Holm": adjusted.p_holm,
                    f"{label} vs ref adj low": adjusted.low,
                    f"{label} vs ref adj high": adjusted.high,
                    f"{label} seed sd": r.sd,
                    f"{label} MDE": adjusted.mde,
                    f"{label} query p": r.query_p,
                    "Family": adjusted.size,
                }
            )
    return columns


def build_table(
    params: dict[str, Any],
    table: str,
    metrics_dir: str | os.PathLike,
    paper_dir: str | os.PathLike,
    allow_missing: bool = False,
    store: RunStore | None = None,
) -> pd.DataFrame:
    """One table as numbers: quoted literature rows (paper only), ours per gallery mode, then references."""
    if table not in params["tables"]:
        raise SpcreidError(f"params.yaml has no table '{table}' (tables: {sorted(params['tables'])})")
    store = store or RunStore(Path(metrics_dir), params["profile"], allow_missing)
    spec = params["tables"][table]
    seeds = [int(seed) for seed in profile(params)["seeds"]]
    paper = read_paper_table(paper_dir, table)
    paper_by_key = {(r.row, r.dataset, r.setting): r for r in paper.itertuples(index=False)}
    name = heading(table)
    context = {"Profile": params["profile"]}
    records = []
    for r in paper[paper["source"] == "quoted"].itertuples(index=False):
        record = {name: r.row, **context, "Source": "quoted", "Dataset": r.dataset, "Setting": r.setting, "Gallery": ""}
        for label, key in PAPER_KEYS.items():
            record[f"{label} paper"] = _value(getattr(r, key))
        records.append(record | {"Seeds": 0})

    cells = [cell for cell in table_cells(params) if cell["table"] == table]
    compare_to = spec.get("compare_to")
    reference_cells = {(c["dataset"], c["setting"]): c for c in cells if c["row"] == compare_to}
    ours_rows = []
    family_members: dict[str, list[tuple[dict[str, Any], dict[str, SeedLevelResult]]]] = {}
    for cell in tqdm(cells, desc=table, unit="cell", disable=None):
        runs = _runs(cell["dataset"], cell["experiment"], seeds)
        for mode in modes_of(store, runs, cell["setting"]) or [HEADLINE_MODE]:
            usable = cell_runs(store, runs, cell["setting"], mode)
            theirs = (
                paper_by_key.get((cell["row"], cell["dataset"], cell["setting"])) if mode == HEADLINE_MODE else None
            )
            record = {
                name: cell["row"],
                **context,
                "Source": "ours",
                "Dataset": cell["dataset"],
                "Setting": cell["setting"],
                "Gallery": gallery_label(mode, usable.trials),
            }
            if table in COMPONENT_TABLES:
                record |= _components(params, cell["experiment"])
            record |= _numbers(summarise(usable), theirs)
            if compare_to is not None:
                target = reference_cells.get((cell["dataset"], cell["setting"]))
                if target is not None and cell["row"] == compare_to:
                    record["Compared"] = "reference row"
                elif target is not None:
                    kept = [run for run in runs if run.seed in usable.seeds]
                    compared = _paired_results(
                        store, kept, _runs(target["dataset"], target["experiment"], seeds), cell["setting"], mode
                    )
                    if compared is not None:
                        record["Compared"] = compared[1]
                        family_members.setdefault(mode, []).append((record, compared[0]))
            ours_rows.append((mode != HEADLINE_MODE, record))
    # Multiplicity: each gallery mode's compared rows of this table are one family.
    for members in family_members.values():
        for (record, _), columns in zip(members, _family_columns([results for _, results in members])):
            record |= columns
    records += [record for _, record in sorted(ours_rows, key=lambda item: item[0])]

    where = list(dict.fromkeys((cell["dataset"], cell["setting"]) for cell in cells))
    reference_rows = []
    for ref_name, ref in references(params).items():
        for dataset, setting in where:
            runs = _runs(dataset, ref_name, reference_seeds(params, ref_name))
            for mode in modes_of(store, runs, setting) or [HEADLINE_MODE]:
                usable = cell_runs(store, runs, setting, mode)
                record = {
                    name: ref["label"],
                    **context,
                    "Source": BOUND_TITLES[ref["bound"]],
                    "Dataset": dataset,
                    "Setting": setting,
                    "Gallery": gallery_label(mode, usable.trials),
                }
                # One block per bound (upper first), the headline mode's rows first within it.
                order = (SOURCES.index(record["Source"]), mode != HEADLINE_MODE)
                reference_rows.append((order, record | _numbers(summarise(usable))))
    records += [record for _, record in sorted(reference_rows, key=lambda item: item[0])]

    frame = pd.DataFrame.from_records(records)
    if table in COMPONENT_TABLES:
        frame[["Ca", "Ci", "Cs"]] = frame[["Ca", "Ci", "Cs"]].fillna("")
    return frame.reindex(columns=_column_order(frame, table))


def _column_order(frame: pd.DataFrame, table: str) -> list[str]:
    first = [
        heading(table),
        *(["Ca", "Ci", "Cs"] if table in COMPONENT_TABLES else []),
        "Profile",
        "Source",
        "Dataset",
        "Setting",
        "Gallery",
    ]
    numbers = [
        f"{label} {suffix}" for label in METRICS for suffix in ("ours", "ours std", "trials std", "paper", "diff")
    ]
    numbers += [f"{label} {suffix}" for label in METRICS for suffix in STATISTICS]
    ordered = [c for c in first if c in frame.columns] + [c for c in numbers if c in frame.columns]
    # Empty statistic columns (no single-shot rows, no compared rows) say nothing: leave them out.
    optional = ("trials std", *STATISTICS)
    ordered = [c for c in ordered if not (c.endswith(optional) and frame[c].isna().all())]
    tail = [c for c in ("Compared", "Family", "Seeds") if c in frame.columns and not frame[c].isna().all()]
    return ordered + tail


def build_tables(
    params: dict[str, Any], metrics_dir: str | os.PathLike, paper_dir: str | os.PathLike, allow_missing: bool = False
) -> dict[str, pd.DataFrame]:
    store = RunStore(Path(metrics_dir), params["profile"], allow_missing)
    return {
        table: build_table(params, table, metrics_dir, paper_dir, allow_missing, store)
        for table in sorted(params["tables"])
    }


def write_tables(
    params: dict[str, Any],
    metrics_dir: str | os.PathLike,
    paper_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    allow_missing: bool = False,
) -> dict[str, pd.DataFrame]:
    """Every table of params.yaml as CSV (numbers), Markdown, LaTeX and HTML, summary.json, and the verdict on
    the paper's claims (verdict.csv, verdict.md; spcreid.report.verdict)."""
    # Build everything before writing anything: a bad metrics file must not leave half the tables new.
    store = RunStore(Path(metrics_dir), params["profile"], allow_missing)
    frames = {
        table: build_table(params, table, metrics_dir, paper_dir, allow_missing, store)
        for table in sorted(params["tables"])
    }
    paper = paper_values(params, {table: read_paper_table(paper_dir, table) for table in params["tables"]})
    verdict = build_verdict(params, store, paper)
    write_all(params, frames, Path(out_dir), verdict)
    return frames
