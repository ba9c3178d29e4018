"""Code style, as the README's test command checks it: ruff (lint + format) and snakefmt, versions pinned in
envs/test.in, rules in pyproject.toml. To fix: `ruff check --fix . && ruff format . && snakefmt Snakefile workflow`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workflow_helpers import REPO

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command",
    [
        ["ruff", "check", "--no-cache", "."],
        ["ruff", "format", "--check", "--no-cache", "."],
        ["snakefmt", "--check", "Snakefile", "workflow"],
    ],
    ids=["ruff-check", "ruff-format", "snakefmt"],
)
def test_style_is_clean(command):
    result = subprocess.run(
        [str(BIN / command[0]), *command[1:]], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_style_tools_are_the_pinned_versions():
    pins = dict(line.split("==") for line in (REPO / "envs/test.in").read_text().split() if "==" in line)
    ruff = subprocess.run([str(BIN / "ruff"), "--version"], capture_output=True, text=True).stdout.split()
    snakefmt = subprocess.run([str(BIN / "snakefmt"), "--version"], capture_output=True, text=True).stdout.split()
    assert ruff[-1] == pins["ruff"] and snakefmt[-1] == pins["snakefmt"]
