"""Every path a profile writes is its own, and every value a rule puts on a shell line arrives quoted."""

from __future__ import annotations

import re
import shutil

import pytest

from workflow_helpers import REPO, copy_workflow, edit_params, snakemake

PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


@pytest.fixture
def workdir(tmp_path):
    return copy_workflow(tmp_path)


def _shell_lines():
    for path in sorted((REPO / "workflow/rules").glob("*.smk")):
        text = path.read_text()
        for block in re.findall(r"shell:\n((?:\s+\".*\"\n)+)", text):
            yield path.name, block


def test_every_shell_placeholder_is_quoted():
    blocks = list(_shell_lines())
    assert len(blocks) >= 10
    for name, block in blocks:
        for field in PLACEHOLDER.findall(block):
            assert field == "threads" or field.endswith(":q"), f"{name}: {{{field}}} is not quoted"


def _written_paths(result) -> set[str]:
    return set(re.findall(r"^\s+output: (.+)$", result.stdout, re.M))


@pytest.mark.parametrize("profile", ["embedded", "paper"])
def test_a_profile_writes_only_under_its_own_folders(workdir, profile):
    result = snakemake(workdir, "-n", "--config", f"profile={profile}")
    assert result.returncode == 0, result.stderr
    outputs = {path for line in _written_paths(result) for path in line.split(", ")}
    assert len(outputs) > 20
    for path in outputs:
        assert path.split("/")[:2] in (["data", profile], ["work", profile], ["results", profile]), path


def test_paper_profile_plans_everything_beside_committed_embedded_results(workdir):
    # The committed embedded results must not make the paper DAG "Nothing to be done".
    shutil.copytree(REPO / "results/embedded", workdir / "results/embedded")
    result = snakemake(workdir, "-n", "--config", "profile=paper")
    assert result.returncode == 0, result.stderr
    # 14 trainings plus the reference rows: the supervised oracle and the untrained start are evaluated too.
    expected = (
        ("fetch_data", 2),
        ("verify_data", 2),
        ("parse", 2),
        ("synthesize_pise", 2),
        ("train", 14),
        ("train_supervised", 2),
        ("pretrained_start", 2),
        ("evaluate", 16),  # one job per configuration, its seeds together (the paper profile trains one)
        ("evaluate_pretrained_start", 2),
        ("tables", 1),
    )
    for rule, count in expected:
        assert re.search(rf"^{rule}\s+{count}$", result.stdout, re.M), rule


def test_params_path_outside_the_profile_folder_is_refused(workdir):
    def edit(params):
        params["profiles"]["paper"]["train"]["pretrained"] = "data/weights/resnet50-imagenet.pth"

    edit_params(workdir, edit)
    result = snakemake(workdir, "-n", "--config", "profile=paper")
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "profiles.paper.train.pretrained = data/weights/resnet50-imagenet.pth" in out
    assert "put it under data/paper/" in out


def test_hostile_dataset_root_is_an_argument_not_shell_code(workdir):
    # A root with a command substitution and a space: quoted, it reaches spcreid as one path.
    root = "data/paper/raw $(touch PWNED)"

    def edit(params):
        for spec in params["profiles"]["paper"]["datasets"].values():
            spec["root"] = root

    edit_params(workdir, edit)
    result = snakemake(
        workdir,
        "--cores",
        "1",
        "--config",
        "profile=paper",
        "fetch_prcc=--archive=missing.zip",
        "--",
        f"{root}/prcc",
        timeout=300,
    )
    assert result.returncode != 0
    assert not list(workdir.rglob("PWNED"))
    log = (workdir / f"work/paper/logs/fetch_data/{root}/prcc.log").read_text()
    assert "missing.zip" in log and "unrecognized arguments" not in log
