"""``spcreid train``, ``spcreid evaluate``, ``spcreid pretrain-backbone``, ``spcreid bench train-throughput``
and ``spcreid bench input-pipeline``.

torch and the engine are imported inside the command functions so that ``spcreid --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spcreid.errors import SpcreidError

GALLERY_MODES = ("multi", "single", "single-cmc")
PROTOCOLS = ("prcc", "vcclothes", "ltcc")


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help="train one run (dataset x experiment x seed) of params.yaml and evaluate it",
        description="Algorithm 1 of the paper. Writes OUT/{config.json, log.jsonl, checkpoint.pt, model.pt, "
        "metrics.json}; metrics.json is written last.",
    )
    train.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    train.add_argument("--dataset", required=True, help="dataset key of the active profile, e.g. prcc")
    train.add_argument("--experiment", required=True, help="experiment name under 'experiments', e.g. full")
    train.add_argument("--seed", type=int, required=True, help="seed of the run (one of the profile's seeds)")
    train.add_argument("--manifest", required=True, help="the dataset's manifest CSV")
    train.add_argument("--synthesis", help="synthesis cache folder (needed when the experiment augments)")
    _add_packed_argument(train)
    train.add_argument(
        "--profile", help="a profile of params.yaml (embedded, rehearsal, paper, ...) instead of its own"
    )
    train.add_argument("--out", required=True, help="run folder")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if present")
    train.add_argument("--epochs", type=int, help="override train.epochs (quick runs)")
    train.add_argument("--iters", type=int, help="override train.iters_per_epoch (quick runs)")
    train.add_argument("--device", help="override train.device: cpu, cuda, cuda:N or auto")
    train.add_argument(
        "--skip-evaluation",
        action="store_true",
        help="stop after OUT/model.pt (no metrics.json): the workflow evaluates each model once with "
        "`spcreid evaluate`",
    )
    _add_threads_argument(train)
    train.set_defaults(func=run_train)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="evaluate a trained run's model.pt on a manifest's query/gallery rows",
        description="Scores each --run's model.pt and writes the matching --out (and --per-query): several runs of "
        "one dataset (the seeds of a configuration) are scored on one decoding of the test images.",
    )
    evaluate.add_argument(
        "--run", required=True, action="append", help="run folder holding model.pt; repeat for several runs"
    )
    evaluate.add_argument("--manifest", required=True, help="the dataset's manifest CSV")
    evaluate.add_argument("--protocol", required=True, choices=PROTOCOLS, help="dataset protocol")
    evaluate.add_argument(
        "--gallery-mode",
        choices=GALLERY_MODES,
        help="headline mode (the flat keys tables read); every mode of the protocol is scored anyway. "
        "Default: the protocol's (multi)",
    )
    evaluate.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    evaluate.add_argument(
        "--workers", type=int, help="decoding processes (default: up to 8 on CUDA, 0 = in-process on CPU)"
    )
    _add_threads_argument(evaluate)
    evaluate.add_argument(
        "--out", required=True, action="append", help="metrics JSON to write, one per --run, in the same order"
    )
    evaluate.add_argument(
        "--per-query",
        action="append",
        help="per-query first-positive ranks and APs (.npz) for paired tests, one per --run; default: OUT with "
        ".per_query.npz",
    )
    evaluate.set_defaults(func=run_evaluate)

    _register_pretrain(subparsers)
    _register_supervised(subparsers)
    _register_pack(subparsers)


def _add_packed_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--packed-images",
        help="the decoded train images that `spcreid pack-images` wrote for this manifest (and synthesis cache), "
        "instead of decoding them in this job",
    )


def _register_pack(subparsers) -> None:
    pack = subparsers.add_parser(
        "pack-images",
        help="decode a dataset's train images and their synthetic copies once, into one file every run reads",
        description="Decodes the manifest's train images (resized with the training crop margin, plus an "
        "uncropped copy for feature extraction) and, with --synthesis, their first --copies synthetic copies, "
        "into the uint8 store `spcreid train --packed-images` loads in a fraction of a second. Runs without "
        "copies, or with fewer, read the leading part of each row.",
    )
    pack.add_argument("--manifest", required=True, help="the dataset's manifest CSV")
    pack.add_argument("--synthesis", help="synthesis cache folder whose copies to pack (none: sources only)")
    pack.add_argument("--copies", type=int, default=0, help="copies per source to pack (method.S)")
    pack.add_argument("--height", type=int, required=True, help="train.height")
    pack.add_argument("--width", type=int, required=True, help="train.width")
    pack.add_argument("--out", required=True, help="file to write, e.g. data/embedded/packed/prcc.pt")
    pack.add_argument("--workers", type=int, default=0, help="decoding processes (0: in this process)")
    _add_threads_argument(pack)
    pack.set_defaults(func=run_pack_images)


def run_pack_images(args: argparse.Namespace) -> int:
    from spcreid.engine.images import TrainImages
    from spcreid.engine.store import save_packed
    from spcreid.engine.trainer import load_training_data

    _set_threads(args)
    if args.copies < 0 or (args.copies > 0) != (args.synthesis is not None):
        raise SpcreidError("give --synthesis DIR together with --copies S >= 1, or neither (sources only)")
    data = load_training_data(args.manifest, args.synthesis, args.copies)
    images = TrainImages(
        data.paths, data.copies, height=args.height, width=args.width, workers=args.workers, plain=True, progress=True
    )
    store = images.build()
    save_packed(store, images.groups(), args.out)
    print(json.dumps({"out": args.out, **store.describe()}, sort_keys=True))
    return 0


def _register_supervised(subparsers) -> None:
    supervised = subparsers.add_parser(
        "train-supervised",
        help="train the supervised upper bound (true identity labels, same backbone and budget) and evaluate it",
        description="Algorithm 1 of the paper with the pseudo-labels replaced by the train identities "
        "(spcreid.engine.supervised): the Table 2 baseline's recipe, profile's backbone, input size, epochs and "
        "iterations. Writes the same run folder as `spcreid train`, so `spcreid evaluate` scores its model.pt.",
    )
    supervised.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    supervised.add_argument("--dataset", required=True, help="dataset key of the active profile, e.g. prcc")
    supervised.add_argument("--seed", type=int, required=True, help="seed of the run")
    supervised.add_argument("--manifest", required=True, help="the dataset's manifest CSV")
    _add_packed_argument(supervised)
    supervised.add_argument(
        "--profile", help="a profile of params.yaml (embedded, rehearsal, paper, ...) instead of its own"
    )
    supervised.add_argument("--out", required=True, help="run folder")
    supervised.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if present")
    supervised.add_argument("--epochs", type=int, help="override train.epochs (quick runs)")
    supervised.add_argument("--iters", type=int, help="override train.iters_per_epoch (quick runs)")
    supervised.add_argument("--device", help="override train.device: cpu, cuda, cuda:N or auto")
    supervised.add_argument(
        "--skip-evaluation",
        action="store_true",
        help="stop after OUT/model.pt (no metrics.json), as `spcreid train --skip-evaluation`",
    )
    _add_threads_argument(supervised)
    supervised.set_defaults(func=run_train_supervised)

    start = subparsers.add_parser(
        "pretrained-start",
        help="evaluate the untrained start (train.pretrained in train.arch): the lower-bound reference row",
        description="Writes OUT/{config.json, model.pt, metrics.json} like a zero-epoch `spcreid train` run.",
    )
    start.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    start.add_argument("--dataset", required=True, help="dataset key of the active profile, e.g. prcc")
    start.add_argument("--seed", type=int, default=0, help="only matters for a backbone without pretrained weights")
    start.add_argument("--manifest", required=True, help="the dataset's manifest CSV")
    start.add_argument(
        "--profile", help="a profile of params.yaml (embedded, rehearsal, paper, ...) instead of its own"
    )
    start.add_argument("--out", required=True, help="run folder")
    start.add_argument("--device", help="override train.device: cpu, cuda, cuda:N or auto")
    start.add_argument(
        "--pretrained",
        help="override train.pretrained: score another trunk file, e.g. the classifier oracle's (docs/TOY_DATASET.md)",
    )
    _add_threads_argument(start)
    start.set_defaults(func=run_pretrained_start, epochs=None, iters=None)


def _register_pretrain(subparsers) -> None:
    # Options left unset fall back to spcreid.engine.pretrain.PretrainSettings (not imported here: it
    # pulls in torch, and `spcreid --help` should stay fast).
    pretrain = subparsers.add_parser(
        "pretrain-backbone",
        help="pretrain a backbone trunk with outfit labels on a separate toy set (ImageNet stand-in)",
        description="Supervised pretraining on every image of a toy dataset folder, one class per outfit "
        "(pid, clothes_id), so the features separate people but stay clothing-sensitive. Writes only the "
        "trunk, in the layout train.pretrained loads. Generate the folder with `spcreid make-toy-data` and a "
        "seed that no evaluation set uses. Unset options take the defaults of PretrainSettings "
        "(resnet18-small, 64x32, 20 epochs, seed 0, P 16, K 4, lr 1e-3, triplet weight 1). With --labels identity "
        "--split train on an evaluation set it trains the classifier oracle instead (docs/TOY_DATASET.md).",
    )
    pretrain.add_argument("--data", required=True, help="toy dataset folder written by make-toy-data")
    pretrain.add_argument("--arch", help="backbone, as train.arch")
    pretrain.add_argument("--height", type=int, help="input height (use train.height)")
    pretrain.add_argument("--width", type=int, help="input width (use train.width)")
    pretrain.add_argument("--epochs", type=int, help="passes over all outfit classes")
    pretrain.add_argument("--seed", type=int, help="seed of initialisation and sampling")
    pretrain.add_argument("--classes-per-batch", type=int, help="P outfit classes per batch")
    pretrain.add_argument("--images-per-class", type=int, help="K images per class")
    pretrain.add_argument("--lr", type=float, help="Adam learning rate")
    pretrain.add_argument("--triplet-weight", type=float, help="batch-hard triplet weight; 0 disables")
    pretrain.add_argument(
        "--labels",
        choices=("outfit", "identity"),
        default="outfit",
        help="one class per outfit (the ImageNet stand-in, default) or per identity (the classifier oracle)",
    )
    pretrain.add_argument(
        "--split",
        choices=("all", "train"),
        default="all",
        help="all images (a pretraining-only folder, default) or only the train split (an evaluation set)",
    )
    pretrain.add_argument(
        "--out", required=True, help="weights file to write, e.g. data/embedded/weights/toy-pretrained.pth"
    )
    pretrain.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_threads_argument(pretrain)
    pretrain.set_defaults(func=run_pretrain)


def register_bench(bench_subparsers) -> None:
    bench = bench_subparsers.add_parser(
        "train-throughput",
        help="time forward + backward + Adam step of one training batch; prints JSON",
    )
    bench.add_argument("--arch", default="resnet50", help="backbone, as train.arch (default resnet50)")
    bench.add_argument("--batch", type=int, default=160, help="images per step (paper: (1+S)*P*K = 160)")
    bench.add_argument("--height", type=int, default=256, help="input height (default 256)")
    bench.add_argument("--width", type=int, default=128, help="input width (default 128)")
    bench.add_argument("--steps", type=int, default=5, help="timed steps (after one untimed warm-up step)")
    bench.add_argument("--clusters", type=int, default=500, help="rows of the random cluster memory")
    bench.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    _add_threads_argument(bench)
    bench.set_defaults(func=run_bench)

    pipeline = bench_subparsers.add_parser(
        "input-pipeline",
        help="images/s of the training data path alone, of the model step alone and of both; prints JSON",
        description="Writes --sources x (1 + --copies) generated JPEGs to a temporary folder, decodes them once "
        "into the training store, then times batches of --groups x (1 + --copies) images (gather, shared "
        "crop/flip, normalise on the device) with and without the model's forward + backward + Adam step.",
    )
    pipeline.add_argument("--arch", default="resnet50", help="backbone, as train.arch (default resnet50)")
    pipeline.add_argument("--height", type=int, default=256, help="input height (default 256)")
    pipeline.add_argument("--width", type=int, default=128, help="input width (default 128)")
    pipeline.add_argument("--groups", type=int, default=32, help="source images per batch (paper: P*K = 32)")
    pipeline.add_argument("--copies", type=int, default=4, help="synthetic copies per source (paper: S = 4)")
    pipeline.add_argument("--sources", type=int, default=128, help="distinct source images in the store")
    pipeline.add_argument("--data-steps", type=int, default=20, help="timed data-only batches")
    pipeline.add_argument("--model-steps", type=int, default=2, help="timed model steps (0: data path only)")
    pipeline.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    pipeline.add_argument("--store", default="auto", help="image store location: auto, cpu, pinned, device")
    pipeline.add_argument("--workers", type=int, default=0, help="decoding processes for the store")
    _add_threads_argument(pipeline)
    pipeline.set_defaults(func=run_bench_pipeline)


def run_bench_pipeline(args: argparse.Namespace) -> int:
    from spcreid.engine.bench import measure_input_pipeline

    _set_threads(args)
    result = measure_input_pipeline(
        args.arch, args.height, args.width, args.groups, args.copies, args.sources,
        data_steps=args.data_steps, model_steps=args.model_steps, device=args.device, store=args.store,
        workers=args.workers,
    )  # fmt: skip
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def _add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (default: torch's choice, one per core); give each of N parallel jobs "
        "cores/N, oversubscribed cores make small-batch CPU training several times slower",
    )


def _set_threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        if args.threads < 1:
            raise SpcreidError(f"--threads must be >= 1, got {args.threads}; pass a positive number or leave it out")
        import torch

        torch.set_num_threads(args.threads)


def run_train(args: argparse.Namespace) -> int:
    from spcreid.engine.trainer import train_run

    _set_threads(args)
    config = _run_config(args, args.experiment)
    metrics = train_run(
        config,
        args.manifest,
        args.out,
        args.synthesis,
        resume=args.resume,
        device=args.device,
        evaluate=not args.skip_evaluation,
        packed_images=args.packed_images,
    )
    print(json.dumps({"run": str(Path(args.out)), "metrics": metrics}, sort_keys=True))
    return 0


def _run_config(args: argparse.Namespace, experiment: str) -> dict:
    from spcreid.config.experiments import Run, load_params, run_config

    params = load_params(args.params, profile=args.profile)
    config = run_config(params, Run(args.dataset, experiment, args.seed))
    for option, key in (("epochs", "epochs"), ("iters", "iters_per_epoch")):
        value = getattr(args, option)
        if value is not None:
            if value < 1:
                raise SpcreidError(f"--{option} must be >= 1, got {value}; pass a positive number or leave it out")
            config["train"][key] = value
    return config


def run_train_supervised(args: argparse.Namespace) -> int:
    from spcreid.engine.supervised import train_supervised_run

    _set_threads(args)
    # The baseline experiment is the starting point; supervised_config switches what differs.
    config = _run_config(args, "baseline")
    metrics = train_supervised_run(
        config,
        args.manifest,
        args.out,
        resume=args.resume,
        device=args.device,
        evaluate=not args.skip_evaluation,
        packed_images=args.packed_images,
    )
    print(json.dumps({"run": str(Path(args.out)), "metrics": metrics}, sort_keys=True))
    return 0


def run_pretrained_start(args: argparse.Namespace) -> int:
    from spcreid.engine.supervised import pretrained_start_run

    _set_threads(args)
    config = _run_config(args, "baseline")
    if args.pretrained is not None:
        if not Path(args.pretrained).is_file():
            raise SpcreidError(
                f"--pretrained {args.pretrained} is not a file; give a trunk written by pretrain-backbone"
            )
        config["train"]["pretrained"] = args.pretrained
    metrics = pretrained_start_run(config, args.manifest, args.out, device=args.device)
    print(json.dumps({"run": str(Path(args.out)), "metrics": metrics}, sort_keys=True))
    return 0


def _model_of(path: Path, model_file: dict):
    """The network a model.pt describes, with its weights; a file whose metadata and weights disagree (another
    architecture, pooling or a missing field) is one error naming it."""
    from spcreid.models.backbone import build_model

    meta = model_file.get("meta") or {}
    try:
        model = build_model(meta["arch"], None, meta["pooling"], last_stride=1)
        model.load_state_dict(model_file["state_dict"])
        int(meta["height"]), int(meta["width"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpcreidError(
            f"{path}: its weights do not fit the network its metadata names (arch {meta.get('arch')!r}, pooling "
            f"{meta.get('pooling')!r}: {detail[:200]}); train the run again (spcreid train)"
        ) from exc
    return model


def run_evaluate(args: argparse.Namespace) -> int:
    from spcreid.data.manifest import read_manifest
    from spcreid.engine.checkpoint import load_model_file
    from spcreid.engine.features import decode_images
    from spcreid.engine.trainer import evaluate_model, resolve_device, write_evaluation
    from spcreid.evaluation.metrics_file import run_identity

    _set_threads(args)
    per_query_outs = args.per_query or [str(Path(out).with_suffix(".per_query.npz")) for out in args.out]
    if not len(args.run) == len(args.out) == len(per_query_outs):
        raise SpcreidError(
            f"got {len(args.run)} --run, {len(args.out)} --out and {len(per_query_outs)} --per-query; give one "
            "--out (and --per-query, if any) per --run, in the same order"
        )
    bad = [path for path in per_query_outs if not path.endswith(".npz")]
    if bad:
        raise SpcreidError(f"--per-query {bad[0]}: the per-query results file must end in .npz")
    saved = [load_model_file(Path(run) / "model.pt") for run in args.run]
    configs = [_saved_run_config(Path(run)) for run in args.run]
    frame = read_manifest(args.manifest)
    rows = frame[frame["role"].isin(["query", "gallery"])].reset_index(drop=True)
    device = resolve_device(args.device)
    workers = _evaluation_workers(args.workers, device)
    decoded: dict[tuple[int, int], object] = {}  # the test images, once per input size
    for run, model_file, config, out, per_query_out in zip(args.run, saved, configs, args.out, per_query_outs):
        meta = model_file["meta"]
        model = _model_of(Path(run) / "model.pt", model_file)
        size = (int(meta["height"]), int(meta["width"]))
        if len(args.run) > 1 and size not in decoded and not rows.empty:
            decoded[size] = decode_images(rows["path"].tolist(), *size, workers=workers)
        metrics, per_query = evaluate_model(
            model, rows, args.protocol, *size, device, args.gallery_mode, workers, images=decoded.get(size)
        )
        # The run's identity travels with its numbers, so tables can refuse files of another profile.
        metrics = {**run_identity(config), **metrics}
        write_evaluation(metrics, per_query, out, per_query_out)
        print(json.dumps({key: metrics[key] for key in metrics if key != "settings"}, sort_keys=True))
    return 0


def _evaluation_workers(workers: int | None, device) -> int:
    import os

    if workers is None:
        return min(8, len(os.sched_getaffinity(0))) if device.type == "cuda" else 0
    if workers < 0:
        raise SpcreidError(f"--workers must be >= 0, got {workers}")
    return workers


def _saved_run_config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SpcreidError(f"{path} not found: --run must be a run folder written by `spcreid train`") from None
    except json.JSONDecodeError as exc:
        raise SpcreidError(f"{path} is not valid JSON ({exc}); retrain the run") from exc


def run_pretrain(args: argparse.Namespace) -> int:
    from spcreid.engine.pretrain import PretrainSettings, pretrain_backbone

    _set_threads(args)
    options = (
        "arch",
        "height",
        "width",
        "epochs",
        "seed",
        "classes_per_batch",
        "images_per_class",
        "lr",
        "triplet_weight",
    )
    settings = PretrainSettings(**{name: getattr(args, name) for name in options if getattr(args, name) is not None})
    summary = pretrain_backbone(
        args.data, args.out, settings, progress=not args.quiet, labels=args.labels, split=args.split
    )
    print(json.dumps(summary, sort_keys=True))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from spcreid.engine.trainer import measure_train_throughput

    _set_threads(args)
    result = measure_train_throughput(
        args.arch, args.batch, args.height, args.width, args.steps, args.clusters, args.device
    )
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0
