"""The Snakemake DAG, planned (dry runs) in a copy of the workflow: jobs derived from params.yaml."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from spcreid.config.experiments import load_params, runs
from workflow_helpers import REPO, copy_workflow, edit_params, snakemake

TRAIN_CMD = re.compile(r"spcreid train .*--dataset (\S+) --experiment (\S+) --seed (\d+) .*--out (\S+)")


def planned_train_jobs(result) -> list[tuple[str, str, int]]:
    return [(m[1], m[2], int(m[3])) for m in TRAIN_CMD.finditer(result.stdout + result.stderr)]


@pytest.fixture
def workdir(tmp_path):
    return copy_workflow(tmp_path)


def test_embedded_plan_has_one_train_job_per_distinct_configuration_and_seed(workdir):
    result = snakemake(workdir, "-n", "-p")
    assert result.returncode == 0, result.stderr
    jobs = planned_train_jobs(result)
    # 16 PRCC table cells use 13 distinct experiments, plus the VC-Clothes full model: 14 configurations,
    # each trained once per seed of the profile (3), none twice.
    assert len(jobs) == 14 * 3
    assert len(set(jobs)) == 14 * 3
    per_dataset = Counter(dataset for dataset, _, _ in jobs)
    assert per_dataset == {"prcc": 13 * 3, "vcclothes": 1 * 3}
    params = load_params(REPO / "params.yaml")
    assert sorted(jobs) == sorted((r.dataset, r.experiment, r.seed) for r in runs(params))
    # The full model appears in all four tables yet is trained once per dataset and seed.
    assert all(jobs.count(("prcc", "full", seed)) == 1 for seed in (1, 2, 3))


def test_seeds_multiply_the_training_jobs_only(workdir):
    edit_params(workdir, lambda p: p["profiles"]["embedded"].update(seeds=[1, 2]))
    result = snakemake(workdir, "-n", "-p")
    assert result.returncode == 0, result.stderr
    jobs = planned_train_jobs(result)
    assert len(jobs) == 28 and len(set(jobs)) == 28
    assert {seed for _, _, seed in jobs} == {1, 2}
    # Data preparation and synthesis do not depend on the seed: once per dataset.
    assert len(re.findall(r"^rule make_toy_data:", result.stdout, re.M)) == 2
    assert len(re.findall(r"^rule synthesize_parsing_swap:", result.stdout, re.M)) == 2


def test_miniature_draws_every_random_input_per_seed(workdir):
    # Two seeds keep the plan small; the profile's own seed list is what the miniature's budget sets.
    edit_params(workdir, lambda p: p["profiles"]["miniature"].update(seeds=[1, 2]))
    copies = load_params(workdir / "params.yaml")["profiles"]["miniature"]["method"]["S"]
    result = snakemake(workdir, "-n", "-p", "--config", "profile=miniature")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert len(planned_train_jobs(result)) == 14 * 2
    # One trunk per seed, pretrained with that seed; one synthesis cache (and its packed store) per dataset and seed.
    for seed in (1, 2):
        # Two torch threads whatever --cores is: another thread count makes another trunk.
        assert f"--seed {seed} --threads 2 --out data/miniature/weights/toy-pretrained-seed{seed}.pth" in out
        for key in ("prcc", "vcclothes"):
            assert (
                f"--copies {copies} --seed {seed} --replace-changed "
                f"--out data/miniature/synth/{key}/parsing-swap-seed{seed}" in out
            ), (
                key,
                seed,
            )
    assert len(re.findall(r"^rule pretrain_backbone:", out, re.M)) == 2
    assert len(re.findall(r"^rule synthesize_parsing_swap:", out, re.M)) == 4
    assert len(re.findall(r"^rule pack_images:", out, re.M)) == 4
    # Run seed 2 of the full model reads seed 2's trunk, copies and packed store.
    block = next(b for b in out.split("\n\n") if "output: work/miniature/runs/prcc/full/seed2/model.pt" in b)
    for path in (
        "data/miniature/synth/prcc/parsing-swap-seed2/index.csv",
        "data/miniature/packed/prcc-seed2.pt",
        "data/miniature/weights/toy-pretrained-seed2.pth",
    ):
        assert path in block
    # The untrained start is a row per seed too (each seed has its own start), scored by the evaluate rule.
    assert (
        "--seed 2 --manifest data/miniature/manifests/prcc.csv --threads 1 "
        "--out work/miniature/runs/prcc/pretrained-start/seed2" in out
    )
    assert not re.search(r"^rule evaluate_pretrained_start:", out, re.M)


def test_shared_input_profiles_keep_one_trunk_and_one_cache(workdir):
    result = snakemake(workdir, "-n", "-p")
    assert result.returncode == 0, result.stderr
    assert "--out data/embedded/weights/toy-pretrained.pth" in result.stdout
    assert "--copies 4 --seed 0 --replace-changed --out data/embedded/synth/prcc/parsing-swap " in result.stdout
    assert "seed1.pth" not in result.stdout


def test_paper_profile_plans_real_data_weights_pise_and_gpu_training(workdir):
    result = snakemake(workdir, "-n", "-p", "--config", "profile=paper")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for rule in ("fetch_data", "verify_data", "prepare_manifest", "fetch_weights", "parse", "synthesize_pise"):
        assert re.search(rf"^rule {rule}:", out, re.M), rule
    # Parsing feeds synthesis; PISE runs in process on the GPU, no container inside the job.
    assert (
        "spcreid parse --manifest data/paper/manifests/prcc.csv --out data/paper/parsing/prcc --weights "
        "data/paper/weights/schp-lip.pth --network schp --device cuda --batch 16"
    ) in out
    assert "spcreid synthesize --manifest data/paper/parsing/prcc/manifest.csv --backend pise" in out
    assert "apptainer" not in out and "--allow-count-mismatch" not in out
    for rule in ("parse", "synthesize_pise"):
        blocks = [b for b in out.split("\n\n") if f"rule {rule}:" in b]
        assert len(blocks) == 2 and all("gpu=1" in b for b in blocks), rule
    assert "make_toy_data" not in out
    assert "spcreid fetch-data --dataset prcc --dest data/paper/raw" in out
    assert len(planned_train_jobs(result)) == 14
    train_blocks = [
        block
        for block in out.split("\n\n")
        if block.lstrip().startswith(("rule train:", "[")) and "rule train:" in block
    ]
    assert train_blocks and all("gpu=1" in block for block in train_blocks)
    assert "--profile paper" in out
    assert "--pretrained" not in out  # the weights reach training through params.yaml, not the command line
    assert "data/paper/weights/resnet50-imagenet.pth" in out


def test_paper_profile_switches_for_own_maps_and_relaxed_counts(workdir):
    def edit(params):
        paper = params["profiles"]["paper"]
        paper["verify"] = {"strict_counts": False}
        paper["parsing"] = {"source": "maps", "root": "external/my maps", "labels": "lip"}

    edit_params(workdir, edit)
    result = snakemake(workdir, "-n", "-p", "--config", "profile=paper")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "spcreid verify-data --dataset prcc --root data/paper/raw --workers 1 --allow-count-mismatch" in out
    assert (
        "spcreid parse --manifest data/paper/manifests/prcc.csv --out data/paper/parsing/prcc --maps "
        "'external/my maps' --data-root data/paper/raw --maps-labels lip"
    ) in out
    assert "schp-lip" not in out  # no parser weights to fetch
    parse_blocks = [b for b in out.split("\n\n") if "rule parse:" in b]
    assert parse_blocks and all("gpu=0" in b for b in parse_blocks)


def test_maps_source_needs_a_root(workdir):
    edit_params(workdir, lambda p: p["profiles"]["paper"].update(parsing={"source": "maps"}))
    result = snakemake(workdir, "-n", "--config", "profile=paper")
    assert result.returncode != 0
    assert "root" in result.stdout + result.stderr


def test_embedded_training_asks_for_no_gpu(workdir):
    result = snakemake(workdir, "-n", "work/embedded/runs/prcc/full/seed1/model.pt")
    assert result.returncode == 0, result.stderr
    block = result.stdout.split("rule train:")[1]
    assert "gpu=0" in block


def _interrupted_run(workdir, experiment, *, finished_training=False):
    """A run folder as the trainer leaves it when stopped: config.json, checkpoint.pt (and model.pt)."""
    import json

    from spcreid.config.experiments import Run, run_config

    run = workdir / f"work/embedded/runs/prcc/{experiment}/seed1"
    run.mkdir(parents=True)
    config = run_config(load_params(workdir / "params.yaml"), Run("prcc", experiment, 1))
    (run / "config.json").write_text(json.dumps({**config, "inputs": {}}))
    (run / "checkpoint.pt").write_bytes(b"stand-in")
    if finished_training:
        (run / "model.pt").write_bytes(b"stand-in")
    return run


def _train_commands(workdir, *extra):
    result = snakemake(
        workdir,
        "-n",
        "-p",
        *extra,
        "work/embedded/runs/prcc/full/seed1/model.pt",
        "work/embedded/runs/prcc/baseline/seed1/model.pt",
    )
    assert result.returncode == 0, result.stderr
    return {m[2]: m[0] for m in TRAIN_CMD.finditer(result.stdout)}


def test_interrupted_run_resumes_and_finished_run_is_not_redone(workdir):
    _interrupted_run(workdir, "full")
    commands = _train_commands(workdir)
    assert "--resume" in commands["full"]
    assert "--resume" not in commands["baseline"]


def test_run_stopped_after_training_is_finalised_not_retrained(workdir):
    # model.pt written, but the job marked incomplete (Snakemake killed as the trainer finished, or a
    # leftover trainer finished it): the rerun decides with `resumable`. Before, model.pt alone meant
    # "finished, start afresh" and the whole training was redone.
    import os

    from spcreid.config.experiments import Run, resumable, run_config

    run = _interrupted_run(workdir, "full", finished_training=True)
    config = run_config(load_params(workdir / "params.yaml"), Run("prcc", "full", 1))
    manifest = workdir / "manifest.csv"
    manifest.write_text("path\n")
    os.utime(manifest, (0, 0))
    assert resumable(run, config, [str(manifest)])
    assert not resumable(run, {**config, "seed": 2}, [str(manifest)])  # another configuration
    os.utime(manifest)  # data newer than the checkpoint
    assert not resumable(run, config, [str(manifest)])
    (run / "config.json").unlink()
    assert not resumable(run, config, [])


def test_changed_configuration_or_forced_rerun_starts_afresh(workdir):
    _interrupted_run(workdir, "full", finished_training=True)
    assert "--resume" not in _train_commands(workdir, "--forcerun", "train")["full"]
    edit_params(workdir, lambda p: p["method"].update(alpha=0.5))
    assert "--resume" not in _train_commands(workdir)["full"]


@pytest.mark.parametrize("profile", ["embedded", "miniature", "rehearsal", "paper"])
def test_lint_is_clean(profile):
    result = snakemake(REPO, "--lint", "--config", f"profile={profile}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_every_rule_runs_in_a_digest_pinned_container(workdir, tmp_path_factory):
    # No container runtime here: a stand-in `apptainer` lets --use-singularity plan the jobs.
    bin_dir = tmp_path_factory.mktemp("bin")
    stub = bin_dir / "apptainer"
    stub.write_text("#!/bin/sh\necho 'apptainer version 1.3.0'\n")
    stub.chmod(0o755)
    # A released state: the digests the release workflow records (no local build in the copy).
    released = {
        "containers/image-digest": "docker://ghcr.io/spcreid/spcreid:0.2.0@sha256:" + "ab" * 32,
    }
    for path, uri in released.items():
        (workdir / path).write_text(uri + "\n")
    for profile in ("embedded", "paper"):
        result = snakemake(
            workdir, "-n", "--use-singularity", "--config", f"profile={profile}", path_prefix=str(bin_dir)
        )
        assert result.returncode == 0, result.stderr
        images = set(re.findall(r"Singularity image (\S+) will be pulled", result.stdout + result.stderr))
        assert images == set(released.values()), result.stdout
    # Statically, too: every rule block names the image defined once in common.smk.
    for smk in (REPO / "workflow/rules").glob("*.smk"):
        text = smk.read_text()
        blocks = re.split(r"^rule ", text, flags=re.M)[1:]
        for block in blocks:
            name = block.split(":")[0]
            assert re.search(r"container:\s*\n\s*MAIN_IMAGE\b", block), f"{smk.name}: rule {name}"


def test_unpinned_image_override_is_refused(workdir):
    result = snakemake(workdir, "-n", "--config", "main_image=docker://ghcr.io/x/spcreid:latest")
    assert result.returncode != 0
    assert "main_image" in result.stdout + result.stderr and "sha256" in result.stdout + result.stderr


def test_running_in_unpublished_images_stops_with_instructions(workdir, tmp_path_factory):
    bin_dir = tmp_path_factory.mktemp("bin")
    stub = bin_dir / "apptainer"
    stub.write_text("#!/bin/sh\necho 'apptainer version 1.3.0'\n")
    stub.chmod(0o755)
    result = snakemake(workdir, "--cores", "1", "--use-singularity", path_prefix=str(bin_dir))
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert "containers/spcreid.sif does not exist" in message and "make image" in message
    assert "--config main_image=" in message
    assert not (workdir / "data").exists()  # stopped before any job ran


def test_every_rule_writing_a_model_is_redone_when_its_configuration_changes():
    # Snakemake's `params` rerun trigger only sees what a rule declares under params:. The oracle and the untrained
    # start read params.yaml themselves, so without a declared configuration a change of batch, lr or iterations
    # left their old model.pt in place (found when the miniature's budget was changed between two runs).
    text = (REPO / "workflow/rules/train.smk").read_text()
    blocks = re.split(r"\n(?=rule |use rule )", text)
    writers = [b for b in blocks if 'model=f"{RUN_DIR}/model.pt"' in b]
    assert {b.split(":", 1)[0].split()[-1] for b in writers} == {"train", "train_supervised", "pretrained_start"}
    for block in writers:
        assert re.search(r"\n        run_config=\w+_config_json,\n", block), block.split("\n", 1)[0]


def test_the_miniature_gpu_config_puts_training_and_evaluation_on_the_gpu(workdir):
    result = snakemake(workdir, "-n", "-p", "--configfile", "workflow/configs/miniature-gpu.yaml")
    assert result.returncode == 0, result.stderr
    jobs = result.stdout.split("\n\n")
    trains = [j for j in jobs if "rule train:" in j or "rule train_supervised:" in j or "rule evaluate:" in j]
    seeds = len(load_params(workdir / "params.yaml")["profiles"]["miniature"]["seeds"])
    assert len(trains) == 14 * seeds + 2 * seeds + 18 and all("gpu=1" in j for j in trains)
    assert not any("gpu=1" in j for j in jobs if "rule pack_images:" in j or "rule pretrain_backbone:" in j)
