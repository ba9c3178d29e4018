"""``spcreid train``, ``spcreid evaluate``, ``spcreid pretrain-backbone``, ``spcreid bench train-throughput``
and ``spcreid bench input-pipeline``.

torch and the engine are imported inside the command functions so that ``spcreid --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spcreid import cli_options
from spcreid.errors import SpcreidError

GALLERY_MODES = ("multi", "single", "single-cmc")


def register(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help="train one run (dataset x experiment x seed) of params.yaml and evaluate it",
        description="Algorithm 1 of the paper. Writes OUT/{config.json, log.jsonl, checkpoint.pt, model.pt, "
        "metrics.json}; metrics.json is written last.",
        parents=[cli_options.params(), cli_options.dataset()],
    )
    train.add_argument("--experiment", required=True, help="experiment name under 'experiments', e.g. full")
    cli_options.add_parents(
        train,
        cli_options.seed("seed of the run (one of the profile's seeds)", required=True),
        cli_options.manifest(),
    )
    train.add_argument("--synthesis", help="synthesis cache folder (needed when the experiment augments)")
    _add_packed_argument(train)
    cli_options.add_parents(
        train,
        cli_options.profile(),
        cli_options.out("run folder"),
        cli_options.run_overrides(
            "stop after OUT/model.pt (no metrics.json): the workflow evaluates each model once with `spcreid evaluate`"
        ),
        cli_options.threads(),
    )
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
    cli_options.add_parents(evaluate, cli_options.manifest(), cli_options.protocol("dataset protocol"))
    evaluate.add_argument(
        "--gallery-mode",
        choices=GALLERY_MODES,
        help="headline mode (the flat keys tables read); every mode of the protocol is scored anyway. "
        "Default: the protocol's (multi)",
    )
    cli_options.add_parents(
        evaluate,
        cli_options.device(),
        cli_options.workers("decoding processes (default: up to 8 on CUDA, 0 = in-process on CPU)"),
        cli_options.threads(),
        cli_options.out("metrics JSON to write, one per --run, in the same order", action="append"),
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
        parents=[cli_options.manifest()],
    )
    pack.add_argument("--synthesis", help="synthesis cache folder whose copies to pack (none: sources only)")
    pack.add_argument("--copies", type=int, default=0, help="copies per source to pack (method.S)")
    cli_options.add_parents(
        pack,
        cli_options.image_size("train.height", "train.width", required=True),
        cli_options.out("file to write, e.g. data/embedded/packed/prcc.pt"),
        cli_options.workers("decoding processes (0: in this process)", default=0),
        cli_options.threads(),
    )
    pack.set_defaults(func=run_pack_images)


def run_pack_images(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.engine.images import TrainImages
    from spcreid.engine.store import save_packed
    from spcreid.engine.training_data import load_training_data

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
        parents=[
            cli_options.params(),
            cli_options.dataset(),
            cli_options.seed("seed of the run", required=True),
            cli_options.manifest(),
        ],
    )
    _add_packed_argument(supervised)
    cli_options.add_parents(
        supervised,
        cli_options.profile(),
        cli_options.out("run folder"),
        cli_options.run_overrides("stop after OUT/model.pt (no metrics.json), as `spcreid train --skip-evaluation`"),
        cli_options.threads(),
    )
    supervised.set_defaults(func=run_train_supervised)

    start = subparsers.add_parser(
        "pretrained-start",
        help="evaluate the untrained start (train.pretrained in train.arch): the lower-bound reference row",
        description="Writes OUT/{config.json, model.pt, metrics.json} like a zero-epoch `spcreid train` run.",
        parents=[
            cli_options.params(),
            cli_options.dataset(),
            cli_options.seed("only matters for a backbone without pretrained weights"),
            cli_options.manifest(),
        ],
    )
    cli_options.add_parents(
        start,
        cli_options.profile(),
        cli_options.out("run folder"),
        cli_options.device(cli_options.TRAIN_DEVICE_HELP, default=None),
    )
    start.add_argument(
        "--pretrained",
        help="override train.pretrained: score another trunk file, e.g. the classifier oracle's (docs/TOY_DATASET.md)",
    )
    cli_options.add_parents(start, cli_options.threads())
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
    cli_options.add_parents(
        pretrain, cli_options.image_size("input height (use train.height)", "input width (use train.width)")
    )
    pretrain.add_argument("--epochs", type=int, help="passes over all outfit classes")
    cli_options.add_parents(pretrain, cli_options.seed("seed of initialisation and sampling", default=None))
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
    cli_options.add_parents(
        pretrain,
        cli_options.out("weights file to write, e.g. data/embedded/weights/toy-pretrained.pth"),
        cli_options.quiet(),
        cli_options.threads(),
    )
    pretrain.set_defaults(func=run_pretrain)


def register_bench(bench_subparsers) -> None:
    bench = bench_subparsers.add_parser(
        "train-throughput",
        help="time forward + backward + Adam step of one training batch; prints JSON",
    )
    bench.add_argument("--arch", default="resnet50", help="backbone, as train.arch (default resnet50)")
    bench.add_argument("--batch", type=int, default=160, help="images per step (paper: (1+S)*P*K = 160)")
    cli_options.add_parents(bench, _bench_image_size())
    bench.add_argument("--steps", type=int, default=5, help="timed steps (after one untimed warm-up step)")
    bench.add_argument("--clusters", type=int, default=500, help="rows of the random cluster memory")
    cli_options.add_parents(bench, cli_options.device(), cli_options.threads())
    bench.set_defaults(func=run_bench)

    pipeline = bench_subparsers.add_parser(
        "input-pipeline",
        help="images/s of the training data path alone, of the model step alone and of both; prints JSON",
        description="Writes --sources x (1 + --copies) generated JPEGs to a temporary folder, decodes them once "
        "into the training store, then times batches of --groups x (1 + --copies) images (gather, shared "
        "crop/flip, normalise on the device) with and without the model's forward + backward + Adam step.",
    )
    pipeline.add_argument("--arch", default="resnet50", help="backbone, as train.arch (default resnet50)")
    cli_options.add_parents(pipeline, _bench_image_size())
    pipeline.add_argument("--groups", type=int, default=32, help="source images per batch (paper: P*K = 32)")
    pipeline.add_argument("--copies", type=int, default=4, help="synthetic copies per source (paper: S = 4)")
    pipeline.add_argument("--sources", type=int, default=128, help="distinct source images in the store")
    pipeline.add_argument("--data-steps", type=int, default=20, help="timed data-only batches")
    pipeline.add_argument("--model-steps", type=int, default=2, help="timed model steps (0: data path only)")
    cli_options.add_parents(pipeline, cli_options.device())
    pipeline.add_argument("--store", default="auto", help="image store location: auto, cpu, pinned, device")
    cli_options.add_parents(
        pipeline, cli_options.workers("decoding processes for the store", default=0), cli_options.threads()
    )
    pipeline.set_defaults(func=run_bench_pipeline)


def _bench_image_size() -> argparse.ArgumentParser:
    return cli_options.image_size("input height (default 256)", "input width (default 128)", height=256, width=128)


def run_bench_pipeline(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.engine.bench import measure_input_pipeline

    _set_threads(args)
    result = measure_input_pipeline(
        args.arch, args.height, args.width, args.groups, args.copies, args.sources,
        data_steps=args.data_steps, model_steps=args.model_steps, device=args.device, store=args.store,
        workers=args.workers,
    )  # fmt: skip
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def _set_threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        if args.threads < 1:
            raise SpcreidError(f"--threads must be >= 1, got {args.threads}; pass a positive number or leave it out")
        import torch

        torch.set_num_threads(args.threads)


def run_train(args: argparse.Namespace) -> int:
    # lazy: start-up time
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
    # lazy: start-up time
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
    # lazy: start-up time
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
    # lazy: start-up time
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
    # lazy: start-up time
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
    # lazy: start-up time
    from spcreid.data.manifest import read_manifest
    from spcreid.device import resolve_device
    from spcreid.engine.checkpoint import load_model_file
    from spcreid.engine.features import decode_images
    from spcreid.evaluation.metrics_file import run_identity
    from spcreid.evaluation.run_evaluation import evaluate_model, write_evaluation

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
    # lazy: start-up time
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
    # lazy: start-up time
    from spcreid.engine.bench import measure_train_throughput

    _set_threads(args)
    result = measure_train_throughput(
        args.arch, args.batch, args.height, args.width, args.steps, args.clusters, args.device
    )
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0
