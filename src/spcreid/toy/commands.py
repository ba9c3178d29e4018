"""Subcommands for the embedded toy dataset: generate it, look at it, and score the colour baseline."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict

from spcreid import cli_options


def _add_shape_arguments(parser: argparse.ArgumentParser) -> None:
    cli_options.add_parents(parser, cli_options.seed("random seed; the same seed gives identical bytes"))
    parser.add_argument("--identities", type=int, default=24, help="people in total, train + test")
    parser.add_argument(
        "--test-identities", type=int, default=None, help="of those, test identities (default: half, rounded up)"
    )
    parser.add_argument(
        "--train-outfits",
        type=int,
        default=None,
        help="outfits per training identity, cycled over its images (default: 2, worn as by the test identities, "
        "VC-Clothes' cameras)",
    )
    parser.add_argument(
        "--head-scale", type=float, default=1.0, help="multiplies the head size range (1.0: v3; 0.69: v2's heads)"
    )
    parser.add_argument(
        "--images-per-camera", type=int, default=3, help="images per person and camera (test: the first is the query)"
    )
    cli_options.add_parents(
        parser, cli_options.image_size("image height in pixels", "image width in pixels", height=128, width=64)
    )


def _config(args):
    # lazy: start-up time
    from spcreid.toy.generator import ToyConfig

    return ToyConfig(
        seed=args.seed,
        identities=args.identities,
        images_per_camera=args.images_per_camera,
        height=args.height,
        width=args.width,
        test_identities=args.test_identities,
        train_outfits=args.train_outfits,
        head_scale=args.head_scale,
    )


def register(subparsers) -> None:
    make = subparsers.add_parser(
        "make-toy-data",
        help="generate the procedural clothing-change dataset (VC-Clothes layout + parsing maps)",
        description="Writes DIR/VC-Clothes/{train,query,gallery}, DIR/parsing/VC-Clothes/... and DIR/toy.json. "
        "Deterministic given the arguments; a rerun with the same arguments does nothing.",
        parents=[cli_options.out("dataset folder DIR (new, empty, or an earlier toy dataset)")],
    )
    _add_shape_arguments(make)
    make.add_argument("--contact-sheet", metavar="PNG", default=None, help="also write a labelled preview grid")
    cli_options.add_parents(make, cli_options.quiet())
    make.set_defaults(func=run_make_toy_data)

    sheet = subparsers.add_parser("toy-contact-sheet", help="preview grid of a toy dataset: people x cameras")
    sheet.add_argument("--data", required=True, help="a folder written by make-toy-data")
    cli_options.add_parents(sheet, cli_options.out("PNG to write"))
    sheet.add_argument("--rows", type=int, default=6, help="people to show (test identities first)")
    sheet.set_defaults(func=run_contact_sheet)

    baseline = subparsers.add_parser(
        "toy-baseline",
        help="score colour-histogram features on a toy (or VC-Clothes-layout) dataset; prints JSON",
        description="A clothing-sensitive yardstick: same-clothes (sc) retrieval should be high, "
        "clothing-change (cc) near chance.",
    )
    baseline.add_argument("--data", required=True, help="a folder written by make-toy-data")
    baseline.add_argument("--bins", type=int, default=8, help="histogram bins per HSV channel")
    baseline.add_argument(
        "--region",
        choices=("person", "image"),
        default="person",
        help="count only the person's pixels (from the parsing maps) or the whole image",
    )
    cli_options.add_parents(baseline, cli_options.out("also write the JSON here", required=False))
    baseline.set_defaults(func=run_toy_baseline)


def register_bench(bench_subparsers) -> None:
    bench = bench_subparsers.add_parser("toy-generation", help="time generating a toy dataset (to a temp folder)")
    _add_shape_arguments(bench)
    bench.set_defaults(func=run_bench_generation)


def run_make_toy_data(args) -> int:
    # lazy: start-up time
    from spcreid.toy.generator import contact_sheet, generate_toy_dataset

    written = generate_toy_dataset(args.out, _config(args), progress=not args.quiet)
    print(f"make-toy-data: {'wrote' if written else 'up to date:'} {args.out}", file=sys.stderr)
    if args.contact_sheet:
        contact_sheet(args.out, args.contact_sheet)
    return 0


def run_contact_sheet(args) -> int:
    # lazy: start-up time
    from spcreid.errors import SpcreidError
    from spcreid.toy.generator import contact_sheet

    if args.rows < 1:
        raise SpcreidError(f"--rows {args.rows}: show at least one person")
    contact_sheet(args.data, args.out, rows=args.rows)
    return 0


def toy_baseline(data, bins: int = 8, region: str = "person") -> dict:
    """``{setting: metrics}`` of colour-histogram features under the VC-Clothes protocol."""
    # lazy: start-up time
    from spcreid.data.registry import load_dataset
    from spcreid.evaluation import evaluate_protocol
    from spcreid.evaluation.colour_histogram import colour_histogram_features

    manifest = load_dataset("toy", data)
    test = manifest[manifest["split"] == "test"].reset_index(drop=True)
    parsing = list(test["parsing"]) if region == "person" else None
    features = colour_histogram_features(list(test["path"]), bins=bins, parsing=parsing)
    return evaluate_protocol("vcclothes", features, test, progress=False)


def run_toy_baseline(args) -> int:
    # lazy: start-up time
    from spcreid.io import write_json

    result = {
        "feature": f"hsv-histogram-{args.bins}^3",
        "region": args.region,
        "metrics": toy_baseline(args.data, args.bins, args.region),
    }
    if args.out:
        write_json(args.out, result)
    print(json.dumps(result, indent=2, sort_keys=True, default=float))
    return 0


def run_bench_generation(args) -> int:
    # lazy: start-up time
    from spcreid.toy.generator import generate_toy_dataset, plan_images

    config = _config(args)
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        generate_toy_dataset(f"{scratch}/toy", config, progress=False)
        seconds = time.perf_counter() - start
    images = len(plan_images(config))
    print(
        json.dumps(
            {
                "benchmark": "toy-generation",
                "parameters": asdict(config),
                "images": images,
                "seconds": round(seconds, 3),
                "images_per_second": round(images / seconds, 1),
            },
            indent=2,
            sort_keys=True,
        )
    )
    return 0
