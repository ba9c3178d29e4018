"""``spcreid synthesize``: precompute clothing-changed copies of a manifest split into a cache folder."""

from __future__ import annotations

import argparse
import json


def register_bench(bench_subparsers) -> None:
    bench = bench_subparsers.add_parser(
        "synthesis", help="copies/s of a synthesis backend on rendered toy people (median of --repeats); JSON")
    bench.add_argument("--backend", default="parsing-swap")
    bench.add_argument("--sources", type=int, default=64, help="source images (default 64)")
    bench.add_argument("--copies", type=int, default=4, help="copies per source (default 4, the method's S)")
    bench.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported")
    bench.add_argument("--height", type=int, default=128)
    bench.add_argument("--width", type=int, default=64)
    bench.set_defaults(func=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    from spcreid.synthesis.bench import measure_synthesis

    result = measure_synthesis(args.sources, args.copies, args.repeats, args.height, args.width,
                               backend=args.backend)
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
    )
    parser.add_argument("--manifest", required=True, help="manifest CSV with a 'parsing' column")
    parser.add_argument("--backend", default="parsing-swap", help="parsing-swap (built in, CPU) or pise (GPU container)")
    parser.add_argument("--copies", type=int, default=4, help="synthetic copies per image (S; default 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the donor choice (default 0)")
    parser.add_argument("--out", required=True, help="cache folder (created; index.csv and copies/ inside)")
    parser.add_argument("--split", default="train", help="manifest split to synthesise (default train)")
    parser.add_argument("--preview", default=None, help="also write a contact-sheet PNG here")
    parser.add_argument("--preview-count", type=int, default=6, help="sources shown in the preview (default 6)")
    pise = parser.add_argument_group("pise backend")
    pise.add_argument("--pise-image", help="PISE container: a .sif file (apptainer) or docker:// reference")
    pise.add_argument("--pise-checkpoint", help="folder holding PISE's latest_net_G.pth (texture transfer)")
    pise.add_argument("--vgg-weights", help="vgg19-dcbb9e9d.pth, which PISE's generator loads at start-up")
    pise.add_argument("--keypoint-weights", help="keypointrcnn_resnet50_fpn COCO weights (spcreid fetch-weights)")
    pise.add_argument("--pise-command", help="command template replacing the default `apptainer exec` call; "
                      "placeholders {image} {staging} {dataroot} {results} {checkpoints} {vgg}")
    pise.add_argument("--pise-label-map", default="issue20", help="PISE parsing order: issue20 (default) or issue2")
    pise.add_argument("--staging", help="folder for PISE inputs/outputs (default: <out>/pise-staging)")
    parser.set_defaults(func=run_synthesize)


def _pise_options(args: argparse.Namespace) -> dict:
    names = ("pise_image", "pise_checkpoint", "vgg_weights", "keypoint_weights", "pise_command",
             "pise_label_map", "staging")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def run_synthesize(args: argparse.Namespace) -> int:
    from spcreid.synthesis.precompute import precompute, split_rows

    options = _pise_options(args) if args.backend == "pise" else {}
    stats = precompute(args.manifest, args.out, backend=args.backend, copies=args.copies, seed=args.seed,
                       split=args.split, backend_options=options)
    if args.preview:
        from spcreid.synthesis.preview import write_preview

        rows = split_rows(args.manifest, args.split)
        write_preview(args.out, rows["path"].tolist(), rows["parsing"].tolist(), rows["pid"].tolist(),
                      args.preview, count=args.preview_count)
        stats["preview"] = str(args.preview)
    print(json.dumps(stats, indent=2))
    rate = stats["images_per_s"]
    print(f"{stats['sources_synthesized']} images synthesised ({stats['copies_written']} copies, "
          f"{stats['copies_skipped']} already cached) in {stats['seconds']} s"
          + (f": {rate} images/s" if rate else ""))
    return 0
