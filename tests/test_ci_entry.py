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


def test_ci_workflow_lints_and_runs_the_readme_test_command_in_the_cached_locked_environment():
    import yaml

    workflow = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())
    assert set(workflow[True]) == {"push", "pull_request"}  # YAML reads the key `on` as True
    jobs = workflow["jobs"]
    for job in jobs.values():
        assert job["runs-on"].startswith("ubuntu")
        python = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/setup-python"))
        assert python["with"]["python-version"] == "3.11"
        # The .venv is cached under the lock and pyproject.toml (and the exact Python), never partially restored.
        cache = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/cache"))
        assert cache["with"]["path"] == ".venv" and "restore-keys" not in cache["with"]
        key = cache["with"]["key"]
        assert "hashFiles('envs/requirements.lock', 'pyproject.toml'" in key and "steps.python.outputs" in key
    # The test job runs exactly the README's test command through the CI entry point (= make test).
    test_runs = [step["run"] for step in jobs["test"]["steps"] if "run" in step]
    assert "bash .ci/run" in test_runs and not any("pytest" in run for run in test_runs)
    lint = "\n".join(step.get("run", "") for step in jobs["lint"]["steps"])
    for command in ("ruff check .", "ruff format --check .", "snakefmt --check Snakefile workflow"):
        assert command in lint, command
    # snakemake --lint under every profile params.yaml declares.
    profiles = yaml.safe_load((REPO / "params.yaml").read_text())["profiles"]
    assert 'snakemake --lint --config "profile=$profile"' in lint
    (loop,) = [line for line in lint.splitlines() if line.strip().startswith("for profile in")]
    assert set(loop.split(" in ", 1)[1].removesuffix("; do").split()) == set(profiles)
    # The release image keeps its own tag-triggered workflow.
    assert (REPO / ".github/workflows/image.yml").is_file()
