"""``spcreid make-rehearsal-inputs``: the archives and stand-in weights the rehearsal profile fetches."""

from __future__ import annotations

import argparse
from pathlib import Path

from spcreid import cli_options

# Where each weight file lies under the inputs folder: the names fetch_weights / fetch_pise_checkpoint ask for.
WEIGHT_FILES = {
    "resnet50-imagenet": "resnet50-imagenet.pth",
    "keypointrcnn-coco": "keypointrcnn-coco.pth",
    "schp-lip": "schp-lip.pth",
    "pise-texture": "pise-texture/latest_net_G.pth",
}
SUMS_FILE = "SHA256SUMS"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "make-rehearsal-inputs",
        help="write tiny PRCC / VC-Clothes / LTCC archives and stand-in weights for the rehearsal profile",
        description="Render people with the toy generator, pack them as the archives a user downloads (real "
        "folder layouts and file names) and write randomly initialised networks in the real checkpoint "
        "formats with a SHA256SUMS file, so that `snakemake --config profile=rehearsal` runs the paper "
        "profile's rules on CPU (params.yaml: profiles.rehearsal.local_weights and datasets.*.archive).",
        parents=[
            cli_options.out("folder to write (the rehearsal profile reads data/rehearsal/inputs)"),
            cli_options.seed("toy generator and weight seed (default 7)", default=7),
        ],
    )
    p.add_argument("--identities", type=int, default=24, help="people, half train and half test (default 24)")
    p.add_argument("--images-per-camera", type=int, default=4, help="images per person and camera (default 4)")
    p.set_defaults(func=_make_inputs)


def _make_inputs(args: argparse.Namespace) -> int:
    # lazy: start-up time
    from spcreid.io import write_text
    from spcreid.rehearsal.archives import build_archives
    from spcreid.rehearsal.standin_weights import make_stand_in
    from spcreid.toy.generator import V2_HEAD_SCALE, ToyConfig

    out = Path(args.out)
    # The rehearsal checks plumbing, not learning: its random-weight stand-in networks cluster v2's smaller heads
    # into several clusters at every Table 4 eps, where v3's larger heads merge into one at eps 0.7.
    config = ToyConfig(
        seed=args.seed,
        identities=args.identities,
        images_per_camera=args.images_per_camera,
        head_scale=V2_HEAD_SCALE,
    )
    config.validate()
    for name, path in build_archives(out, config).items():
        print(f"archive {name}: {path}")
    sums = []
    for name, relative in WEIGHT_FILES.items():
        path, sha = make_stand_in(name, out / relative, seed=args.seed)
        sums.append(f"{sha}  {relative}\n")
        print(f"stand-in {name}: {path} (sha256 {sha})")
    write_text(out / SUMS_FILE, "".join(sums))
    return 0
