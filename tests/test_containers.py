"""The main image's recipes, checked statically: no container runtime exists on the test machines."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from workflow_helpers import REPO

CONTAINERS = REPO / "containers"
DIGEST = re.compile(r"^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$")
LOCKS = {"local": REPO / "envs/requirements.lock", "containers": CONTAINERS / "requirements.lock"}


def _requirement_blocks(lock: Path) -> list[str]:
    """Each requirement of a lock with its continuation lines (the hashes)."""
    return [block for block in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text()) if block[:1].isalnum()]


def _locked(lock: Path) -> dict[str, str]:
    """name -> version of every requirement of `lock` whose environment marker holds here."""
    pins = {}
    for block in _requirement_blocks(lock):
        requirement = Requirement(block.splitlines()[0].rstrip(" \\"))
        if requirement.marker is None or requirement.marker.evaluate():
            (spec,) = requirement.specifier
            assert spec.operator == "==", block.splitlines()[0]
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def _declared_pins() -> dict[str, str]:
    pins = {}
    for name in ("runtime", "workflow", "test"):
        for line in (REPO / f"envs/{name}.in").read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                requirement = Requirement(line)
                (spec,) = requirement.specifier
                pins[canonicalize_name(requirement.name)] = spec.version
    return pins


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


@pytest.mark.parametrize("which", sorted(LOCKS))
def test_lock_has_hashes_for_every_requirement(which):
    blocks = _requirement_blocks(LOCKS[which])
    assert len(blocks) > 20
    for block in blocks:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), block.splitlines()[0]


def test_lock_holds_every_declared_pin():
    declared = _declared_pins()
    assert declared["torch"] == "2.14.1" and declared["torchvision"] == "0.29.1"
    locked = _locked(LOCKS["local"])
    assert {name: locked.get(name) for name in declared} == declared


def test_container_lock_is_the_runtime_part_of_the_same_resolution():
    local, containers = _locked(LOCKS["local"]), _locked(LOCKS["containers"])
    assert {name: local.get(name) for name in containers} == containers
    assert "snakemake" not in containers and "pytest" not in containers and "torch" in containers


def test_lock_is_complete_and_is_what_is_installed():
    """Every dependency of every locked package is locked too, and this environment holds exactly the lock.

    `make setup` installs with --require-hashes, which refuses an unlocked dependency; this says the same
    for an environment built any other way, and catches a lock edited by hand.
    """
    locked = _locked(LOCKS["local"])
    missing, mismatched = set(), {}
    for name, version in locked.items():
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            mismatched[name] = (version, None)
            continue
        if distribution.version != version:
            mismatched[name] = (version, distribution.version)
        for text in distribution.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                if canonicalize_name(requirement.name) not in locked:
                    missing.add(f"{requirement.name} (needed by {name})")
    assert not missing, "re-lock with `make lock`: " + ", ".join(sorted(missing))
    assert not mismatched, "the environment differs from envs/requirements.lock: run `make setup`"


def test_default_profile_passes_nv_to_apptainer():
    profile = yaml.safe_load((REPO / "workflow/profiles/default/config.yaml").read_text())
    assert profile["use-apptainer"] is True
    # One string: `--apptainer-args --nv` would be read as an option of snakemake itself.
    assert profile["apptainer-args"] == "--nv"
    assert profile["rerun-incomplete"] is True


def test_slurm_profile_gives_every_gpu_job_a_gpu_the_image_runs_on():
    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["apptainer-args"] == "--nv"
    for rule in ("parse", "synthesize_pise", "train", "evaluate"):
        resources = profile["set-resources"][rule]
        assert resources["gpu"] == 1 and resources["slurm_partition"] == "gpu", rule
        assert resources["gpu_model"] in ("a100", "h100", "h200"), rule  # sm_80+: the main image's torch
        assert resources["mem_mb"] >= 16000, rule
    assert profile["set-resources"]["train"]["mem_mb"] >= 32000


@pytest.mark.parametrize("image_var", ["MAIN_IMAGE_DEFAULT"])
def test_workflow_images_are_digest_pinned(image_var):
    text = (REPO / "workflow/rules/common.smk").read_text()
    match = re.search(image_var + r' = \(\s*"([^"]+)"\s*"([^"]+)"\s*\)', text)
    assert match, image_var
    uri = match[1] + match[2]
    assert re.fullmatch(r"docker://[^@\s]+@sha256:[0-9a-f]{64}", uri)


def test_both_recipes_pin_the_commits_the_adapters_expect():
    from spython.main.parse.parsers import SingularityParser

    from spcreid.parsing.schp import DEFAULT_SCHP_ROOT, SCHP_COMMIT
    from spcreid.synthesis.pise.adapter import DEFAULT_PISE_ROOT, PISE_COMMIT

    dockerfile = (CONTAINERS / "Dockerfile").read_text()
    post = "\n".join(SingularityParser(str(CONTAINERS / "Apptainer.def")).recipe["spython-base"].install)
    assert f"ARG SCHP_COMMIT={SCHP_COMMIT}" in dockerfile and f"ARG PISE_COMMIT={PISE_COMMIT}" in dockerfile
    assert f"SCHP_COMMIT={SCHP_COMMIT}" in post and f"PISE_COMMIT={PISE_COMMIT}" in post
    for text in (dockerfile, post):
        assert f"Self-Correction-Human-Parsing.git {DEFAULT_SCHP_ROOT}" in text
        assert f"PISE.git {DEFAULT_PISE_ROOT}" in text
        assert text.count("rev-parse HEAD") == 2  # the checkout is proven to be the pinned commit
    assert "5d5bd524" not in dockerfile + post  # PISE's README-only initial commit
