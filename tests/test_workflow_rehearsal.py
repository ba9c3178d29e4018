"""The rehearsal profile: the paper profile's rules, unchanged, on CPU.

Tiny archives in the real PRCC and VC-Clothes layouts and stand-in networks in the real checkpoint formats
(`spcreid make-rehearsal-inputs`) go through every stage of the paper DAG: fetch from the archives, verify
(counts relaxed), parse, keypoints + PISE synthesis through the adapter, ResNet-50 training, evaluation under
the real PRCC and VC-Clothes protocols, tables.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from spcreid.config.experiments import load_params, runs
from workflow_helpers import copy_workflow, snakemake

pytestmark = pytest.mark.slow

SPCREID = str(Path(sys.executable).with_name("spcreid"))


def test_rehearsal_runs_every_paper_rule_and_fills_the_tables(tmp_path):
    root = copy_workflow(tmp_path)
    inputs = root / "data/rehearsal/inputs"
    made = subprocess.run([SPCREID, "make-rehearsal-inputs", "--out", str(inputs)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert {p.name for p in inputs.iterdir()} >= {"prcc.zip", "VC-Clothes.zip", "LTCC_ReID.tar.gz", "SHA256SUMS"}

    # The rehearsal plans exactly the paper profile's rules.
    plan = {
        profile: set(re.findall(r"^rule (\w+):", snakemake(root, "-n", "--config", f"profile={profile}").stdout, re.M))
        for profile in ("paper", "rehearsal")
    }
    assert (
        plan["rehearsal"] == plan["paper"]
        and {"fetch_data", "verify_data", "parse", "synthesize_pise"} <= plan["paper"]
    )

    result = snakemake(root, "--cores", "2", "--config", "profile=rehearsal", timeout=3000)
    assert result.returncode == 0, result.stderr[-4000:]

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
