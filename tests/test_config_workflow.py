"""spcreid.config.workflow: the workflow's plan of params.yaml, tested without Snakemake."""

from __future__ import annotations

import copy
import json
import os
from types import SimpleNamespace

import pytest
import yaml

from spcreid.config.experiments import Run, check_params, load_params
from spcreid.config.workflow import (
    WEIGHT_FILES,
    Plan,
    SnakemakeCall,
    check_image,
    evaluation_args,
    flag,
    folder_flag,
    listed_sha256,
    load_config,
    main_image,
    one_of,
    params_file,
)
from spcreid.errors import SpcreidError
from workflow_helpers import REPO

PARAMS = REPO / "params.yaml"


def plan(profile: str, edit=None) -> Plan:
    params = load_params(PARAMS, profile=profile)
    if edit is not None:
        edit(params)
        check_params(params)  # as the workflow does: the plan reads a checked configuration
    return Plan(params)


def fake_workflow(configfiles=(), overrides=None, methods=("APPTAINER",), **dag):
    settings = {"forceall": False, "forcetargets": False, "forcerun": set()} | dag
    return SimpleNamespace(
        overwrite_configfiles=list(configfiles),
        config_settings=SimpleNamespace(config=overrides or {}),
        deployment_settings=SimpleNamespace(deployment_method=[SimpleNamespace(name=m) for m in methods]),
        dag_settings=SimpleNamespace(**settings),
    )


# ---- the configuration --------------------------------------------------------------------------------------------


def test_snakemake_call_reads_the_options_it_was_given():
    call = SnakemakeCall(fake_workflow(["a.yaml"], {"profile": "paper"}, forcerun={"train"}))
    assert call.configfiles == ["a.yaml"] and call.config_overrides == {"profile": "paper"}
    assert call.apptainer and not SnakemakeCall(fake_workflow(methods=())).apptainer
    assert call.forces("train", ["x/model.pt"]) and not call.forces("evaluate", ["x/model.pt"])
    assert SnakemakeCall(fake_workflow(forcerun={"x/model.pt"})).forces("train", ["x/model.pt"])
    assert SnakemakeCall(fake_workflow(forceall=True)).forces("train", [])


def test_load_config_reads_configfiles_again_and_retypes_nested_overrides(tmp_path):
    config = yaml.safe_load(PARAMS.read_text())
    config["method"]["eps"] = "0.3"  # what Snakemake's --config method={eps: 0.3} leaves
    load_config(config, SnakemakeCall(fake_workflow(overrides={"method": {"eps": "0.3"}})), str(PARAMS))
    assert config["method"]["eps"] == 0.3 and config["profiles"]["embedded"]["verify"] == {"strict_counts": True}
    twice = tmp_path / "twice.yaml"
    twice.write_text("method:\n  eps: 0.5\n  eps: 0.6\n")
    with pytest.raises(SpcreidError, match="key 'eps' appears twice"):
        load_config(yaml.safe_load(PARAMS.read_text()), SnakemakeCall(fake_workflow([twice])), str(PARAMS))


def test_params_file_is_params_yaml_unless_the_configuration_changed(tmp_path):
    params = load_params(PARAMS, profile="paper")
    params["gallery_mode"] = "single"  # workflow options and the profile do not count
    assert params_file(params, str(PARAMS), str(tmp_path)) == str(PARAMS)
    params["profiles"]["embedded"]["seeds"] = [1]
    written = params_file(params, str(PARAMS), str(tmp_path))
    assert written.startswith(f"{tmp_path}/params-") and json.loads(open(written).read()) == params
    assert params_file(params, str(PARAMS), str(tmp_path)) == written  # one file per content


