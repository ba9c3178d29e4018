"""The params schema is the one declaration of every option, its default and its allowed values."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml

from spcreid.config.experiments import Run, check_params, load_params, method_config, run_config
from spcreid.config.schema import SCHEMA_PATH, method_defaults, validate_params
from spcreid.engine.trainer import resolve_config
from spcreid.errors import SpcreidError
from spcreid.method.losses import KL_DISTRIBUTIONS, MEMORY_COMBINATIONS
from spcreid.method.memory import HARD_MEASURES, SAMPLING_MODES
from workflow_helpers import REPO, copy_workflow, snakemake

OPTIONAL = (
    "memory_combination",
    "kl_distribution",
    "kl_temperature",
    "hard_measure",
    "lr_schedule",
    "lr_steps",
    "lr_gamma",
)


def _raw_params():
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_defaults_are_declared_once_in_the_schema():
    schema = json.loads(SCHEMA_PATH.read_text())
    assert method_defaults() == {
        "memory_combination": "mean",
        "kl_distribution": "features",
        "kl_temperature": 0.05,
        "hard_measure": "kl",
        "lr_schedule": "constant",
        "lr_steps": [],
        "lr_gamma": 0.1,
    }
    fields = schema["$defs"]["methodFields"]["properties"]
    assert SAMPLING_MODES == tuple(fields["sampling"]["enum"]) == ("none", "average", "hardest", "both")
    assert HARD_MEASURES == ("kl", "cosine") and MEMORY_COMBINATIONS == ("mean", "union")
    assert KL_DISTRIBUTIONS == ("features", "memory")
    # No second copy of the defaults in the Python sources.
    for path in (REPO / "src/spcreid").rglob("*.py"):
        assert "METHOD_DEFAULTS" not in path.read_text(), path


def test_missing_optional_fields_take_the_schema_defaults_and_agree_with_snakemake():
    from snakemake.utils import validate

    params = _raw_params()
    for name in OPTIONAL:
        params["method"].pop(name)
    ours, theirs = copy.deepcopy(params), copy.deepcopy(params)
    check_params(ours)
    validate(theirs, str(SCHEMA_PATH), set_default=True)
    assert ours == theirs
    assert {name: ours["method"][name] for name in OPTIONAL} == method_defaults()
    # Override blocks are not filled: the embedded profile's kl_temperature survives the merge.
    assert ours["experiments"]["baseline"] == {"augment": False, "self_identity": False, "sampling": "none"}
    assert method_config(ours, "full")["kl_temperature"] == ours["profiles"]["embedded"]["method"]["kl_temperature"]


def test_resolve_config_fills_defaults_from_the_schema():
    params = load_params(REPO / "params.yaml")
    config = run_config(params, Run("prcc", "full", 1))
    for name in ("lr_schedule", "lr_gamma", "memory_combination"):
        del config["method"][name]
    resolved = resolve_config(config)
    assert (resolved["method"]["lr_schedule"], resolved["method"]["lr_gamma"]) == ("constant", 0.1)
    assert resolved["method"]["memory_combination"] == "mean"


@pytest.mark.parametrize("momentum, accepted", [(0.0, True), (0.999, True), (1.0, False), (-0.1, False)])
def test_momentum_lies_in_zero_one_everywhere(momentum, accepted):
    params = load_params(REPO / "params.yaml")
    params["method"]["momentum"] = momentum
    config = run_config(params, Run("prcc", "full", 1))
    if accepted:
        check_params(params)
        assert resolve_config(config)["method"]["momentum"] == momentum
    else:
        with pytest.raises(SpcreidError, match=r"field 'method\.momentum'"):
            check_params(params)
        with pytest.raises(SpcreidError, match=r"method\.momentum"):
            resolve_config(config)


def test_resolve_config_refuses_an_unknown_choice_naming_it():
    config = run_config(load_params(REPO / "params.yaml"), Run("prcc", "full", 1))
    config["method"]["hard_measure"] = "euclid"
    with pytest.raises(SpcreidError, match=r"method\.hard_measure: 'euclid' is not one of \['kl', 'cosine'\]"):
        resolve_config(config)


def test_validate_params_names_the_file():
    params = _raw_params()
    params["method"]["lr_schedule"] = "cosine"
    with pytest.raises(SpcreidError, match=r"^mine\.yaml: field 'method\.lr_schedule': 'cosine' is not one of"):
        validate_params(params, source="mine.yaml")


def test_configfile_overlays_params_yaml_and_reaches_the_jobs(tmp_path):
    root = copy_workflow(tmp_path)
    (root / "one-seed.yaml").write_text("profiles:\n  embedded:\n    seeds: [1]\n")
    base = snakemake(root, "-n", "-p")
    overlaid = snakemake(root, "-n", "-p", "--configfile", "one-seed.yaml")
    assert base.returncode == 0 and overlaid.returncode == 0, overlaid.stderr
    train = re.compile(r"spcreid train --params (\S+) .*?--seed (\d+)")
    base_jobs, overlaid_jobs = train.findall(base.stdout), train.findall(overlaid.stdout)
    assert {seed for _, seed in base_jobs} == {"1", "2", "3"}
    assert {seed for _, seed in overlaid_jobs} == {"1"} and 3 * len(overlaid_jobs) == len(base_jobs)
    assert {path for path, _ in base_jobs} == {"params.yaml"}
    # The jobs read the merged configuration, not params.yaml: the same seeds, the rest unchanged.
    (merged,) = {path for path, _ in overlaid_jobs}
    content = json.loads((root / merged).read_text())
    assert content["profiles"]["embedded"]["seeds"] == [1]
    assert content["method"] == load_params(REPO / "params.yaml")["method"]


def test_configfile_with_a_bad_value_names_the_field(tmp_path):
    root = copy_workflow(tmp_path)
    (root / "bad.yaml").write_text("method:\n  momentum: 1.5\n")
    result = snakemake(root, "-n", "--configfile", "bad.yaml")
    assert result.returncode != 0
    assert "field 'method.momentum': 1.5 is greater than or equal to the maximum of 1" in result.stdout + result.stderr
