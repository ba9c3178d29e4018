"""The paper's claims, each confirmed, contradicted or left unresolved by our runs, with the evidence.

``params.yaml: claims`` lists them: a claim compares two trained experiments on one dataset and setting and says
on which side the paper puts ``row - reference`` (Table 2: the full model above the baseline; Table 4: eps 0.4
above every other eps, ...). Claims of one ``family`` share the multiplicity adjustment. Per claim and metric,
with the training seed as the unit (spcreid.report.seed_level, headline gallery mode):

* **confirmed**: the family-adjusted (Bonferroni, 1 - 0.05/m) two-stage bootstrap interval excludes 0 on the
  paper's side and the Holm-adjusted t-test p is below 0.05;
* **contradicted**: the same on the other side;
* **unresolved**: otherwise. The minimum detectable effect at the adjusted level says how large a true
  difference the runs could have shown: a non-detection is not a refutation.

Both criteria are asked for because with few seeds a percentile bootstrap is too narrow (it cannot show more
spread than the seeds it resamples), while the t-test accounts for the seed count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from spcreid.config.experiments import Run, profile
from spcreid.report.run_results import METRICS, RunStore, paired_arrays
from spcreid.report.seed_level import ALPHA, adjust_family, seed_level_test

HEADLINE_MODE = "multi"
SIDES = {"greater": 1, "less": -1}
TEST_SEED = 0
COLUMNS = [
    "Family",
    "Claim",
    "Row",
    "Reference",
    "Dataset",
    "Setting",
    "Metric",
    "Paper",
    "Ours",
    "Adjusted low",
    "Adjusted high",
    "p",
    "p Holm",
    "MDE",
    "Seeds",
    "Verdict",
]


@dataclass(frozen=True)
class Claim:
    claim: str
    family: str
    dataset: str
    setting: str
    row: str
    reference: str
    paper_side: str


def claims_of(params: dict[str, Any]) -> list[Claim]:
    """The declared claims (``check_params`` has made sure each compares two experiments the tables train)."""
    return [Claim(**spec) for spec in params.get("claims") or []]


def decide(side: int, low: float, high: float, p_holm: float | None) -> str:
    """The verdict of one claim from its adjusted interval and Holm p (``side``: +1 paper above, -1 below)."""
    if p_holm is None or p_holm >= ALPHA:
        return "unresolved"
    if low > 0 or high < 0:
        return "confirmed" if (low > 0) == (side > 0) else "contradicted"
    return "unresolved"


def build_verdict(params: dict[str, Any], store: RunStore, paper: dict[tuple[str, str], float]) -> pd.DataFrame:
    """One row per claim and metric. ``paper``: (experiment, metric) -> the paper's value of that cell (or absent)."""
    seeds = [int(seed) for seed in profile(params)["seeds"]]
    claims = claims_of(params)
    rows: list[dict[str, Any]] = []
    for family in dict.fromkeys(claim.family for claim in claims):
        members = [claim for claim in claims if claim.family == family]
        for label in METRICS:
            results = []
            for claim in members:
                pairs = paired_arrays(
                    store,
                    [Run(claim.dataset, claim.row, s) for s in seeds],
                    [Run(claim.dataset, claim.reference, s) for s in seeds],
                    claim.setting,
                    HEADLINE_MODE,
                )
                results.append(seed_level_test(pairs[label], seed=TEST_SEED) if pairs else None)
            for claim, result, adjusted in zip(members, results, adjust_family(results, ALPHA)):
                row = {
                    "Family": family,
                    "Claim": claim.claim,
                    "Row": claim.row,
                    "Reference": claim.reference,
                    "Dataset": claim.dataset,
                    "Setting": claim.setting,
                    "Metric": label,
                    "Paper": _paper_difference(paper, claim, label),
                    "Seeds": result.seeds if result else 0,
                }
                if result is None:
                    rows.append(row | {"Verdict": "no runs"})
                    continue
                rows.append(
                    row
                    | {
                        "Ours": result.diff,
                        "Adjusted low": adjusted.low,
                        "Adjusted high": adjusted.high,
                        "p": result.p,
                        "p Holm": adjusted.p_holm,
                        "MDE": adjusted.mde,
                        "Verdict": decide(SIDES[claim.paper_side], adjusted.low, adjusted.high, adjusted.p_holm),
                    }
                )
    return pd.DataFrame.from_records(rows, columns=COLUMNS)


def _paper_difference(paper: dict[tuple[str, str], float], claim: Claim, label: str) -> float | None:
    mine, theirs = paper.get((claim.row, label)), paper.get((claim.reference, label))
    return None if mine is None or theirs is None else mine - theirs


def paper_values(params: dict[str, Any], paper_frames: dict[str, pd.DataFrame]) -> dict[tuple[str, str], float]:
    """(experiment, metric) -> the paper's number for the cell that experiment fills (first table that has it)."""
    values: dict[tuple[str, str], float] = {}
    for table, spec in params["tables"].items():
        frame = paper_frames.get(table)
        if frame is None:
            continue
        for cell in spec["rows"]:
            match = frame[
                (frame["row"] == cell["row"])
                & (frame["dataset"] == cell["dataset"])
                & (frame["setting"] == cell["setting"])
                & (frame["source"] == "paper")
            ]
            for label, column in (("R1", "rank1"), ("mAP", "mAP")):
                if not match.empty and pd.notna(match.iloc[0][column]):
                    values.setdefault((cell["experiment"], label), float(match.iloc[0][column]))
    return values


def verdict_markdown(frame: pd.DataFrame, caption: str) -> str:
    """The verdict as a Markdown page: one table per metric, then how to read it."""

    def number(x: Any, signed: bool = True) -> str:
        return "-" if x is None or pd.isna(x) else (f"{x:+.1f}" if signed else f"{x:.1f}")

    def p_text(x: Any) -> str:
        return "-" if x is None or pd.isna(x) else ("<0.001" if x < 0.001 else f"{x:.3f}")

    lines = [f"**Verdict on the paper's claims [{caption}]**", ""]
    for label in METRICS:
        part = frame[frame["Metric"] == label]
        lines += [f"*{label}* (row - reference, percentage points)", ""]
        lines += ["| Family | Claim | Paper | Ours [adjusted interval] | p (Holm) | MDE | Verdict |"]
        lines += ["| --- | --- | --- | --- | --- | --- | --- |"]
        for r in part.to_dict("records"):
            interval = (
                "-"
                if pd.isna(r["Ours"])
                else (f"{r['Ours']:+.1f} [{r['Adjusted low']:+.1f}, {r['Adjusted high']:+.1f}]")
            )
            lines.append(
                f"| {r['Family']} | {r['Claim']} | {number(r['Paper'])} | {interval} | {p_text(r['p'])} "
                f"({p_text(r['p Holm'])}) | {number(r['MDE'], signed=False)} | **{r['Verdict']}** |"
            )
        lines.append("")
    lines.append(
        "Seed as the unit: Ours is the mean over seeds of the paired difference; the interval is the two-stage "
        "bootstrap (seeds, then queries) at the family-adjusted level 1 - 0.05/m (m: the family's claims); p: "
        "paired t-test over seeds, Holm-adjusted within the family. Confirmed / contradicted: the adjusted "
        "interval excludes 0 on the paper's / the other side and the Holm p is below 0.05; otherwise unresolved. "
        "MDE: the smallest true difference detectable with 80% power at the adjusted level, from the seeds' sd: "
        "an unresolved claim with a large MDE was not tested with enough seeds to refute it."
    )
    return "\n".join(lines) + "\n"
