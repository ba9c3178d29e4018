"""What the workflow tells its user around a run: notes while the DAG is built, a summary when it ends.

A run of a hundred jobs ended with Snakemake's own "N of N steps done" and nothing saying where the tables went;
a paper dry run planned a VC-Clothes download that can only fail, since the archive is given out on request.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def request_only_notes(datasets: dict[str, Any], config: dict[str, Any], raw_folder: dict[str, str]) -> list[str]:
    """One note per dataset that must be fetched from an archive obtained by request and has none configured."""
    # lazy: the Snakefile imports this module; start-up time
    from spcreid.acquisition.download import SOURCES

    notes = []
    for key, spec in datasets.items():
        source = SOURCES.get(spec.get("source"))
        if (
            source is None
            or source.gdrive_id
            or spec.get("archive")
            or "--archive" in str(config.get(f"fetch_{source.name}", ""))
        ):
            continue
        if os.path.isdir(os.path.join(str(spec.get("root")), raw_folder.get(source.name, ""))):
            continue
        notes.append(
            f"note: datasets.{key} ({source.name}) is given out on request only ({source.request_page}); its "
            f"fetch_data job fails until you pass the archive: --config fetch_{source.name}='--archive PATH' or "
            f"datasets.{key}.archive in params.yaml (docs/DATASETS.md)"
        )
    return notes


def print_notes(notes: list[str]) -> None:
    for note in notes:
        print(note, file=sys.stderr)


def summary(profile: str, results: str, work: str) -> list[str]:
    """Where this profile's outputs are, with what exists now."""
    lines = [f"spcreid: the {profile} profile's outputs"]
    tables = sorted(Path(results, "tables").glob("*.md"))
    if tables:
        lines.append(f"  tables:     {results}/tables/ ({', '.join(p.name for p in tables)}; also .csv, .tex, .html)")
    plots = [p for p in Path(results, "plots").glob("*") if p.is_file()]
    if plots:
        lines.append(f"  plots:      {results}/plots/ ({len(plots)} files: PNG, SVG, PDF, CSV)")
    metrics = list(Path(results, "metrics").rglob("seed*.json"))
    if metrics:
        lines.append(f"  metrics:    {results}/metrics/ ({len(metrics)} runs)")
    if Path(work, "benchmarks").is_dir():
        lines.append(f"  job times:  {work}/benchmarks/;  logs: {work}/logs/")
    option = "" if profile == "embedded" else f" --config profile={profile}"
    lines.append(f"  HTML report: snakemake --report {results}/report.html{option}")
    return lines


def print_summary(profile: str, results: str, work: str) -> None:
    print("\n".join(summary(profile, results, work)), file=sys.stderr)
