"""``spcreid parse``: human parsing of a manifest split (SCHP, its stand-in, or the user's own maps)."""

from __future__ import annotations

import argparse
import json

from spcreid import cli_options


def register(subparsers) -> None:
    """Add this package's subcommands to the `spcreid` parser."""
    p = subparsers.add_parser(
        "parse",
        help="write an 8-class parsing map for every image of a split, and a manifest pointing at them",
        description="Run SCHP (LIP model, remapped to spcreid's 8 classes) on every --split image of --manifest, "
        "or, with --maps, take existing maps that mirror --data-root. Writes OUT/maps/, OUT/manifest.csv "
        "(the split's rows with the parsing column) and OUT/parsing.json. Resumable.",
        parents=[cli_options.manifest("manifest CSV (spcreid prepare-data)"), cli_options.out("output folder")],
    )
    p.add_argument("--split", default="train", help="manifest split to parse (default train)")
    p.add_argument("--weights", help="SCHP LIP checkpoint (spcreid fetch-weights --name schp-lip)")
    p.add_argument("--weights-sha256", default=None, help="expected sha256 of --weights")
    p.add_argument(
        "--network",
        default="schp",
        choices=("schp", "stand-in"),
        help="schp (the real parser, from --schp-root) or stand-in (tiny, same interface; tests)",
    )
    p.add_argument("--schp-root", default=None, help="SCHP source tree at the pinned commit (default /opt/schp)")
    cli_options.add_parents(p, cli_options.device("cuda, cuda:N or cpu (default cuda)", default="cuda"))
    p.add_argument("--batch", type=int, default=16, help="images per forward pass (default 16)")
    p.add_argument("--maps", default=None, help="use these existing maps instead of a parser (mirror --data-root)")
    p.add_argument("--data-root", default=None, help="with --maps: the folder the maps mirror (the dataset root)")
    p.add_argument(
        "--maps-labels",
        default="spcreid",
        choices=("spcreid", "lip", "cihp", "atr"),
        help="with --maps: spcreid 8-class maps (used in place), or the label set of the parser that made them, "
        "remapped: lip (20, SCHP's LIP model), cihp (20, label 10 torso skin), atr (18)",
    )
    cli_options.add_parents(p, cli_options.replace_changed("maps"))
    p.set_defaults(func=run_parse)


def run_parse(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.errors import SpcreidError
    from spcreid.parsing.run import run_parser, use_existing_maps

    if args.maps:
        if not args.data_root:
            raise SpcreidError("--maps needs --data-root, the dataset root the maps mirror")
        info = use_existing_maps(
            args.manifest,
            args.maps,
            args.data_root,
            args.out,
            labels=args.maps_labels,
            split=args.split,
            replace_changed=args.replace_changed,
        )
    else:
        if not args.weights:
            raise SpcreidError(
                "no --weights given; fetch SCHP's LIP checkpoint with "
                "`spcreid fetch-weights --name schp-lip --dest PATH` (or pass --maps)"
            )
        info = run_parser(
            args.manifest,
            args.weights,
            args.out,
            network=args.network,
            code_root=args.schp_root,
            device=args.device,
            batch_size=args.batch,
            split=args.split,
            sha256=args.weights_sha256,
            replace_changed=args.replace_changed,
        )
    print(json.dumps({k: v for k, v in info.items() if k != "lip_to_spcreid"}, indent=2))
    return 0
