"""Which container image the workflow runs in: a built .sif first, then the recorded release digest; without
either, onstart refuses to run (not to plan)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow_helpers import copy_workflow, snakemake


@pytest.fixture
def apptainer(tmp_path):
    """A stand-in `apptainer` that answers --version and records every other call (no runtime here)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "apptainer-calls.txt"
    stub = bin_dir / "apptainer"
    stub.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "--version" ]; then echo "apptainer version 1.3.0"; exit 0; fi\n'
        f'echo "$@" >> {calls}\n'
        "exit 1\n"
    )
    stub.chmod(0o755)
    return bin_dir, calls


def test_a_built_image_is_used_without_any_option(tmp_path, apptainer):
    bin_dir, calls = apptainer
    root = copy_workflow(tmp_path / "wf")
    sif = root / "containers/spcreid.sif"
    sif.write_bytes(b"")  # what `make image` leaves there
    result = snakemake(root, "--cores", "1", "--use-singularity", path_prefix=str(bin_dir))
    output = result.stdout + result.stderr
    # The placeholder check passed (a built image exists), so the first job went to apptainer with the .sif.
    assert "does not exist" not in output
    assert calls.is_file(), output
    first = calls.read_text().splitlines()[0].split()
    assert first[0] == "exec" and str(sif) in first, first


def test_config_main_image_overrides_the_built_image(tmp_path, apptainer):
    bin_dir, calls = apptainer
    root = copy_workflow(tmp_path / "wf")
    (root / "containers/spcreid.sif").write_bytes(b"")
    other = tmp_path / "other.sif"
    other.write_bytes(b"")
    snakemake(root, "--cores", "1", "--use-singularity", "--config", f"main_image={other}", path_prefix=str(bin_dir))
    assert str(other) in calls.read_text().splitlines()[0].split()


def test_placeholder_plans_but_does_not_run(tmp_path, apptainer):
    bin_dir, calls = apptainer
    root = copy_workflow(tmp_path / "wf")
    planned = snakemake(root, "-n", "--use-singularity", path_prefix=str(bin_dir))
    assert planned.returncode == 0, planned.stderr
    ran = snakemake(root, "--cores", "1", "--use-singularity", path_prefix=str(bin_dir))
    output = ran.stdout + ran.stderr
    assert ran.returncode != 0 and "spcreid.sif does not exist" in output and "`make image`" in output
    assert not calls.exists() and not Path(root / "data").exists()