def test_schema_declares_the_section_defaults_and_pise_keeps_its_own():
    params = load_params(PARAMS)
    embedded, paper = params["profiles"]["embedded"], params["profiles"]["paper"]
    assert embedded["verify"] == {"strict_counts": True}
    assert embedded["parsing"] == {"source": "schp", "network": "schp", "batch": 16, "labels": "spcreid"}
    # A parsing-swap profile gets none of PISE's settings: its run configurations stay as they were.
    assert embedded["synthesis"] == {"backend": "parsing-swap", "fit": "pad"}
    raw = yaml.safe_load(PARAMS.read_text())
    raw["profile"] = "paper"
    raw["profiles"]["paper"]["synthesis"] = {"backend": "pise"}
    del raw["profiles"]["paper"]["parsing"]
    check_params(raw)
    synthesis = raw["profiles"]["paper"]["synthesis"]
    assert synthesis == {"backend": "pise", "network": "pise", "batch": 8, "keypoint_min_size": 800, "fit": "pad"}
    # The device follows train.device: the one default the plan fills.
    filled = Plan(raw)
    assert filled.synthesis["device"] == filled.parsing["device"] == paper["train"]["device"] == "cuda"


# ---- checks the schema cannot express -----------------------------------------------------------------------------


def test_a_path_in_another_profiles_data_folder_is_refused():
    def edit(params):
        params["profiles"]["paper"]["train"]["pretrained"] = "data/weights/resnet50-imagenet.pth"

    with pytest.raises(
        SpcreidError, match=r"profiles\.paper\.train\.pretrained = data/weights/.*put it under data/paper/"
    ):
        plan("paper", edit)


def test_pretraining_needs_its_output_and_its_own_people():
    with pytest.raises(SpcreidError, match="pretrain is set but train.pretrained is null"):
        plan("embedded", lambda p: p["profiles"]["embedded"]["train"].update(pretrained=None))
    with pytest.raises(SpcreidError, match=r"pretrain\.toy_seed 11 must differ .*clash: \['prcc'\]"):
        plan("embedded", lambda p: p["profiles"]["embedded"]["pretrain"].update(toy_seed=11))


def test_unbalanced_fetch_words_are_refused_when_the_plan_is_made():
    with pytest.raises(SpcreidError, match="quote it as you would on a shell line"):
        plan("paper", lambda p: p.update(fetch_prcc="--archive 'unclosed"))


# ---- paths and inputs ---------------------------------------------------------------------------------------------


def test_every_path_carries_the_profile():
    shared, seeded = plan("embedded"), plan("miniature")
    assert shared.run_dir == "work/embedded/runs/{key}/{experiment}/seed{seed}"
    assert shared.per_query == "results/embedded/metrics/{key}/{experiment}/seed{seed}.per_query.npz"
    assert shared.log_path("tables") == "work/embedded/logs/tables.log"
    assert shared.bench_path("tables") == "work/embedded/benchmarks/tables.tsv"
    assert shared.synthesis_index("prcc", 3) == "data/embedded/synth/prcc/parsing-swap/index.csv"
    assert shared.packed_store("prcc", 3) == "data/embedded/packed/prcc.pt"
    assert shared.trunk == "data/embedded/weights/toy-pretrained.pth" and shared.synthesis_seed_of(None) == 0
    assert seeded.synthesis_index("prcc", 3) == "data/miniature/synth/prcc/parsing-swap-seed3/index.csv"
    assert seeded.trunk == "data/miniature/weights/toy-pretrained-seed{trunk_seed}.pth"
    assert seeded.trunk_for(2) == "data/miniature/weights/toy-pretrained-seed2.pth" and seeded.trains_trunk
    assert seeded.pretrain_seed("2") == 2 and shared.pretrain_seed(None) == 0
    assert shared.expand_runs(shared.metrics, [Run("prcc", "full", 1)]) == [
        "results/embedded/metrics/prcc/full/seed1.json"
    ]


def test_synthesis_inputs_follow_the_experiments():
    embedded, paper = plan("embedded"), plan("paper")
    assert embedded.uses_synthesis("full") and not embedded.uses_synthesis("baseline")
    assert embedded.synth_copies == 4
    assert embedded.pack_synthesis("prcc", None) == "data/embedded/synth/prcc/parsing-swap/index.csv"
    assert embedded.synthesis_manifest("prcc") == "data/embedded/manifests/prcc.csv"
    assert paper.synthesis_manifest("prcc") == "data/paper/parsing/prcc/manifest.csv"
    assert not paper.trains_trunk and paper.trunk_for(1) == "data/paper/weights/resnet50-imagenet.pth"


