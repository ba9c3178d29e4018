"""dvc.yaml drives the Snakemake DAG; DVC-managed inputs do not make Snakemake rerun after a checkout."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from workflow_helpers import REPO

DVC = str(Path(sys.executable).with_name("dvc"))


def test_stages_run_snakemake_targets_that_exist():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    snakefile = (REPO / "Snakefile").read_text() + "".join(
        p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))
    for name, stage in stages.items():
        assert stage["cmd"].startswith("snakemake "), name
        for target in re.findall(r"(?<=\s)([a-z_]+)(?=\s|$)", stage["cmd"].split("--report")[0]):
            if target not in ("all",):
                assert re.search(rf"^rule {target}:", snakefile, re.M), (name, target)


def test_runs_stage_depends_on_the_code_and_every_params_section():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    runs = stages["runs"]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert set(runs["params"]) == set(params)
    assert {"Snakefile", "workflow/rules", "src/spcreid"} <= set(runs["deps"])
    tables = stages["tables"]
    assert "results/${profile}/metrics" in tables["deps"] and "results/published" in tables["deps"]
    assert [next(iter(m)) for m in tables["metrics"]] == ["results/${profile}/tables/summary.json"]
    # Outputs managed by Snakemake stay in place while DVC runs it (persist), so finished jobs are kept.
    for out in runs["outs"] + tables["outs"]:
        (path, options), = out.items()
        assert options["persist"] is True and options["cache"] is False, path


def test_dvc_accepts_the_pipeline():
    result = subprocess.run([DVC, "dag", "--md"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "runs" in result.stdout and "tables" in result.stdout and "report" in result.stdout


def test_dvc_managed_inputs_are_read_through_ancient():
    rules = (REPO / "workflow/rules").glob("*.smk")
    text = "\n".join(p.read_text() for p in rules)
    # Downloaded weights and raw datasets are what `dvc pull` restores with fresh mtimes.
    weights = list(re.finditer(r'^\s*(\w+=)?(ancient\()?f"\{DATA\}/weights/[^"]+"', text, re.M))
    assert len(weights) >= 5
    for match in weights:
        if not match[2]:
            # a rule's own output is fine; only inputs need ancient()
            assert text[: match.start()].rstrip().endswith("output:"), match[0]
    common = (REPO / "workflow/rules/common.smk").read_text()
    assert "return ancient(raw_dataset_dir(wildcards.key))" in common
    assert "return ancient(weights)" in common
