"""``make gpu-check``: every CUDA path of the paper profile on tiny inputs, then the figures that size a paper run.

One script, no network, meant for the first minutes on a GPU machine (docs/WORKFLOW.md, "GPU check"):

1. the rehearsal (``make rehearsal``'s DAG: parse, keypoints, PISE, train, evaluate, tables) with every device
   set to ``cuda`` and the training images in the device store; on CUDA the trainer and the feature extractor
   run under bf16 autocast in channels-last, so those paths run too;
2. throughput: training steps of ResNet-50 at 256x128 (the paper's batch, bf16, channels-last), feature
   extraction, pseudo-labels at PRCC's train size, SCHP and PISE with random weights (their real networks where
   their sources are found, else the stand-ins, said so), keypoint R-CNN at its resize bound;
3. the projection of the paper profile's runs (``paper_plan``) from those rates.

Figures go to stdout and, temp-then-rename, to ``OUT/gpu-check.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from spcreid.errors import SpcreidError

# ResNet-50 at 256x128, last stride 1: forward 8.1, forward + backward 24.2 GFLOP per image (torch's
# FlopCounterMode, counted here on CPU).
TRAIN_GFLOP_PER_IMAGE = 24.2
FORWARD_GFLOP_PER_IMAGE = 8.1
# Dense bf16 tensor-core peaks from the vendors' data sheets (TFLOP/s), matched against torch's device name in
# this order (the more specific name first).
PEAK_BF16_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
)
# What the check sets on top of the rehearsal profile (a --configfile merged over params.yaml).
REHEARSAL_ON_CUDA = {
    "profiles": {
        "rehearsal": {
            "parsing": {"device": "cuda"},
            "synthesis": {"device": "cuda"},
            "train": {"device": "cuda", "image_store": "device"},
        }
    }
}
NOT_RUN = "not measured"


def peak_tflops(device_name: str) -> float | None:
    for name, peak in PEAK_BF16_TFLOPS:
        if name in device_name:
            return peak
    return None


def train_flop_fraction(images_per_s: float, device_name: str) -> dict[str, Any]:
    """The TFLOP/s that ``images_per_s`` training images are at 24.2 GFLOP each, and their share of the peak."""
    achieved = images_per_s * TRAIN_GFLOP_PER_IMAGE / 1000.0
    peak = peak_tflops(device_name)
    return {
        "achieved_tflops": round(achieved, 1),
        "peak_bf16_tflops": peak,
        "fraction_of_peak": round(achieved / peak, 3) if peak else None,
    }


def paper_plan(params_path: str | os.PathLike = "params.yaml") -> dict[str, Any]:
    """What the paper profile computes: per run, images trained and extracted and clusterings; per dataset,
    images parsed and copies synthesised (the copies every experiment shares: the largest S)."""
    # lazy: start-up time
    from spcreid.config.experiments import load_params, method_config, profile, runs
    from spcreid.data.registry import DATASETS

    params = load_params(params_path, profile="paper")
    prof = profile(params)
    train = prof["train"]
    epochs, iters = int(train["epochs"]), int(train["iters_per_epoch"])
    plan_runs = []
    for run in runs(params):
        method = method_config(params, run.experiment)
        batch = int(method["P"]) * int(method["K"]) * (1 + int(method["S"]) if method["augment"] else 1)
        images = DATASETS[prof["datasets"][run.dataset]["source"]].published_counts["train"]["images"]
        plan_runs.append(
            {
                "dataset": run.dataset,
                "experiment": run.experiment,
                "seed": run.seed,
                "trained_images": epochs * iters * batch,
                "extracted_images": epochs * images,
                "clusterings": epochs,
                "train_images": images,
            }
        )
    copies = max(int(method_config(params, r.experiment)["S"]) for r in runs(params))
    datasets = {}
    for run in plan_runs:
        datasets[run["dataset"]] = {"parsed_images": run["train_images"], "copies": run["train_images"] * copies}
    return {"runs": plan_runs, "datasets": datasets, "height": train["height"], "width": train["width"]}


def project_hours(plan: dict[str, Any], rates: dict[str, float]) -> dict[str, Any]:
    """Hours of ``plan`` at ``rates``: train / extract / parse / pise / keypoint images per second and
    ``cluster_s`` seconds per clustering at PRCC's size (scaled linearly with the number of images)."""
    cluster_at = rates["cluster_images"]
    per_run = []
    for run in plan["runs"]:
        seconds = (
            run["trained_images"] / rates["train"]
            + run["extracted_images"] / rates["extract"]
            + run["clusterings"] * rates["cluster_s"] * run["train_images"] / cluster_at
        )
        per_run.append(seconds)
    prepare = sum(
        d["parsed_images"] / rates["parse"] + d["parsed_images"] / rates["keypoints"] + d["copies"] / rates["pise"]
        for d in plan["datasets"].values()
    )
    return {
        "runs": len(per_run),
        "hours_per_run": [round(s / 3600, 2) for s in per_run],
        "hours_runs": round(sum(per_run) / 3600, 2),
        "hours_parse_keypoints_pise": round(prepare / 3600, 2),
        "hours_total": round((sum(per_run) + prepare) / 3600, 2),
    }


