"""dvc.yaml drives the Snakemake DAG; DVC-managed inputs do not make Snakemake rerun after a checkout."""

from __future__ import annotations

import json
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
        p.read_text() for p in (REPO / "workflow/rules").glob("*.smk")
    )
    for name, stage in stages.items():
        assert stage["cmd"].startswith("snakemake "), name
        for target in re.findall(r"(?<=\s)([a-z_]+)(?=\s|$)", stage["cmd"].split("--report")[0]):
            if target not in ("all",):
                # A rule of its own, or a variant of another one (`use rule tables as plots with:`).
                assert re.search(rf"^(rule {target}:|use rule \w+ as {target} with:)", snakefile, re.M), (name, target)


def test_runs_stage_depends_on_the_code_and_every_params_section():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    runs = stages["runs"]
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    # Every section that can change a run; the claims only feed the verdict, written by the tables stage.
    assert set(runs["params"]) == set(params) - {"claims"}
    assert "claims" in stages["tables"]["params"]
    assert {"Snakefile", "workflow/rules", "src/spcreid"} <= set(runs["deps"])
    tables = stages["tables"]
    assert "results/${profile}/metrics" in tables["deps"] and "results/published" in tables["deps"]
    # The summary lies inside the tables folder (a stage output), so it is declared as a top-level metric.
    assert yaml.safe_load((REPO / "dvc.yaml").read_text())["metrics"] == ["results/${profile}/tables/summary.json"]
    # Outputs managed by Snakemake stay in place while DVC runs it (persist), so finished jobs are kept.
    for out in runs["outs"] + tables["outs"]:
        ((path, options),) = out.items()
        assert options["persist"] is True and options["cache"] is False, path


def test_dvc_accepts_the_pipeline():
    result = subprocess.run([DVC, "dag", "--md"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "runs" in result.stdout and "tables" in result.stdout and "report" in result.stdout


def test_dvc_managed_inputs_are_read_through_ancient():
    rules = (REPO / "workflow/rules").glob("*.smk")
    text = "\n".join(p.read_text() for p in rules)
    # Downloaded weights and raw datasets are what `dvc pull` restores with fresh mtimes.
    weights = list(re.finditer(r'^\s*(\w+=|return )?(ancient\()?f"\{DATA\}/weights/[^"]+"', text, re.M))
    assert len(weights) >= 5
    for match in weights:
        if not match[2]:
            # a rule's own output is fine; only inputs need ancient()
            assert text[: match.start()].rstrip().endswith("output:"), match[0]
    common = (REPO / "workflow/rules/common.smk").read_text()
    assert "return ancient(raw_dataset_dir(wildcards.key))" in common
    assert "return ancient(weights)" in common


def test_stage_outputs_are_folders_that_hold_every_rule_output(tmp_path):
    """dvc.yaml does not list the table and plot files a second time: Snakemake's rules are the one list."""
    from workflow_helpers import copy_workflow, snakemake

    dvc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    tables = dvc["stages"]["tables"]
    folders = [next(iter(out)) for out in tables["outs"]]
    assert folders == ["results/${profile}/tables", "results/${profile}/plots"]
    assert set(dvc["stages"]["report"]["deps"]) >= set(folders)
    root = copy_workflow(tmp_path)
    result = snakemake(root, "-n", "--forcerun", "tables", "plots", "--", "tables", "plots")
    assert result.returncode == 0, result.stderr
    blocks = result.stdout.split("\nrule ")[1:]
    outputs = [
        path
        for block in blocks
        if block.split(":")[0] in ("tables", "plots")
        for line in block.splitlines()
        if line.strip().startswith("output: ")
        for path in line.split("output: ", 1)[1].split(", ")
    ]
    assert len(outputs) > 10
    profile = yaml.safe_load((REPO / "params.yaml").read_text())["profile"]
    inside = [f.replace("${profile}", profile) + "/" for f in folders]
    assert all(any(path.startswith(folder) for folder in inside) for path in outputs), outputs
    assert f"results/{profile}/tables/summary.json" in outputs


def test_dvc_metrics_and_plots_read_the_committed_results():
    metrics = subprocess.run([DVC, "metrics", "show", "--json"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert metrics.returncode == 0, metrics.stderr
    shown = json.loads(metrics.stdout)
    profile = yaml.safe_load((REPO / "params.yaml").read_text())["profile"]
    summary = f"results/{profile}/tables/summary.json"
    (workspace,) = shown.values()  # one revision: the workspace

    def leaves(tree, prefix=()):
        # DVC shows numbers only (it drops nulls, e.g. the std of a single seed).
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from leaves(value, (*prefix, key))
            elif value is not None:
                yield (*prefix, key), value

    on_disk = dict(leaves(json.loads((REPO / summary).read_text())))
    assert on_disk and dict(leaves(workspace["data"][summary]["data"])) == on_disk
    plots = subprocess.run([DVC, "plots", "show", "--json"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert plots.returncode == 0, plots.stderr
    (spec,) = json.loads(plots.stdout)["data"]["eps_curve"]
    content = spec["content"]
    encoding = content["encoding"]
    assert encoding["x"]["title"] == "DBSCAN eps (Jaccard distance)" and encoding["y"]["title"] == "score (%)"
    # One colour per series (ours and the paper's, R1 and mAP), not one per revision.
    assert encoding["color"]["field"] == "field" and encoding["color"]["scale"]["scheme"] == "category10"
    series = {row["field"] for row in content["data"]["values"]}
    assert series == {"R1 ours", "mAP ours", "R1 paper", "mAP paper"}
