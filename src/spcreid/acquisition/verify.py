"""Check a local dataset copy before spending GPU hours on it.

Every check runs even after an earlier one failed, so one pass lists all that is wrong: the layout,
each file name that does not parse, each count that differs from the published one, each image (and
parsing map) that does not decode.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from spcreid.data.images import image_problem, parsing_map_problem, run_checks
from spcreid.data.registry import Counts, default_parsing_root, get_spec, layout_problems, parsing_path


@dataclass
class VerifyReport:
    dataset: str
    root: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: Counts = field(default_factory=dict)
    expected_counts: Counts | None = None
    images_checked: int = 0
    parsing_maps_checked: int = 0
    # The workflow's `verify.strict_counts: false`: differing counts were accepted, and which ones.
    count_mismatch_allowed: bool = False
    count_mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def count_groups(groups: dict[str, pd.DataFrame]) -> Counts:
    return {name: {"ids": int(g["pid"].nunique()), "images": int(len(g))} for name, g in groups.items()}


def identity_overlap(frame: pd.DataFrame) -> list[int]:
    """Person ids that appear both among the train images and among the query/gallery images."""
    train = set(frame.loc[frame["role"] == "train", "pid"])
    test = set(frame.loc[frame["role"].isin(["query", "gallery"]), "pid"])
    return sorted(int(pid) for pid in train & test)


def count_mismatches(counts: Counts, expected: Counts) -> list[str]:
    """One message per differing figure, e.g. ``train: 149 ids, expected 150``."""
    messages = []
    for group, figures in expected.items():
        for what, want in figures.items():
            have = counts.get(group, {}).get(what, 0)
            if have != want:
                messages.append(f"{group}: {have} {what}, expected {want}")
    return messages


def verify_dataset(
    name: str,
    root: str | os.PathLike,
    *,
    parsing_root: str | os.PathLike | None = None,
    check_counts: bool = True,
    expected_counts: Counts | None = None,
    check_images: bool = True,
    workers: int = 4,
    allow_identity_overlap: bool = False,
    allow_count_mismatch: bool = False,
) -> VerifyReport:
    """Run every check on dataset ``name`` under ``root``; the report lists all problems found.

    ``expected_counts`` replaces the published counts (tests use tiny trees); counts of a dataset
    whose published figures are approximate only produce warnings. ``allow_count_mismatch`` turns exact
    count mismatches into warnings too, for a legitimately different copy, and records them in the report.
    Identities shared by train and query/gallery are a problem; ``allow_identity_overlap`` makes them a
    warning for datasets without published splits (toy or custom trees), never for the published ones.
    """
    spec = get_spec(name)
    root = Path(root).absolute()
    report = VerifyReport(dataset=name, root=str(root))
    problems, warnings = layout_problems(spec, root)
    report.problems += problems
    report.warnings += warnings
    dataset_dir = root / spec.dataset_dir
    if not dataset_dir.is_dir() or not any(dataset_dir.iterdir()):
        return report  # nothing below can be checked

    rows, name_problems = spec.scan(dataset_dir)
    report.problems += name_problems
    frame = pd.DataFrame(rows, columns=["path", "pid", "camid", "clothes_id", "split", "role"])
    report.counts = count_groups(spec.count_groups(frame))
    if not rows:
        report.problems.append(f"no images found under {dataset_dir}")

    expected = expected_counts if expected_counts is not None else spec.published_counts
    if check_counts and expected is not None:
        report.expected_counts = expected
        mismatches = count_mismatches(report.counts, expected)
        report.count_mismatches = mismatches
        if allow_count_mismatch:
            report.count_mismatch_allowed = True
            report.warnings += [f"{m} (accepted: count mismatches allowed)" for m in mismatches]
        elif spec.counts_exact or expected_counts is not None:
            report.problems += mismatches
        else:
            report.warnings += [f"{m} (approximate figure)" for m in mismatches]
    if check_counts and expected is None:
        report.warnings.append(f"{spec.title} has no published counts; counts not checked")

    overlap = identity_overlap(frame)
    if overlap:
        message = (
            f"{len(overlap)} identities are both in train and in query/gallery (pids {overlap[:10]}"
            f"{' ...' if len(overlap) > 10 else ''}); training on test identities inflates every metric: "
            f"remove them from {dataset_dir} train"
        )
        if allow_identity_overlap and spec.published_counts is None:
            report.warnings.append(message + " (allowed by --allow-identity-overlap)")
        elif allow_identity_overlap:
            report.problems.append(
                message + f" ({spec.title}'s published splits are disjoint, so --allow-identity-overlap does not apply)"
            )
        else:
            hint = "" if spec.published_counts is not None else ", or pass --allow-identity-overlap for a custom split"
            report.problems.append(message + hint)

    if parsing_root is None:
        parsing_root = default_parsing_root(spec, root)
    if parsing_root is not None:
        parsing_root = Path(parsing_root).absolute()
        pairs = [(parsing_path(row["path"], root, parsing_root), row["path"]) for row in rows]
        report.problems += run_checks(pairs, parsing_map_problem, "parsing maps", workers, star=True)
        report.parsing_maps_checked = len(pairs)

    if check_images:
        paths = [row["path"] for row in rows]
        report.problems += run_checks(paths, image_problem, f"decoding {spec.title}", workers)
        report.images_checked = len(paths)
    return report