# ---- the measurements (CUDA) ----------------------------------------------------------------------------------


def _require_cuda():
    import torch

    if not torch.cuda.is_available():
        raise SpcreidError(
            "gpu-check needs a CUDA GPU, but torch sees none (torch.cuda.is_available() is False); run it on a GPU "
            "machine, where `nvidia-smi` lists the card"
        )
    return torch.device("cuda")


def _timed(step, steps: int, device: str) -> float:
    import torch

    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    step()  # warm-up: allocator, kernel selection
    sync()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return (time.perf_counter() - started) / steps


def measure_extract(
    batch: int = 256, steps: int = 5, height: int = 256, width: int = 128, device: str = "cuda"
) -> float:
    # lazy: start-up time (torch)
    import torch

    from spcreid.models.backbone import build_model

    model = build_model("resnet50", None, "avg", last_stride=1).to(device).eval()
    model.to(memory_format=torch.channels_last)
    images = torch.randn(batch, 3, height, width, device=device).contiguous(memory_format=torch.channels_last)
    on_cuda = device.startswith("cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if on_cuda else contextlib.nullcontext()

    def step():
        with torch.no_grad(), autocast:
            model(images)

    return batch / _timed(step, steps, device)


def measure_parse(schp_root: Path | None, batch: int = 16, steps: int = 3, device: str = "cuda") -> tuple[float, str]:
    # lazy: start-up time (torch)
    import numpy as np
    import torch

    from spcreid.parsing.run import parse_images
    from spcreid.parsing.schp import NETWORK_FILE, build_network

    network = "schp" if schp_root is not None and (schp_root / NETWORK_FILE).is_file() else "stand-in"
    model = build_network(network, schp_root).to(device).eval()
    crops = [np.random.default_rng(i).integers(0, 256, (256, 128, 3), dtype=np.uint8) for i in range(batch)]
    return batch / _timed(lambda: parse_images(model, crops, torch.device(device)), steps, device), network


def measure_pise(pise_root: Path | None, batch: int = 8, steps: int = 3, device: str = "cuda") -> tuple[float, str]:
    # lazy: start-up time (torch)
    import torch

    from spcreid.synthesis.pise.adapter import GENERATOR_FILE, build_generator, texture_transfer

    network = "pise" if pise_root is not None and (pise_root / GENERATOR_FILE).is_file() else "stand-in"
    generator = build_generator(network, pise_root).to(device).eval()
    image = torch.rand(batch, 3, 256, 256, device=device) * 2 - 1
    pose = torch.rand(batch, 18, 256, 256, device=device)
    labels = torch.randint(0, 8, (batch, 256, 256), device=device)
    parsing = torch.nn.functional.one_hot(labels, 8).permute(0, 3, 1, 2).float()

    def step():
        with torch.inference_mode():
            texture_transfer(generator, image, pose, parsing, image.flip(0), parsing.flip(0), (3, 4))

    return batch / _timed(step, steps, device), network


def measure_keypoints(min_size: int = 800, batch: int = 8, steps: int = 3, device: str = "cuda") -> float:
    import numpy as np
    import torch
    from torchvision.models.detection import keypointrcnn_resnet50_fpn

    model = keypointrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_keypoints=17, min_size=min_size, box_detections_per_img=1
    )
    model = model.to(device).eval()
    crops = [
        torch.from_numpy(np.random.default_rng(i).integers(0, 256, (256, 128, 3), dtype=np.uint8)) for i in range(batch)
    ]
    tensors = [c.to(device).permute(2, 0, 1).float().div(255) for c in crops]

    def step():
        with torch.inference_mode():
            model(tensors)

    return batch / _timed(step, steps, device)


def run_rehearsal(out: Path, cores: str) -> float:
    """The rehearsal DAG with every device on CUDA, from scratch (a finished CPU rehearsal would otherwise leave
    Snakemake nothing to run); returns its seconds."""
    # lazy: start-up time
    import shutil

    import yaml

    from spcreid.io import write_text

    for folder in ("data/rehearsal", "work/rehearsal", "results/rehearsal"):  # the rehearsal's own, rebuilt here
        shutil.rmtree(folder, ignore_errors=True)
    overrides = out / "rehearsal-on-cuda.yaml"
    write_text(overrides, yaml.safe_dump(REHEARSAL_ON_CUDA, sort_keys=True))
    started = time.perf_counter()
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    steps = (
        [str(bin_dir / "spcreid"), "make-rehearsal-inputs", "--out", "data/rehearsal/inputs"],
        [str(bin_dir / "snakemake"), "--cores", cores, "--configfile", str(overrides), "--config", "profile=rehearsal"],
    )
    for command in steps:
        with open(out / "rehearsal.log", "a") as log:
            done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        if done.returncode != 0:
            raise SpcreidError(
                f"gpu-check: `{' '.join(command)}` failed (exit {done.returncode}); see {out}/rehearsal.log"
            )
    return time.perf_counter() - started


