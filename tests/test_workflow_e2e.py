"""The real DAG end to end on a reduced embedded config: toy data -> synthesis -> training -> tables."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

from workflow_helpers import copy_workflow, edit_params, small_toy_sets, snakemake

pytestmark = pytest.mark.slow


def _reduce(params):
    small_toy_sets(params)
    params["profiles"]["embedded"]["train"].update(epochs=1, iters_per_epoch=2, warmup_epochs=0)

    def cell(row, dataset, setting, experiment):
        return dict(row=row, dataset=dataset, setting=setting, experiment=experiment)

    # Four distinct runs behind six cells: the full PRCC model is shared by every table.
    params["tables"] = {
        "table1": {
            "title": "T1",
            "rows": [
                cell("Sync-Person-Cloud", "prcc", "cc", "full"),
                cell("Sync-Person-Cloud", "vcclothes", "sc", "full"),
            ],
        },
        "table2": {
            "title": "T2",
            "rows": [
                cell("Baseline", "prcc", "cc", "baseline"),
                cell("+Ca+Ci+Cs (Sync-Person-Cloud)", "prcc", "cc", "full"),
            ],
        },
        "table3": {"title": "T3", "rows": [cell("Both", "prcc", "cc", "full")]},
        "table4": {
            "title": "T4",
            "rows": [cell("0.4", "prcc", "cc", "full"), cell("0.2", "prcc", "cc", "full_eps0.2")],
        },
    }
    # The claims the reduced tables can test (each must compare two runs they train).
    claims = {claim["claim"]: claim for claim in params["claims"]}
    params["claims"] = [claims["Sync-Person-Cloud beats the baseline"], claims["eps 0.4 beats 0.2"]]


def test_embedded_dag_builds_the_tables_and_resumes_nothing_twice(tmp_path):
    root = copy_workflow(tmp_path)
    edit_params(root, _reduce)
    result = snakemake(root, "--cores", "2", timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]

    runs = sorted(
        p.relative_to(root / "results/embedded/metrics").as_posix()
        for p in (root / "results/embedded/metrics").rglob("*.json")
    )
    # The four distinct runs, and on both datasets of the tables the three reference rows.
    references = [
        f"{key}/{row}"
        for key in ("prcc", "vcclothes")
        for row in ("colour-histogram/seed0.json", "pretrained-start/seed0.json", "supervised/seed1.json")
    ]
    assert runs == sorted(
        ["prcc/baseline/seed1.json", "prcc/full/seed1.json", "prcc/full_eps0.2/seed1.json", "vcclothes/full/seed1.json"]
        + references
    )
    full = json.loads((root / "results/embedded/metrics/prcc/full/seed1.json").read_text())
    table2 = pd.read_csv(root / "results/embedded/tables/table2.csv")
    row = table2[table2["Method"] == "+Ca+Ci+Cs (Sync-Person-Cloud)"].iloc[0]
    assert row["R1 ours"] == pytest.approx(100 * full["cc"]["rank1"], abs=1e-3)
    assert row["R1 diff"] == pytest.approx(row["R1 ours"] - 43.7, abs=1e-3)
    assert row["mAP diff"] == pytest.approx(100 * full["cc"]["mAP"] - 39.8, abs=1e-3)
    table1 = pd.read_csv(root / "results/embedded/tables/table1.csv")
    assert (table1["Source"] == "quoted").sum() > 0 and table1.loc[table1["Source"] == "quoted", "R1 ours"].isna().all()
    verdict = pd.read_csv(root / "results/embedded/tables/verdict.csv")
    assert sorted(set(verdict["Claim"])) == ["Sync-Person-Cloud beats the baseline", "eps 0.4 beats 0.2"]
    assert set(verdict["Verdict"]) == {"unresolved"}  # one seed: no seed-level test
    for name in ("ablation_components.png", "ablation_sampling.png", "eps_curve.png"):
        assert (root / "results/embedded/plots" / name).stat().st_size > 1000
    for log in ("train/prcc/full/seed1.log", "evaluate/prcc/full.log", "evaluate/prcc/pretrained-start/seed0.log"):
        assert (root / "work/embedded/logs" / log).is_file()
    assert (root / "work/embedded/benchmarks/train/prcc/full/seed1.tsv").read_text().startswith("s\t")

    report = snakemake(root, "--report", "results/embedded/report.html")
    assert report.returncode == 0, report.stderr[-4000:]
    html = (root / "results/embedded/report.html").read_text(errors="replace")
    assert "table2.html" in html and "eps_curve.png" in html

    again = snakemake(root, "-n")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    # As if the first invocation had been interrupted while training one run: that run has its checkpoint but
    # no final files, and nothing downstream exists yet. Only that run is trained again, from its checkpoint.
    run = root / "work/embedded/runs/prcc/baseline/seed1"
    assert (run / "checkpoint.pt").is_file()
    assert not (run / "metrics.json").exists()  # each model is evaluated once, by the evaluate rule
    for path in (run / "model.pt", root / "results/embedded/metrics/prcc/baseline/seed1.json"):
        path.unlink()
    shutil.rmtree(root / "results/embedded/tables")
    shutil.rmtree(root / "results/embedded/plots")
    plan = snakemake(root, "-n", "-p", "--rerun-incomplete")
    trained = re.findall(r"spcreid train .*--experiment (\S+) .*", plan.stdout)
    assert trained == ["baseline"]
    assert "--resume" in re.search(r"spcreid train .*", plan.stdout)[0]

    resumed = snakemake(root, "--cores", "2", "--rerun-incomplete", timeout=900)
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    # The checkpoint already held the one epoch: it is not trained (or logged) a second time.
    assert len((run / "log.jsonl").read_text().splitlines()) == 1
    assert (root / "results/embedded/tables/table2.csv").is_file()
