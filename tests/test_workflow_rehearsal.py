"""The rehearsal profile: the paper profile's rules, unchanged, on CPU.

Tiny archives in the real PRCC and VC-Clothes layouts and stand-in networks in the real checkpoint formats
(`spcreid make-rehearsal-inputs`, run by the make_rehearsal_inputs rule) go through every stage of the paper DAG:
fetch from the archives, verify (counts relaxed), parse, keypoints + PISE synthesis through the adapter, ResNet-50
training, evaluation under the real PRCC and VC-Clothes protocols, tables.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from spcreid.config.experiments import load_params, runs
from workflow_helpers import copy_workflow, snakemake

pytestmark = pytest.mark.slow


def test_rehearsal_runs_every_paper_rule_and_fills_the_tables(tmp_path):
    # A fresh clone: no data/, no step before snakemake.
    root = copy_workflow(tmp_path)

    # The rehearsal plans the paper profile's rules, and the one that writes its inputs.
    plan = {
        profile: set(re.findall(r"^rule (\w+):", snakemake(root, "-n", "--config", f"profile={profile}").stdout, re.M))
        for profile in ("paper", "rehearsal")
    }
    assert (
        plan["rehearsal"] == plan["paper"] | {"make_rehearsal_inputs"}
        and {"fetch_data", "verify_data", "parse", "synthesize_pise"} <= plan["paper"]
    )

    result = snakemake(root, "--cores", "2", "--config", "profile=rehearsal", timeout=3000)
    assert result.returncode == 0, result.stderr[-4000:]
    inputs = root / "data/rehearsal/inputs"
    assert {p.name for p in inputs.iterdir()} >= {"prcc.zip", "VC-Clothes.zip", "SHA256SUMS"}

    params = load_params(root / "params.yaml", profile="rehearsal")
    metrics = root / "results/rehearsal/metrics"
    for run in runs(params):
        record = json.loads((metrics / run.dataset / run.experiment / f"seed{run.seed}.json").read_text())
        assert (record["profile"], record["dataset"], record["experiment"]) == (
            "rehearsal",
            run.dataset,
            run.experiment,
        )
    # PRCC under its own protocol: every gallery mode, single-shot over 10 trials.
    full = json.loads((metrics / "prcc/full/seed1.json").read_text())
    assert set(full["settings"]["cc"]) >= {"multi", "single"}
    verified = json.loads((root / "data/rehearsal/verified/prcc.json").read_text())
    assert verified["count_mismatch_allowed"] is True and verified["count_mismatches"]
    copies = pd.read_csv(root / "data/rehearsal/synth/prcc/pise/index.csv")
    assert len(copies) > 0
    for table in ("table1", "table2", "table3", "table4"):
        frame = pd.read_csv(root / f"results/rehearsal/tables/{table}.csv")
        ours = frame[frame["Source"] == "ours"]
        assert len(ours) > 0 and ours["R1 ours"].notna().all() and (frame["Profile"] == "rehearsal").all(), table
    # Nothing of the rehearsal lands in another profile's folders.
    assert not (root / "results/paper").exists() and not (root / "results/embedded").exists()
