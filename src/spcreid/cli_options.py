"""The options several ``spcreid`` subcommands share, each declared once, as argparse parent parsers.

Every function returns a new parent parser (``add_help=False``) holding one option, or a few that always go
together, with the type, default and help text all commands agree on; where commands word the help differently
(what ``--out`` writes, what ``--seed`` seeds), the caller passes its own.

``subparsers.add_parser(name, parents=[...])`` puts the parents' options first. Where a shared option comes after
a command's own ones, :func:`add_parents` copies it in at that point, as ``parents=`` does, so that every
``--help`` keeps its order. Only argparse is imported: ``spcreid --help`` builds these for every command.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

PROTOCOLS = ("prcc", "vcclothes", "ltcc")
DEVICE_HELP = "cpu, cuda, cuda:N or auto (default)"
TRAIN_DEVICE_HELP = "override train.device: cpu, cuda, cuda:N or auto"
PROFILE_HELP = "a profile of params.yaml (embedded, rehearsal, paper, ...) instead of its own"
THREADS_HELP = (
    "CPU threads for torch (default: torch's choice, one per core); give each of N parallel jobs "
    "cores/N, oversubscribed cores make small-batch CPU training several times slower"
)


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def add_parents(parser: argparse.ArgumentParser, *parents: argparse.ArgumentParser) -> None:
    """What ``ArgumentParser(parents=parents)`` does, at this point of ``parser``'s option list.

    An option of a parent's argument group joins ``parser``'s group of the same title.
    """
    for parent in parents:
        parser._add_container_actions(parent)
        parser._defaults.update(parent._defaults)


# ---- IO -------------------------------------------------------------------------------------------------------


def params() -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return parser


def profile(help: str = PROFILE_HELP, *, required: bool = False) -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--profile", required=required, help=help)
    return parser


def dataset(
    help: str = "dataset key of the active profile, e.g. prcc", *, choices: tuple[str, ...] | None = None
) -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--dataset", required=True, choices=choices, help=help)
    return parser


def manifest(help: str = "the dataset's manifest CSV") -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--manifest", required=True, help=help)
    return parser


def protocol(help: str) -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--protocol", required=True, choices=PROTOCOLS, help=help)
    return parser


def out(
    help: str, *, required: bool = True, type: Callable[[str], Any] | None = None, action: str | None = None
) -> argparse.ArgumentParser:
    """``--out``, the file or folder a command writes (``action="append"``: one per input)."""
    parser = _parent()
    parser.add_argument("--out", required=required, type=type, action=action, help=help)
    return parser


def image_size(
    height_help: str,
    width_help: str,
    *,
    height: int | None = None,
    width: int | None = None,
    required: bool = False,
) -> argparse.ArgumentParser:
    """``--height`` and ``--width`` in pixels."""
    parser = _parent()
    parser.add_argument("--height", type=int, default=height, required=required, help=height_help)
    parser.add_argument("--width", type=int, default=width, required=required, help=width_help)
    return parser


# ---- run ------------------------------------------------------------------------------------------------------


def seed(help: str, *, default: int | None = 0, required: bool = False) -> argparse.ArgumentParser:
    """``--seed``; spcreid.cli checks its range for every command."""
    parser = _parent()
    if required:
        parser.add_argument("--seed", type=int, required=True, help=help)
    else:
        parser.add_argument("--seed", type=int, default=default, help=help)
    return parser


def run_overrides(skip_evaluation_help: str) -> argparse.ArgumentParser:
    """What a training run may change of its params.yaml configuration, and where it stops."""
    parser = _parent()
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt if present")
    parser.add_argument("--epochs", type=int, help="override train.epochs (quick runs)")
    parser.add_argument("--iters", type=int, help="override train.iters_per_epoch (quick runs)")
    add_parents(parser, device(TRAIN_DEVICE_HELP, default=None))
    parser.add_argument("--skip-evaluation", action="store_true", help=skip_evaluation_help)
    return parser


def replace_changed(what: str) -> argparse.ArgumentParser:
    """The workflow's flag for a resumable step: Snakemake reruns it exactly when one of its settings changed."""
    parser = _parent()
    parser.add_argument(
        "--replace-changed",
        action="store_true",
        help=f"{what} made with other settings in --out are deleted and made again instead of refused "
        "(the workflow passes it: Snakemake reruns this step exactly when one of its settings changed)",
    )
    return parser


def quiet() -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


# ---- device ---------------------------------------------------------------------------------------------------


def device(
    help: str = DEVICE_HELP, default: str | None = "auto", *, group: str | None = None
) -> argparse.ArgumentParser:
    """``--device`` (a torch device name); ``group``: the title of the argument group it is listed under."""
    parser = _parent()
    container = parser.add_argument_group(group) if group else parser
    container.add_argument("--device", default=default, help=help)
    return parser


def threads(help: str = THREADS_HELP) -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--threads", type=int, help=help)
    return parser


def workers(help: str, default: int | None = None) -> argparse.ArgumentParser:
    parser = _parent()
    parser.add_argument("--workers", type=int, default=default, help=help)
    return parser
