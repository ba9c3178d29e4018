"""The main image's recipes, checked statically: no container runtime exists on the test machines."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workflow_helpers import REPO

CONTAINERS = REPO / "containers"
DIGEST = re.compile(r"^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$")
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==(\S+)")


def _lock_pins() -> dict[str, str]:
    pins = {}
    for line in (CONTAINERS / "requirements.lock").read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[match[1].lower()] = match[2].rstrip(" \\")
    return pins


def _requirement_blocks() -> list[str]:
    """Each requirement of the lock with its continuation lines (the hashes)."""
    text = (CONTAINERS / "requirements.lock").read_text()
    return [block for block in re.split(r"\n(?=[A-Za-z0-9])", text) if PIN.match(block)]


def _dockerfile_base() -> str:
    froms = [line.split()[1] for line in (CONTAINERS / "Dockerfile").read_text().splitlines()
             if line.startswith("FROM ")]
    assert len(froms) == 1
    return froms[0]


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run([str(hadolint), str(CONTAINERS / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_digest_pinned_and_shared_by_both_recipes():
    base = _dockerfile_base()
    assert DIGEST.match(base), base
    from spython.main.parse.parsers import SingularityParser

    recipe = SingularityParser(str(CONTAINERS / "Apptainer.def")).recipe["spython-base"]
    assert recipe.fromHeader == base
    # Both recipes install from the lock with hashes enforced, then the package without re-resolving.
    install = "\n".join(recipe.install)
    dockerfile = (CONTAINERS / "Dockerfile").read_text()
    for text in (install, dockerfile):
        assert "--require-hashes -r /opt/spcreid/containers/requirements.lock" in text
        assert "--no-deps" in text
    assert any(f.startswith("containers/requirements.lock ") for f in recipe.files)
    assert any(f.startswith("src ") for f in recipe.files)


def test_lock_has_hashes_for_every_requirement():
    blocks = _requirement_blocks()
    assert len(blocks) > 20
    for block in blocks:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), block.splitlines()[0]


def test_lock_matches_the_declared_pins_and_the_local_environment():
    pins = _lock_pins()
    declared = {}
    for line in (REPO / "envs/runtime.in").read_text().splitlines():
        match = PIN.match(line)
        if match:
            declared[match[1].lower()] = match[2]
    assert declared["torch"] == "2.14.1" and declared["torchvision"] == "0.29.1"
    for name, version in declared.items():
        assert pins[name] == version, name
    # Same versions as the local install: every locked package that is installed here has the locked version.
    mismatched = {}
    for name, version in pins.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if installed != version:
            mismatched[name] = (version, installed)
    assert not mismatched


def test_default_profile_passes_nv_to_apptainer():
    profile = yaml.safe_load((REPO / "workflow/profiles/default/config.yaml").read_text())
    assert profile["use-apptainer"] is True
    # One string: `--apptainer-args --nv` would be read as an option of snakemake itself.
    assert profile["apptainer-args"] == "--nv"
    assert profile["rerun-incomplete"] is True


def test_slurm_profile_gives_training_a_gpu():
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["set-resources"]["train"]["gpu"] == 1
    assert profile["apptainer-args"] == "--nv"


@pytest.mark.parametrize("image_var", ["MAIN_IMAGE_DEFAULT", "PISE_IMAGE_DEFAULT"])
def test_workflow_images_are_digest_pinned(image_var):
    text = (REPO / "workflow/rules/common.smk").read_text()
    match = re.search(image_var + r' = \(\s*"([^"]+)"\s*"([^"]+)"\s*\)', text)
    assert match, image_var
    uri = match[1] + match[2]
    assert re.fullmatch(r"docker://[^@\s]+@sha256:[0-9a-f]{64}", uri)
