"""Shared helpers of the workflow tests: a copy of the workflow files in tmp_path and a snakemake runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
# What the DAG needs to be planned; data, runs and results are produced by it.
WORKFLOW_FILES = (
    "Snakefile",
    "params.yaml",
    "workflow",
    "results/published",
    "containers/image-digest",
)


def copy_workflow(dest: Path) -> Path:
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name)
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def edit_params(root: Path, edit) -> None:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    edit(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def snakemake(root: Path, *args: str, path_prefix: str | None = None, timeout: int = 120):
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join(p for p in (path_prefix, str(Path(sys.executable).parent), env["PATH"]) if p)
    return subprocess.run([SNAKEMAKE, *args], cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
