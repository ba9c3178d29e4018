"""params.yaml errors stop the workflow while the DAG is built, with a message naming the field."""

from __future__ import annotations

import pytest

from spcreid.config.experiments import check_params, load_params
from spcreid.errors import SpcreidError
from workflow_helpers import REPO, copy_workflow, edit_params, snakemake


def _negative_eps(p):
    p["method"]["eps"] = -0.1


def _unknown_dataset(p):
    p["tables"]["table1"]["rows"][0]["dataset"] = "market1501"


def _unknown_experiment(p):
    p["tables"]["table2"]["rows"][1]["experiment"] = "ca_typo"


def _paper_without_root(p):
    del p["profiles"]["paper"]["datasets"]["prcc"]["root"]


CASES = [
    (_negative_eps, [], ["method.eps", "-0.1"]),
    (_unknown_dataset, [], ["tables.table1.rows[0].dataset", "market1501"]),
    (_unknown_experiment, [], ["tables.table2.rows[1].experiment", "ca_typo"]),
    (_paper_without_root, ["--config", "profile=paper"], ["profiles.paper.datasets.prcc", "'root' is a required"]),
]


@pytest.mark.parametrize("edit, extra, expected", CASES, ids=["eps", "dataset", "experiment", "paper-root"])
def test_bad_params_stop_before_any_job(tmp_path, edit, extra, expected):
    root = copy_workflow(tmp_path)
    edit_params(root, edit)
    # A real (not dry) run: the error must come while the DAG is built, before any job touches the disk.
    result = snakemake(root, "--cores", "1", *extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    for text in expected:
        assert text in output, output
    assert not (root / "data").exists() and not (root / "work").exists()
    assert "Job stats" not in output


def test_schema_accepts_the_committed_params_for_both_profiles():
    for profile in ("embedded", "paper"):
        params = load_params(REPO / "params.yaml", profile=profile)
        assert params["profile"] == profile


@pytest.mark.parametrize(
    "path, value, field",
    [
        (("method", "sampling"), "random", "method.sampling"),
        (("method", "S"), 1.5, "method.S"),
        (("profiles", "embedded", "seeds"), [], "profiles.embedded.seeds"),
        (("profiles", "embedded", "train", "device"), "tpu", "profiles.embedded.train.device"),
        (("experiments", "ca", "augmnet"), True, "experiments.ca"),
        (("profiles", "embedded", "datasets", "prcc", "source"), "market", "profiles.embedded.datasets.prcc.source"),
        (("profiles", "paper", "verify", "strict_counts"), "no", "profiles.paper.verify.strict_counts"),
        (("profiles", "paper", "parsing", "source"), "lip", "profiles.paper.parsing.source"),
        (("profiles", "paper", "parsing", "device"), "gpu", "profiles.paper.parsing.device"),
        (("profiles", "paper", "synthesis", "network"), "pise-v2", "profiles.paper.synthesis.network"),
    ],
)
def test_schema_errors_name_the_field(path, value, field):
    params = load_params(REPO / "params.yaml")
    target = params
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(SpcreidError, match=r"field '" + field.replace(".", r"\.")):
        check_params(params)


def test_own_maps_need_their_root():
    params = load_params(REPO / "params.yaml")
    params["profiles"]["paper"]["parsing"] = {"source": "maps", "labels": "lip"}
    with pytest.raises(SpcreidError, match="profiles.paper.parsing.*'root' is a required property"):
        check_params(params)
    params["profiles"]["paper"]["parsing"]["root"] = "data/maps"
    check_params(params)


def test_toy_datasets_need_the_toy_block():
    params = load_params(REPO / "params.yaml")
    del params["profiles"]["embedded"]["toy"]
    with pytest.raises(SpcreidError, match="profiles.embedded.*'toy' is a required property"):
        check_params(params)


def test_unknown_config_key_is_refused(tmp_path):
    root = copy_workflow(tmp_path)
    result = snakemake(root, "-n", "--config", "profil=paper")
    assert result.returncode != 0
    assert "profil" in result.stdout + result.stderr


def test_per_seed_inputs_give_each_seed_its_own_trunk_copies_and_start():
    from spcreid.config.experiments import (
        Run,
        load_params,
        reference_seeds,
        run_config,
        seeded_path,
        synthesis_seed,
        trunk_path,
    )

    params = load_params(REPO / "params.yaml")
    assert seeded_path("data/x/weights/trunk.pth", 7) == "data/x/weights/trunk-seed7.pth"
    assert seeded_path("w/trunk.pth", "{s}") == "w/trunk-seed{s}.pth"
    # The shared-input default: one trunk, one cache, one untrained start; its run configs unchanged.
    params["profile"] = "embedded"
    assert trunk_path(params, 3) == "data/embedded/weights/toy-pretrained.pth" and synthesis_seed(params, 3) == 0
    assert reference_seeds(params, "pretrained-start") == [0]
    assert "seed" not in run_config(params, Run("prcc", "full", 3))["synthesis"]
    # The miniature: seed N's trunk and copies, and an untrained start per seed; the colour histogram stays single.
    params["profile"] = "miniature"
    config = run_config(params, Run("prcc", "full", 3))
    assert config["train"]["pretrained"] == "data/miniature/weights/toy-pretrained-seed3.pth"
    assert config["synthesis"]["seed"] == 3 == synthesis_seed(params, 3)
    seeds = params["profiles"]["miniature"]["seeds"]
    assert reference_seeds(params, "pretrained-start") == seeds == reference_seeds(params, "supervised")
    assert reference_seeds(params, "colour-histogram") == [0]


def test_a_claim_about_an_untrained_experiment_is_refused_naming_it():
    params = load_params(REPO / "params.yaml")
    params["claims"][1]["reference"] = "ca_typo"
    with pytest.raises(SpcreidError, match=r"claims\[1\] \('Ca adds to the baseline'\): reference 'ca_typo' on 'prcc'"):
        check_params(params)