def test_paper_downloads_are_the_raw_datasets_and_every_weight_file():
    assert plan("paper").downloads() == [
        "data/paper/raw/prcc",
        "data/paper/raw/VC-Clothes",
        "data/paper/weights/resnet50-imagenet.pth",
        "data/paper/weights/schp-lip.pth",
        "data/paper/weights/pise-texture/latest_net_G.pth",
        "data/paper/weights/keypointrcnn-coco.pth",
    ]
    assert plan("embedded").downloads() == []


def test_only_a_stand_in_profile_gets_its_inputs_written():
    rehearsal = plan("rehearsal")
    assert rehearsal.stand_in_inputs == "data/rehearsal/inputs"
    outputs = rehearsal.stand_in_outputs()
    assert outputs["sums"] == "data/rehearsal/inputs/SHA256SUMS"
    assert outputs["archives"] == ["data/rehearsal/inputs/VC-Clothes.zip", "data/rehearsal/inputs/prcc.zip"]
    assert set(outputs["weights"]) == {f"data/rehearsal/inputs/{WEIGHT_FILES[name]}" for name in WEIGHT_FILES} - {
        "data/rehearsal/inputs/vgg19-imagenet.pth"
    }
    # Real networks read real weights: an offline folder is never filled with stand-ins.
    offline = plan("paper", lambda p: p["profiles"]["paper"].update(local_weights="/mnt/weights"))
    assert offline.stand_in_inputs is None and offline.stand_in_outputs() == {}
    assert offline.local_weight("schp-lip") == {
        "local_file": "/mnt/weights/schp-lip.pth",
        "local_sums": "/mnt/weights/SHA256SUMS",
    }
    assert plan("paper").local_weight("schp-lip") == {}


def test_the_archive_comes_from_params_unless_the_fetch_words_name_one():
    rehearsal = plan("rehearsal")
    assert rehearsal.archive("prcc", "data/rehearsal/raw") == "data/rehearsal/inputs/prcc.zip"
    assert rehearsal.fetch_flags("prcc", "data/rehearsal/raw") == ["--archive", "data/rehearsal/inputs/prcc.zip"]
    assert rehearsal.archive("prcc", "elsewhere") is None
    words = plan("rehearsal", lambda p: p.update(fetch_prcc="--archive 'my copy.zip' --sha256 ab"))
    assert words.archive("prcc", "data/rehearsal/raw") is None
    assert words.fetch_flags("prcc", "data/rehearsal/raw") == ["--archive", "my copy.zip", "--sha256", "ab"]
    assert plan("paper").fetch_flags("VC-Clothes", "data/paper/raw") == []


# ---- arguments ----------------------------------------------------------------------------------------------------


def test_flags_from_the_profile():
    embedded, paper = plan("embedded"), plan("paper")
    toy = embedded.toy_flags()
    assert toy[:2] == ["--identities", "450"] and "--train-outfits" in toy
    assert "--train-outfits" not in embedded.pretrain_toy_flags()
    assert paper.parse_flags("prcc", "w.pth") == [
        *["--weights", "w.pth", "--network", "schp", "--device", "cuda", "--batch", "16"],
    ]
    maps = plan(
        "paper", lambda p: p["profiles"]["paper"].update(parsing={"source": "maps", "root": "m", "labels": "lip"})
    )
    assert maps.parse_flags("prcc", None) == ["--maps", "m", "--data-root", "data/paper/raw", "--maps-labels", "lip"]
    assert paper.pise_flags() == [
        *["--pise-network", "pise", "--device", "cuda", "--pise-batch", "8"],
        *["--keypoint-min-size", "800", "--pise-fit", "pad"],
    ]
    assert flag("--packed-images", "p.pt") == ["--packed-images", "p.pt"] and flag("--packed-images", []) == []
    assert folder_flag("--synthesis", "s/pise/index.csv") == ["--synthesis", "s/pise"] and folder_flag("-s", []) == []
    assert embedded.pack_copy_flags("s/index.csv") == ["--synthesis", "s", "--copies", "4"]
    assert embedded.pack_copy_flags(None) == []


