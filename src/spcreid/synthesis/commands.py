"""``spcreid synthesize``: precompute clothing-changed copies of a manifest split into a cache folder."""

from __future__ import annotations

import argparse
import json

from spcreid import cli_options


def register_bench(bench_subparsers) -> None:
    bench = bench_subparsers.add_parser(
        "synthesis", help="copies/s of a synthesis backend on rendered toy people (median of --repeats); JSON"
    )
    bench.add_argument("--backend", default="parsing-swap", help="synthesis backend to time (default parsing-swap)")
    bench.add_argument("--sources", type=int, default=64, help="source images (default 64)")
    bench.add_argument("--copies", type=int, default=4, help="copies per source (default 4, the method's S)")
    bench.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported")
    cli_options.add_parents(
        bench, cli_options.image_size("image height (default 128)", "image width (default 64)", height=128, width=64)
    )
    bench.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.synthesis.bench import measure_synthesis

    result = measure_synthesis(args.sources, args.copies, args.repeats, args.height, args.width, backend=args.backend)
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


def register(subparsers) -> None:
    """Add this package's subcommands to the `spcreid` parser."""
    parser = subparsers.add_parser(
        "synthesize",
        help="write S clothing-changed copies of every image of a split (cache folder + index.csv)",
        description="Choose S donors per image deterministically from --seed, synthesise the copies with "
        "--backend and write them as PNGs under --out with an index.csv. Resumable: rerun the same command "
        "to finish an interrupted run.",
        parents=[cli_options.manifest("manifest CSV with a 'parsing' column")],
    )
    parser.add_argument(
        "--backend", default="parsing-swap", help="parsing-swap (built in, CPU) or pise (PISE generator, GPU)"
    )
    parser.add_argument("--copies", type=int, default=4, help="synthetic copies per image (S; default 4)")
    cli_options.add_parents(
        parser,
        cli_options.seed("seed of the donor choice (default 0)"),
        cli_options.out("cache folder (created; index.csv and copies/ inside)"),
        cli_options.replace_changed("copies"),
    )
    parser.add_argument("--split", default="train", help="manifest split to synthesise (default train)")
    parser.add_argument("--preview", default=None, help="also write a contact-sheet PNG here")
    parser.add_argument("--preview-count", type=int, default=6, help="sources shown in the preview (default 6)")
    pise = parser.add_argument_group("pise backend")
    pise.add_argument("--pise-checkpoint", help="PISE's texture-transfer latest_net_G.pth (or its folder)")
    pise.add_argument("--pise-sha256", help="expected sha256 of the PISE checkpoint")
    pise.add_argument(
        "--pise-network",
        choices=("pise", "stand-in"),
        help="pise (PISE's generator from --pise-root; default) or stand-in (tiny, same interface)",
    )
    pise.add_argument("--pise-root", help="PISE source tree at the pinned commit (default /opt/PISE)")
    pise.add_argument("--vgg-weights", help="vgg19-dcbb9e9d.pth, only read if the checkpoint lacks VGG-19 features")
    pise.add_argument("--keypoint-weights", help="keypointrcnn_resnet50_fpn COCO weights (spcreid fetch-weights)")
    pise.add_argument("--keypoint-sha256", help="expected sha256 of the keypoint weights")
    pise.add_argument("--keypoint-min-size", type=int, help="keypoint R-CNN's resize bound (default 800)")
    cli_options.add_parents(
        parser,
        cli_options.device(
            "cuda (default), cuda:N or cpu for PISE and the keypoint R-CNN", default=None, group=pise.title
        ),
    )
    pise.add_argument("--pise-batch", type=int, help="copies (and keypoint images) per forward pass (default 8)")
    pise.add_argument("--pise-label-map", help="PISE parsing order: issue20 (default) or issue2")
    pise.add_argument(
        "--pise-fit",
        choices=("pad", "stretch"),
        help="how a crop enters PISE's 256x176 frame: pad (default; aspect kept, white columns) or stretch",
    )
    parser.set_defaults(func=run_synthesize)


def _pise_options(args: argparse.Namespace) -> dict:
    names = {
        "pise_checkpoint": "pise_checkpoint",
        "pise_sha256": "pise_sha256",
        "pise_network": "pise_network",
        "pise_root": "pise_root",
        "vgg_weights": "vgg_weights",
        "keypoint_weights": "keypoint_weights",
        "keypoint_sha256": "keypoint_sha256",
        "keypoint_min_size": "keypoint_min_size",
        "device": "device",
        "pise_batch": "batch_size",
        "pise_label_map": "pise_label_map",
        "pise_fit": "pise_fit",
    }
    return {option: getattr(args, arg) for arg, option in names.items() if getattr(args, arg) is not None}


def run_synthesize(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.synthesis.precompute import precompute, split_rows

    options = _pise_options(args) if args.backend == "pise" else {}
    stats = precompute(
        args.manifest,
        args.out,
        backend=args.backend,
        copies=args.copies,
        seed=args.seed,
        split=args.split,
        backend_options=options,
        replace_changed=args.replace_changed,
    )
    if args.preview:
        # lazy: start-up time
        from spcreid.synthesis.preview import write_preview

        rows = split_rows(args.manifest, args.split)
        write_preview(
            args.out,
            rows["path"].tolist(),
            rows["parsing"].tolist(),
            rows["pid"].tolist(),
            args.preview,
            count=args.preview_count,
        )
        stats["preview"] = str(args.preview)
    print(json.dumps(stats, indent=2))
    rate = stats["images_per_s"]
    print(
        f"{stats['sources_synthesized']} images synthesised ({stats['copies_written']} copies, "
        f"{stats['copies_skipped']} already cached) in {stats['seconds']} s" + (f": {rate} images/s" if rate else "")
    )
    return 0
