"""`make gpu-check` without a GPU: its refusal, the paper plan it projects and its arithmetic, hand-checked."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from spcreid import gpu_check
from spcreid.config.experiments import load_params, profile
from spcreid.config.schema import validate_params

REPO = Path(__file__).resolve().parents[1]


def test_without_a_gpu_it_stops_with_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gpu-check: error: gpu-check needs a CUDA GPU, but torch sees none") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_paper_plan_is_fourteen_runs_at_the_papers_scale():
    plan = gpu_check.paper_plan(REPO / "params.yaml")
    assert len(plan["runs"]) == 14 and (plan["height"], plan["width"]) == (256, 128)
    by_name = {(r["dataset"], r["experiment"]): r for r in plan["runs"]}
    # 120 epochs x 400 iterations x P K (1 + S) = 8 x 4 x 5 = 160 images, or 32 without copies.
    assert by_name["prcc", "full"]["trained_images"] == 120 * 400 * 160 == 7_680_000
    assert by_name["prcc", "baseline"]["trained_images"] == 120 * 400 * 32
    assert by_name["prcc", "full"]["extracted_images"] == 120 * 17_896 and by_name["prcc", "full"]["clusterings"] == 120
    assert by_name["vcclothes", "full"]["extracted_images"] == 120 * 9_449
    assert plan["datasets"] == {
        "prcc": {"parsed_images": 17_896, "copies": 4 * 17_896},
        "vcclothes": {"parsed_images": 9_449, "copies": 4 * 9_449},
    }


def test_projected_hours_add_up_by_hand():
    plan = {
        "runs": [
            {"trained_images": 360_000, "extracted_images": 180_000, "clusterings": 10, "train_images": 500},
            {"trained_images": 36_000, "extracted_images": 0, "clusterings": 0, "train_images": 500},
        ],
        "datasets": {"a": {"parsed_images": 3600, "copies": 7200}},
    }
    rates = {
        "train": 100,
        "extract": 50,
        "cluster_s": 72,
        "cluster_images": 1000,
        "parse": 10,
        "keypoints": 20,
        "pise": 4,
    }
    hours = gpu_check.project_hours(plan, rates)
    # run 1: 3600 s train + 3600 s extract + 10 x 72 s x 500 / 1000 = 360 s -> 2.1 h; run 2: 360 s -> 0.1 h
    assert hours["hours_per_run"] == [2.1, 0.1] and hours["hours_runs"] == 2.2 and hours["runs"] == 2
    # parse 360 s + keypoints 180 s + PISE 1800 s = 2340 s = 0.65 h
    assert hours["hours_parse_keypoints_pise"] == 0.65 and hours["hours_total"] == 2.85


def test_flop_share_of_the_bf16_peak():
    h100 = gpu_check.train_flop_fraction(10_000, "NVIDIA H100 80GB HBM3")
    assert h100 == {"achieved_tflops": 242.0, "peak_bf16_tflops": 989.0, "fraction_of_peak": round(242 / 989, 3)}
    assert gpu_check.train_flop_fraction(1000, "NVIDIA H100 PCIe")["peak_bf16_tflops"] == 756.0
    unknown = gpu_check.train_flop_fraction(1000, "Some Future GPU")
    assert unknown["achieved_tflops"] == 24.2 and unknown["fraction_of_peak"] is None


def test_rehearsal_overrides_put_every_stage_on_cuda_and_validate():
    params = load_params(REPO / "params.yaml", profile="rehearsal")
    merged = copy.deepcopy(params)
    for section, values in gpu_check.REHEARSAL_ON_CUDA["profiles"]["rehearsal"].items():
        merged["profiles"]["rehearsal"][section].update(values)
    rehearsal = profile(validate_params(merged))
    assert rehearsal["parsing"]["device"] == rehearsal["synthesis"]["device"] == rehearsal["train"]["device"] == "cuda"
    assert rehearsal["train"]["image_store"] == "device" and profile(params)["train"]["device"] == "cpu"


def test_make_target_runs_the_check_within_eight_minutes():
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ngpu-check: setup\n", 1)[1].split("\n")[0]
    assert "timeout 480 " in recipe and "-m spcreid.gpu_check" in recipe


def test_each_measurement_runs_on_cpu_at_a_tiny_size(one_torch_thread):
    # The same code the check times on the GPU, here on CPU with the stand-in parser and generator.
    assert gpu_check.measure_extract(batch=2, steps=1, height=64, width=32, device="cpu") > 0
    rate, network = gpu_check.measure_parse(None, batch=2, steps=1, device="cpu")
    assert rate > 0 and network == "stand-in"
    rate, network = gpu_check.measure_pise(None, batch=2, steps=1, device="cpu")
    assert rate > 0 and network == "stand-in"
    assert gpu_check.measure_keypoints(min_size=64, batch=1, steps=1, device="cpu") > 0


def test_report_names_every_figure():
    figures = {
        "device": "NVIDIA H100 80GB HBM3",
        "torch": "2.x",
        "cuda": "13.0",
        "rehearsal_s": 120.5,
        "train": {
            "images_per_s": 2000.0,
            "height": 256,
            "width": 128,
            "batch": 160,
            "precision": "bf16 autocast, channels_last",
            **gpu_check.train_flop_fraction(2000.0, "NVIDIA H100 80GB HBM3"),
        },
        "extract_images_per_s": 6000.0,
        "cluster": {"images": 17896, "seconds": 9.5},
        "parse": {"network": "schp", "images_per_s": 150.0},
        "pise": {"network": "pise", "images_per_s": 40.0},
        "keypoints_images_per_s": 60.0,
        "projection": {"runs": 14, "hours_runs": 12.3, "hours_parse_keypoints_pise": 1.2, "hours_total": 13.5},
    }
    text = gpu_check.report(figures)
    assert "2000.0 images/s at 256x128, batch 160" in text and "48.4 TFLOP/s at 24.2 GFLOP/image" in text
    assert "4.9% of the 989 TFLOP/s bf16 peak" in text and "passed in 120.5 s" in text
    assert "14 runs 12.3 h + parse/keypoints/PISE 1.2 h = 13.5 h on this GPU" in text
