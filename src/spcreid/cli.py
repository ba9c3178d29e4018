"""The ``spcreid`` command line: one entry point, one subcommand per workflow step.

Each subcommand lives next to the code it drives; a module listed in ``COMMAND_MODULES`` exposes
``register(subparsers)`` which adds its parsers and sets ``func`` on them. Imports are deferred to
the module's ``register`` so that ``spcreid --help`` does not pay for importing torch.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

from spcreid import __version__
from spcreid.cpu_isa import pin_cpu_isa
from spcreid.errors import SpcreidError

COMMAND_MODULES = (
    "spcreid.data.commands",
    "spcreid.toy.commands",
    "spcreid.evaluation.commands",
    "spcreid.clustering.commands",
    "spcreid.parsing.commands",
    "spcreid.synthesis.commands",
    "spcreid.engine.commands",
    "spcreid.report.commands",
    "spcreid.rehearsal.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spcreid",
        description="Unsupervised clothing-change person ReID (Sync-Person-Cloud), reproducible end to end.",
    )
    parser.add_argument("--version", action="version", version=f"spcreid {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    bench = subparsers.add_parser(
        "bench",
        help="benchmarks that print measured figures as JSON",
        description="Benchmarks of the expensive steps; each prints what it measured as one JSON object.",
    )
    bench_sub = bench.add_subparsers(dest="bench_command", metavar="BENCHMARK")
    bench_sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(subparsers)
        if hasattr(module, "register_bench"):
            module.register_bench(bench_sub)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """``COMMAND --help`` opens with the command's one-line help where the command gives no longer text."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description and helps.get(name):
                    sub.description = helps[name][:1].upper() + helps[name][1:] + "."
                _describe(sub)


# numpy's and torch's generators take seeds in [0, 2**32): a larger one was a ValueError deep in torch.
SEED_LIMIT = 2**32


def _check_seed(args: argparse.Namespace) -> None:
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        raise SpcreidError(f"--seed {seed} is out of range; pass a seed from 0 to {SEED_LIMIT - 1}")


# Faults of the machine rather than of the input: said in one line with what to do, wherever they hit.
_OS_REMEDY = {
    errno.ENOSPC: "free space there and rerun (the command resumes or starts afresh; no output is half-written)",
    errno.EDQUOT: "free space within your quota and rerun",
    errno.EROFS: "the file system is read-only: choose a writable output folder",
    errno.EACCES: "check its permissions or choose another output folder",
    errno.EPERM: "check its permissions or choose another output folder",
    errno.ENOTDIR: "a part of that path is a file, not a folder: choose another path",
    errno.EISDIR: "that is a folder: pass a file path",
    errno.EEXIST: "something else already has that name: remove it or choose another path",
}


def _os_fault(exc: BaseException) -> OSError | None:
    """The disk-full / read-only / permission OSError behind ``exc`` (libraries such as Pillow chain their own
    exception to it), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _OS_REMEDY:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    try:
        # Before any subcommand imports torch: the kernel libraries read their caps once (spcreid.cpu_isa).
        pin_cpu_isa()
    except SpcreidError as exc:
        print(f"spcreid: error: {exc}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    try:
        _check_seed(args)
        result = args.func(args)
    except SpcreidError as exc:
        print(f"spcreid {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        fault = _os_fault(exc)
        if fault is None:
            raise
        where = f"{fault.filename}: " if fault.filename else ""
        print(
            f"spcreid {args.command}: error: {where}{fault.strerror or fault}; {_OS_REMEDY[fault.errno]}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"spcreid {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
