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
    froms = [
        line.split()[1] for line in (CONTAINERS / "Dockerfile").read_text().splitlines() if line.startswith("FROM ")
    ]
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


def test_slurm_profile_gives_every_gpu_job_a_gpu_the_image_runs_on(tmp_path):
    from workflow_helpers import copy_workflow, snakemake

    profile = yaml.safe_load((REPO / "workflow/profiles/slurm/config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["apptainer-args"] == "--nv"
    gpu_rules = ("train", "train_supervised", "pretrained_start", "evaluate", "evaluate_pretrained_start")
    for rule in ("parse", "synthesize_pise", *gpu_rules):
        resources = profile["set-resources"][rule]
        assert resources["gpu"] == 1 and resources["slurm_partition"] == "gpu", rule
        assert resources["gpu_model"] in ("a100", "h100", "h200"), rule  # sm_80+: the main image's torch
    # Threads, memory and run time are the rules' own: a profile default (cpus_per_task) would override them.
    for resources in [profile["default-resources"], *profile["set-resources"].values()]:
        assert not {"cpus_per_task", "mem_mb", "runtime"} & set(resources), resources
    plan = snakemake(copy_workflow(tmp_path), "-n", "--cores", "8", "--config", "profile=paper")
    assert plan.returncode == 0, plan.stderr[-3000:]
    declared = {}
    for block in re.split(r"^(?=rule \w+:)", plan.stdout, flags=re.M):
        rule = re.search(r"^rule (\w+):", block, re.M)
        mem, runtime = re.search(r"mem_mb=(\d+)", block), re.search(r"runtime=(\d+)", block)
        if rule and mem and runtime:
            declared[rule[1]] = (int(mem[1]), int(runtime[1]))
    for rule in ("parse", "synthesize_pise", *gpu_rules):
        assert declared[rule][0] >= 16000 and declared[rule][1] >= 60, rule
    assert declared["train"] == (32000, 24 * 60)


IMAGE_DIGEST_FILES = {"spcreid": CONTAINERS / "image-digest"}


@pytest.mark.parametrize("name", sorted(IMAGE_DIGEST_FILES))
def test_recorded_images_are_digest_pinned(name):
    (uri,) = IMAGE_DIGEST_FILES[name].read_text().split()
    assert re.fullmatch(r"docker://ghcr\.io/[\w.-]+/" + name + r":[\w.-]+@sha256:[0-9a-f]{64}", uri), uri


def test_release_workflow_pushes_the_image_and_records_its_digest():
    workflow = yaml.safe_load((REPO / ".github/workflows/image.yml").read_text())
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML reads the key `on` as True
    build = workflow["jobs"]["build"]
    legs = {leg["name"]: leg for leg in build["strategy"]["matrix"]["include"]}
    assert {name: legs[name]["digest_file"] for name in legs} == {
        name: str(path.relative_to(REPO)) for name, path in IMAGE_DIGEST_FILES.items()
    }
    assert {leg["dockerfile"] for leg in legs.values()} == {"containers/Dockerfile"}
    push = next(step for step in build["steps"] if step.get("id") == "push")
    assert push["with"]["push"] is True and push["with"]["file"] == "${{ matrix.dockerfile }}"
    record = workflow["jobs"]["record-digests"]
    script = "\n".join(step.get("run", "") for step in record["steps"])
    for path in IMAGE_DIGEST_FILES.values():
        assert str(path.relative_to(REPO)) in script
    pull_request = next(step for step in record["steps"] if "create-pull-request" in step.get("uses", ""))
    assert set(pull_request["with"]["add-paths"].split()) == {
        str(path.relative_to(REPO)) for path in IMAGE_DIGEST_FILES.values()
    }


def test_workflow_reads_the_recorded_digests_and_prefers_a_built_image():
    # The workflow's image choice and check live in spcreid.config.workflow; common.smk names the image once.
    text = (REPO / "src/spcreid/config/workflow.py").read_text()
    common = (REPO / "workflow/rules/common.smk").read_text()
    for path in ("containers/image-digest", "containers/spcreid.sif"):
        assert f'"{path}"' in text
    # The missing-image check lives in onstart (real runs only): no argv sniffing, no executor-plugin import.
    for source in (text, common):
        assert "sys.argv" not in source and "snakemake_interface" not in source
    assert re.search(r"^def check_image\(image.*\n(?:    .*\n|\n)*?.*not os\.path\.exists\(image\)", text, flags=re.M)
    assert re.search(r"^def check_images\(\):\n(?:    .*\n|\n)*?.*check_image\(MAIN_IMAGE", common, flags=re.M)
    assert re.search(r"^onstart:\n(?:    #.*\n)*    check_images\(\)$", (REPO / "Snakefile").read_text(), flags=re.M)
    ignored = subprocess.run(
        ["git", "check-ignore", "containers/spcreid.sif"], cwd=REPO, capture_output=True, text=True
    )
    assert ignored.stdout.split() == ["containers/spcreid.sif"]


def test_make_image_builds_the_path_the_workflow_uses():
    result = subprocess.run(
        ["make", "-n", "-B", "image", "APPTAINER=apptainer"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "apptainer build --force containers/spcreid.sif.tmp containers/Apptainer.def" in result.stdout
    assert "mv containers/spcreid.sif.tmp containers/spcreid.sif" in result.stdout
