"""``spcreid make-rehearsal-inputs``: the archives and stand-in weights the rehearsal profile fetches."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "make-rehearsal-inputs",
        help="write tiny PRCC / VC-Clothes / LTCC archives and stand-in weights for the rehearsal profile",
        description="Render people with the toy generator, pack them as the archives a user downloads (real "
        "folder layouts and file names) and write randomly initialised networks in the real checkpoint "
        "formats, so that `snakemake --config profile=rehearsal` runs the paper profile's rules on CPU.",
    )
    p.add_argument("--out", required=True, help="folder to write (params.yaml's rehearsal profile reads "
                   "data/rehearsal/inputs)")
    p.add_argument("--seed", type=int, default=7, help="toy generator seed (default 7)")
    p.add_argument("--identities", type=int, default=24, help="people, half train and half test (default 24)")
    p.add_argument("--images-per-camera", type=int, default=4, help="images per person and camera (default 4)")
    p.set_defaults(func=_make_inputs)


def _make_inputs(args: argparse.Namespace) -> int:
    from spcreid.data.toy import ToyConfig
    from spcreid.rehearsal.archives import build_archives

    config = ToyConfig(seed=args.seed, identities=args.identities, images_per_camera=args.images_per_camera)
    config.validate()
    for name, path in build_archives(args.out, config).items():
        print(f"{name}: {path}")
    return 0
