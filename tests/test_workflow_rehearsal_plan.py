"""The rehearsal plans from a fresh clone: its inputs (archives, stand-in weights) are a rule's outputs."""

from __future__ import annotations

import re

from workflow_helpers import copy_workflow, snakemake


def test_fresh_clone_plans_the_rehearsal_with_its_inputs(tmp_path):
    root = copy_workflow(tmp_path)
    assert not (root / "data").exists()
    result = snakemake(root, "-n", "-p", "--config", "profile=rehearsal")
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert len(re.findall(r"^rule make_rehearsal_inputs:", out, re.M)) == 1
    assert "spcreid make-rehearsal-inputs --out data/rehearsal/inputs >" in out
    # The datasets come from the archives it writes, the weights from its stand-ins: their sha256 is read from
    # its SHA256SUMS when the fetch job runs (a dry run shows <TBD>).
    assert "--dest data/rehearsal/raw --archive data/rehearsal/inputs/prcc.zip" in out
    assert "--dest data/rehearsal/raw --archive data/rehearsal/inputs/VC-Clothes.zip" in out
    fetches = [block for block in out.split("\n\n") if "rule fetch_weights:" in block]
    assert len(fetches) == 3 and all("data/rehearsal/inputs/SHA256SUMS" in block for block in fetches)
    assert all("<TBD>" in block for block in fetches)


def test_real_networks_never_get_stand_in_inputs(tmp_path):
    result = snakemake(copy_workflow(tmp_path), "-n", "--config", "profile=paper")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "make_rehearsal_inputs" not in result.stdout and "SHA256SUMS" not in result.stdout
