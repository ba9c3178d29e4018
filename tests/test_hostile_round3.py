"""Hostile inputs and faults of the third round: outputs into input folders, NaN and inf in params, YAML
bombs, out-of-range seeds, encrypted and bomb archives, 16-bit and broken-link images, over-long ids, a
read-only or full disk, leftovers of killed writers.

Each probe runs the real `spcreid` entry point (or `snakemake -n` in a copy of the workflow) and asserts one
error line naming the file or field with what to do, the exit status, and the files left behind. The disk
faults use a small tmpfs (mounted read-only, or filled) and are skipped where mounting is not permitted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import test_engine_train
from hostile_helpers import assert_refused, snapshot, spcreid

toy = test_engine_train.toy
REPO = Path(__file__).resolve().parents[1]
PARAMS = (REPO / "params.yaml").read_text()
PUBLISHED = REPO / "results/published"
EMBEDDED_METRICS = REPO / "results/embedded/metrics"


def make_tables(capsys, params: Path | str, out: Path, *extra):
    return spcreid(
        capsys,
        "make-tables",
        "--params",
        params,
        "--metrics-dir",
        EMBEDDED_METRICS,
        "--paper-dir",
        PUBLISHED,
        "--out",
        out,
        *extra,
    )


def params_with(tmp_path: Path, old: str, new: str) -> Path:
    assert old in PARAMS, old
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS.replace(old, new, 1))
    return path


# ---------------------------------------------------------------------------- outputs into input folders


@pytest.mark.parametrize("command", ["make-tables", "make-plots"])
@pytest.mark.parametrize("where", ["published", "published/sub", "metrics"])
def test_output_into_an_input_folder_is_refused_and_nothing_changes(command, where, tmp_path, capsys):
    # A copy of the real layout: the paper's values and the embedded metrics under one results/ folder.
    results = tmp_path / "results"
    shutil.copytree(PUBLISHED, results / "published")
    shutil.copytree(EMBEDDED_METRICS, results / "metrics")
    before = snapshot(results)
    out = results / where
    outcome = spcreid(
        capsys,
        command,
        "--params",
        REPO / "params.yaml",
        "--metrics-dir",
        results / "metrics",
        "--paper-dir",
        results / "published",
        "--out",
        out,
    )
    assert_refused(outcome, command, f"--out {out}", "must stay as it is")
    assert snapshot(results) == before


def test_output_into_the_repository_published_folder_is_refused(tmp_path, capsys, monkeypatch):
    # The reported case: --out results/published from the repository root, --paper-dir elsewhere.
    monkeypatch.chdir(tmp_path)
    shutil.copytree(PUBLISHED, tmp_path / "results/published")
    paper = tmp_path / "paper"
    shutil.copytree(PUBLISHED, paper)
    before = snapshot(tmp_path / "results")
    outcome = spcreid(
        capsys,
        "make-tables",
        "--params",
        REPO / "params.yaml",
        "--metrics-dir",
        EMBEDDED_METRICS,
        "--paper-dir",
        paper,
        "--out",
        "results/published",
    )
    assert_refused(outcome, "make-tables", "results/published", "the paper's published values")
    assert snapshot(tmp_path / "results") == before


def test_label_quality_output_into_a_run_folder_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    outcome = spcreid(capsys, "make-label-quality", "--runs", run, "--out", run / "plots")
    assert_refused(outcome, "make-label-quality", f"--runs {run}")
    assert not (run / "plots").exists()
