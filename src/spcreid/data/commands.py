"""Subcommands for real datasets and pretrained weights.

``prepare-data`` (tree -> manifest), ``verify-data`` (is the local copy complete and intact),
``fetch-data`` (download / extract) and ``fetch-weights``. Heavy imports stay inside the handlers
so that ``spcreid --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

from spcreid import cli_options

DATASET_NAMES = ("prcc", "vcclothes", "ltcc", "toy")
FETCHABLE = ("prcc", "vcclothes", "ltcc")


def register(subparsers) -> None:
    """Add this package's subcommands to the `spcreid` parser."""
    p = subparsers.add_parser(
        "prepare-data",
        help="turn a dataset tree into a manifest CSV",
        parents=[cli_options.dataset("dataset layout to read", choices=DATASET_NAMES)],
    )
    p.add_argument("--root", required=True, help="folder holding the dataset folder (e.g. data/paper/raw)")
    p.add_argument("--parsing-root", default=None, help="parsing maps mirroring --root (toy default: ROOT/parsing)")
    cli_options.add_parents(p, cli_options.out("manifest CSV to write"))
    p.set_defaults(func=prepare_data)

    p = subparsers.add_parser(
        "verify-data",
        help="check layout, names, counts and decodability of a dataset",
        parents=[cli_options.dataset("dataset layout to check", choices=DATASET_NAMES)],
    )
    p.add_argument("--root", required=True, help="folder holding the dataset folder (e.g. data/paper/raw)")
    p.add_argument("--parsing-root", default=None, help="also check these parsing maps (toy default: ROOT/parsing)")
    p.add_argument("--no-counts", action="store_true", help="skip comparing with the published counts")
    p.add_argument(
        "--allow-count-mismatch",
        action="store_true",
        help="report differing counts as warnings, recorded in --json, instead of failing "
        "(params.yaml verify.strict_counts: false)",
    )
    p.add_argument("--no-decode", action="store_true", help="skip decoding every image (fast layout/name check)")
    cli_options.add_parents(p, cli_options.workers("threads decoding images (default 4)", default=4))
    p.add_argument("--json", default=None, metavar="OUT", help="also write the report as JSON")
    p.add_argument(
        "--allow-identity-overlap",
        action="store_true",
        help="custom splits only: report identities shared by train and query/gallery as a warning",
    )
    p.set_defaults(func=verify_data)

    p = subparsers.add_parser(
        "fetch-data",
        help="download/extract a dataset archive under --dest",
        parents=[cli_options.dataset("dataset to fetch", choices=FETCHABLE)],
    )
    p.add_argument(
        "--dest", required=True, help="folder that becomes --root for the other commands (e.g. data/paper/raw)"
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--url", default=None, help="http(s):// or file:// URL of the archive")
    source.add_argument("--archive", default=None, help="archive already on disk (zip, tar, tar.gz, rar)")
    source.add_argument("--gdrive-id", default=None, help="Google Drive file id (PRCC has a default)")
    p.add_argument("--sha256", default=None, help="expected sha256 of the archive")
    p.set_defaults(func=fetch_data)

    p = subparsers.add_parser("fetch-weights", help="download and verify a pretrained weight file")
    # Names are checked by spcreid.acquisition.weights (importing it here would slow down `spcreid --help`).
    p.add_argument(
        "--name",
        required=True,
        help="resnet50-imagenet, keypointrcnn-coco, vgg19-imagenet, schp-lip, pise-texture or pise-pose",
    )
    p.add_argument(
        "--dest", required=True, help="weight file to write (a folder, or a path ending in /, gets NAME.pth)"
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument("--url", default=None, help="alternative http(s):// or file:// URL")
    source.add_argument("--file", default=None, help="a copy already on disk")
    p.add_argument("--sha256", default=None, help="expected sha256 of the weight file")
    p.set_defaults(func=fetch_weights)

    p = subparsers.add_parser(
        "make-stand-in-weights",
        help="write random weights in a real weight file's format (tests, rehearsal profile)",
        description="Stand-ins for schp-lip, pise-texture, keypointrcnn-coco and resnet50-imagenet, seeded, "
        "in the real files' layouts. "
        "Load them with --network stand-in (parse), --pise-network stand-in (synthesize); keypointrcnn-coco and "
        "resnet50-imagenet are torchvision's real networks with random weights.",
    )
    p.add_argument("--name", required=True, help="schp-lip, pise-texture, keypointrcnn-coco or resnet50-imagenet")
    p.add_argument("--dest", required=True, help="file to write")
    cli_options.add_parents(p, cli_options.seed("seed of the random weights (default 0)"))
    p.set_defaults(func=make_stand_in_weights)


def prepare_data(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.data.manifest import write_manifest
    from spcreid.data.registry import load_dataset

    frame = load_dataset(args.dataset, args.root, parsing_root=args.parsing_root)
    write_manifest(frame, args.out)
    print(f"{args.dataset}: {len(frame)} images, {frame['pid'].nunique()} ids -> {args.out}")
    summary = frame.groupby(["split", "role"], sort=True).agg(ids=("pid", "nunique"), images=("path", "size"))
    print(summary.to_string())
    return 0


def verify_data(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.acquisition.verify import verify_dataset
    from spcreid.data.registry import get_spec
    from spcreid.io import write_json

    report = verify_dataset(
        args.dataset,
        args.root,
        parsing_root=args.parsing_root,
        check_counts=not args.no_counts,
        check_images=not args.no_decode,
        workers=args.workers,
        allow_identity_overlap=args.allow_identity_overlap,
        allow_count_mismatch=args.allow_count_mismatch,
    )
    expected = report.expected_counts or {}
    for group, figures in report.counts.items():
        want = expected.get(group, {})
        shown = ", ".join(
            f"{figures[k]} {k}" + (f" (published {want[k]})" if k in want else "") for k in ("ids", "images")
        )
        print(f"  {group}: {shown}")
    for note in get_spec(args.dataset).notes:
        print(f"note: {note}")
    for warning in report.warnings:
        print(f"warning: {warning}")
    if args.json:
        write_json(args.json, report.to_dict())
    if report.ok:
        print(f"{args.dataset} at {report.root}: OK ({report.images_checked} images decoded)")
        return 0
    print(f"{args.dataset} at {report.root}: {len(report.problems)} problem(s):", file=sys.stderr)
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1


def fetch_data(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.acquisition.download import fetch_dataset

    fetch_dataset(
        args.dataset, args.dest, url=args.url, archive=args.archive, gdrive_id=args.gdrive_id, sha256=args.sha256
    )
    return 0


def fetch_weights(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.acquisition.weights import fetch_weights as fetch

    fetch(args.name, args.dest, url=args.url, file=args.file, sha256=args.sha256)
    return 0


def make_stand_in_weights(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.rehearsal.standin_weights import make_stand_in

    path, sha = make_stand_in(args.name, args.dest, seed=args.seed)
    print(f"stand-in {args.name} -> {path} (sha256 {sha})")
    return 0
