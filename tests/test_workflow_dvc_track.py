"""`make dvc-track` / `snakemake dvc_track`: the paper profile's downloads get their DVC pointers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from workflow_helpers import REPO, copy_workflow, snakemake

DVC = str(Path(sys.executable).with_name("dvc"))
DOWNLOADS = {
    "data/paper/raw/prcc": "dir",
    "data/paper/raw/VC-Clothes": "dir",
    "data/paper/weights/resnet50-imagenet.pth": "file",
    "data/paper/weights/schp-lip.pth": "file",
    "data/paper/weights/pise-texture/latest_net_G.pth": "file",
    "data/paper/weights/keypointrcnn-coco.pth": "file",
}


def test_paper_downloads_are_the_fetch_rules_outputs(tmp_path):
    result = snakemake(copy_workflow(tmp_path), "-n", "dvc_track", "--config", "profile=paper")
    assert result.returncode == 0, result.stderr
    planned = {line.split(": ", 1)[1] for line in result.stdout.splitlines() if line.startswith("    output: ")}
    dvc_line = next(o for o in planned if ".dvc" in o)
    assert set(dvc_line.split(", ")) == {f"{path}.dvc" for path in DOWNLOADS}
    # What is missing is fetched first, by the fetch rules.
    assert "rule fetch_data:" in result.stdout and "rule fetch_weights:" in result.stdout


def test_dvc_track_writes_a_pointer_per_download(tmp_path):
    root = copy_workflow(tmp_path / "repo")
    (root / ".gitignore").write_text((REPO / ".gitignore").read_text())  # data ignored, .dvc pointers not
    env = dict(
        os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t"
    )
    for command in (["git", "init", "-q"], [DVC, "init", "-q"]):
        subprocess.run(command, cwd=root, check=True, env=env, capture_output=True)
    # Stand-ins for what the fetch rules would download (no network here): small real files.
    for path, kind in DOWNLOADS.items():
        target = root / path
        if kind == "dir":
            (target / "train").mkdir(parents=True)
            (target / "train" / "001.jpg").write_bytes(path.encode())
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.encode() * 3)
    result = snakemake(root, "--cores", "1", "dvc_track", "--config", "profile=paper", timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for path, kind in DOWNLOADS.items():
        pointer = yaml.safe_load((root / f"{path}.dvc").read_text())
        (out,) = pointer["outs"]
        assert out["path"] == Path(path).name
        assert out["md5"].endswith(".dir") == (kind == "dir")
    # The pointers are for git, the data is not.
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all", "data"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    listed = {line[3:] for line in status.splitlines()}
    assert {f"{path}.dvc" for path in DOWNLOADS} <= listed
    assert not any(name.endswith((".jpg", ".pth")) for name in listed), listed


def test_dvc_track_runs_on_the_host_and_make_calls_it():
    text = (REPO / "workflow/rules/dvc.smk").read_text()
    assert "container:" not in text  # dvc, like snakemake, belongs to the launching machine's environment
    make = subprocess.run(["make", "-n", "dvc-track", "BIN=/x"], cwd=REPO, capture_output=True, text=True)
    assert "snakemake --cores 1 dvc_track --config profile=paper" in make.stdout, make.stdout + make.stderr