def _root(option: str | None, variable: str, default: str) -> Path | None:
    for candidate in (option, os.environ.get(variable), default, f"../shared/upstream/{Path(default).name.lower()}"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spcreid.gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/gpu-check", help="folder for gpu-check.json and the logs")
    parser.add_argument("--cores", default="all", help="snakemake --cores of the rehearsal (default all)")
    parser.add_argument("--skip-rehearsal", action="store_true", help="throughput figures only")
    parser.add_argument("--schp-root", help="SCHP source (default $SPCREID_SCHP_ROOT, /opt/schp)")
    parser.add_argument("--pise-root", help="PISE source (default $SPCREID_PISE_ROOT, /opt/PISE)")
    args = parser.parse_args(argv)
    try:
        figures = check(args)
    except SpcreidError as exc:
        print(f"gpu-check: error: {exc}", file=sys.stderr)
        return 2
    print(report(figures))
    return 0


def check(args: argparse.Namespace) -> dict[str, Any]:
    # lazy: start-up time (torch)
    import torch

    from spcreid.clustering.bench import run_pseudo_label_benchmark
    from spcreid.engine.bench import measure_train_throughput
    from spcreid.io import write_json

    _require_cuda()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(0)
    figures: dict[str, Any] = {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda}
    figures["rehearsal_s"] = None if args.skip_rehearsal else round(run_rehearsal(out, args.cores), 1)
    plan = paper_plan()
    train = measure_train_throughput(
        "resnet50", 160, plan["height"], plan["width"], steps=10, clusters=500, device="cuda"
    )
    figures["train"] = {**train, **train_flop_fraction(train["images_per_s"], name)}
    figures["extract_images_per_s"] = round(measure_extract(), 1)
    prcc = plan["datasets"].get("prcc", next(iter(plan["datasets"].values())))["parsed_images"]
    cluster = run_pseudo_label_benchmark(n=prcc, dim=2048, device="cuda", progress=False)
    figures["cluster"] = {"images": prcc, "seconds": cluster["seconds"]}
    parse_rate, parse_network = measure_parse(_root(args.schp_root, "SPCREID_SCHP_ROOT", "/opt/schp"))
    pise_rate, pise_network = measure_pise(_root(args.pise_root, "SPCREID_PISE_ROOT", "/opt/PISE"))
    figures["parse"] = {"network": parse_network, "images_per_s": round(parse_rate, 1)}
    figures["pise"] = {"network": pise_network, "images_per_s": round(pise_rate, 1)}
    figures["keypoints_images_per_s"] = round(measure_keypoints(), 1)
    rates = {
        "train": train["images_per_s"],
        "extract": figures["extract_images_per_s"],
        "cluster_s": cluster["seconds"],
        "cluster_images": prcc,
        "parse": parse_rate,
        "pise": pise_rate,
        "keypoints": figures["keypoints_images_per_s"],
    }
    figures["projection"] = project_hours(plan, rates)
    write_json(out / "gpu-check.json", figures)
    return figures


def report(figures: dict[str, Any]) -> str:
    train, projection = figures["train"], figures["projection"]
    fraction = train["fraction_of_peak"]
    share = f"{fraction:.1%} of the {train['peak_bf16_tflops']:g} TFLOP/s bf16 peak" if fraction else "peak unknown"
    rehearsal = figures["rehearsal_s"]
    lines = [
        f"device                 {figures['device']} (torch {figures['torch']}, CUDA {figures['cuda']})",
        "rehearsal on cuda      " + (f"passed in {rehearsal} s" if rehearsal is not None else "skipped"),
        f"train, ResNet-50       {train['images_per_s']} images/s at {train['height']}x{train['width']}, batch "
        f"{train['batch']}, {train['precision']}: {train['achieved_tflops']} TFLOP/s at {TRAIN_GFLOP_PER_IMAGE} "
        f"GFLOP/image, {share}",
        f"feature extraction     {figures['extract_images_per_s']} images/s",
        f"pseudo-labels          {figures['cluster']['seconds']} s for {figures['cluster']['images']} images",
        f"parse ({figures['parse']['network']:8s})      {figures['parse']['images_per_s']} images/s",
        f"PISE ({figures['pise']['network']:8s})       {figures['pise']['images_per_s']} copies/s",
        f"keypoint R-CNN         {figures['keypoints_images_per_s']} images/s",
        f"projected paper runs   {projection['runs']} runs {projection['hours_runs']} h + parse/keypoints/PISE "
        f"{projection['hours_parse_keypoints_pise']} h = {projection['hours_total']} h on this GPU",
    ]
    return "\n".join(lines) + "\n" + json.dumps(figures, indent=2)


if __name__ == "__main__":
    sys.exit(main())
