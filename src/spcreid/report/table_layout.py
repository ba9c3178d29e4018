"""What the table builder (:mod:`spcreid.report.tables`) and its writers (:mod:`spcreid.report.table_writers`)
agree on: row headings, the component mark, the headline gallery mode, the statistic columns and the caption.

Kept apart so that the writers need not import the builder, which imports them.
"""

from __future__ import annotations

from typing import Any

from spcreid.config.experiments import profile

DATASET_TITLES = {"prcc": "PRCC", "vcclothes": "VC-Clothes", "ltcc": "LTCC"}
# The first column's heading, as the paper names it.
ROW_HEADINGS = {"table1": "Method", "table2": "Method", "table3": "Sampling", "table4": "eps"}
# Table 2 marks the components of each row with it (Ca: augmentation, Ci: self-identity loss, Cs: sampling).
CHECK = "✓"
# The mode compared with the paper: every PRCC cell of the paper has R1 > mAP, which multi-shot gives and
# single-shot (mAP >= R1 by construction with one true match per identity) cannot (docs/EVALUATION.md).
HEADLINE_MODE = "multi"
# The comparison columns of a compared row, per metric (spcreid.report.seed_level): seed-level effect and its
# two-stage bootstrap 95% interval, t-test p and its Holm adjustment, the family-adjusted interval, the seeds' sd of
# the difference, the minimum detectable effect at the adjusted level, and the secondary query-level p.
STATISTICS = (
    "vs ref",
    "vs ref low",
    "vs ref high",
    "p",
    "p Holm",
    "vs ref adj low",
    "vs ref adj high",
    "seed sd",
    "MDE",
    "query p",
)


def heading(table: str) -> str:
    return ROW_HEADINGS.get(table, "Row")


def profile_caption(params: dict[str, Any]) -> str:
    """Which data produced "ours": on the embedded profile the dataset columns are toy stand-ins."""
    datasets = profile(params)["datasets"]
    stand_ins = [DATASET_TITLES.get(key, key) for key, spec in datasets.items() if spec["source"] == "toy"]
    caption = f"profile {params['profile']}, seeds {', '.join(map(str, profile(params)['seeds']))}"
    if profile(params).get("purpose"):
        caption += f" ({profile(params)['purpose']})"
    if stand_ins:
        caption += f"; ours on procedural toy stand-ins for {', '.join(stand_ins)}"
    return caption
