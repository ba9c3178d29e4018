""".ci/run: exactly `make test`, with the real-source tests pointed at the upstream copies beside the clone."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_ci(tmp_path: Path, with_upstream: bool) -> str:
    clone = tmp_path / "clone"
    (clone / ".ci").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / ".ci" / "run", clone / ".ci" / "run")
    # A Makefile whose `test` target reports what the real one would run the suite with.
    (clone / "Makefile").write_text('test:\n\t@echo "schp=$$SPCREID_SCHP_ROOT pise=$$SPCREID_PISE_ROOT"\n')
    if with_upstream:
        for name in ("schp", "pise"):
            (tmp_path / "shared" / "upstream" / name).mkdir(parents=True)
    # Run as CI runs it, at the top: under `make test` the inherited MAKELEVEL would make the inner make print
    # "Entering directory" lines around the echo.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPCREID_", "MAKE", "MFLAGS"))}
    done = subprocess.run(["bash", str(clone / ".ci" / "run")], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_ci_points_the_real_source_tests_at_the_upstream_copies_only_where_they_exist(tmp_path):
    upstream = (tmp_path / "shared" / "upstream").resolve()
    assert run_ci(tmp_path, with_upstream=True) == f"schp={upstream / 'schp'} pise={upstream / 'pise'}"
    shutil.rmtree(tmp_path / "shared")
    assert run_ci(tmp_path, with_upstream=False) == "schp= pise="
    assert (REPO / ".ci" / "run").read_text().rstrip().endswith("\nmake test")