def test_evaluation_args_pair_each_model_with_its_outputs():
    assert evaluation_args("r/seed0/model.pt", "m0.json", "m0.npz") == [
        *["--run", "r/seed0", "--out", "m0.json", "--per-query", "m0.npz"],
    ]
    both = evaluation_args(["a/model.pt", "b/model.pt"], ["a.json", "b.json"], ["a.npz", "b.npz"])
    assert both[:6] == ["--run", "a", "--out", "a.json", "--per-query", "a.npz"] and both[6:8] == ["--run", "b"]


def test_local_weights_are_pinned_to_the_listed_sha256(tmp_path):
    sums = tmp_path / "SHA256SUMS"
    sums.write_text("aa  schp-lip.pth\nbb *pise-texture/latest_net_G.pth\n")
    assert listed_sha256(str(sums), "pise-texture/latest_net_G.pth") == "bb"
    offline = plan("paper", lambda p: p["profiles"]["paper"].update(local_weights=str(tmp_path)))
    assert offline.local_weight_flags("schp-lip", "f.pth", str(sums)) == ["--file", "f.pth", "--sha256", "aa"]
    with pytest.raises(SpcreidError, match="lists no keypointrcnn-coco.pth"):
        offline.local_weight_flags("keypointrcnn-coco", "f.pth", str(sums))
    # Not written yet: the error names the file, which is how Snakemake knows to defer the job's params (<TBD>).
    with pytest.raises(FileNotFoundError) as missing:
        listed_sha256(str(tmp_path / "later" / "SHA256SUMS"), "schp-lip.pth")
    assert missing.value.filename == str(tmp_path / "later" / "SHA256SUMS")


def test_resume_only_when_not_forced(tmp_path):
    embedded = plan("embedded")
    run = Run("prcc", "full", 1)
    (tmp_path / "config.json").write_text(embedded.run_config_json(run))
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    assert embedded.resume_flags(run, str(tmp_path), [], forced=False) == ["--resume"]
    assert embedded.resume_flags(run, str(tmp_path), [], forced=True) == []
    assert embedded.resume_flags(Run("prcc", "full", 2), str(tmp_path), [], forced=False) == []


def test_one_of_matches_exactly_the_names_or_nothing():
    assert one_of(["b.1", "a"]) == r"a|b\.1" and one_of([]) == "(?!x)x"


# ---- the container image ------------------------------------------------------------------------------------------


def test_image_choice_and_check(tmp_path):
    (tmp_path / "containers").mkdir()
    digest = tmp_path / "containers/image-digest"
    digest.write_text("docker://ghcr.io/x/spcreid@sha256:" + "0" * 64 + "\n")
    sif = os.path.abspath(tmp_path / "containers/spcreid.sif")
    assert main_image({}, str(tmp_path)) == sif  # no release recorded: the local build is the only image
    with pytest.raises(SpcreidError, match="does not exist: build it once with `make image`"):
        check_image(sif, apptainer=True)
    check_image(sif, apptainer=False)  # no containers, nothing to check
    released = "docker://ghcr.io/x/spcreid@sha256:" + "ab" * 32
    digest.write_text(released + "\n")
    assert main_image({}, str(tmp_path)) == released
    (tmp_path / "containers/spcreid.sif").write_bytes(b"")
    assert main_image({}, str(tmp_path)) == sif  # a build here wins
    assert main_image({"main_image": "x.sif"}, str(tmp_path)) == "x.sif"


def test_plan_leaves_the_params_it_was_given_alone():
    params = load_params(PARAMS, profile="paper")
    before = copy.deepcopy(params)
    Plan(params).downloads()
    assert params == before
