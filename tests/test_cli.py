"""The `spcreid` parser: fast to build (no torch, scikit-learn or pandas), and every command and option explained."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from spcreid import __version__
from spcreid.cli import build_parser

HEAVY = ("torch", "torchvision", "sklearn", "pandas", "scipy", "matplotlib")


def _commands(parser: argparse.ArgumentParser, path=()):
    """(path, parser, one-line help) of every (sub)command, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, helps.get(name)
                yield from _commands(sub, (*path, name))


def test_every_command_has_a_help_line_and_a_description():
    commands = list(_commands(build_parser()))
    assert len(commands) > 15
    for path, parser, help_line in commands:
        assert help_line, f"spcreid {' '.join(path)}: no help line"
        assert parser.description, f"spcreid {' '.join(path)}: no description"


def test_every_option_has_a_help_text():
    missing = []
    for path, parser, _ in _commands(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not action.help:
                missing.append(f"spcreid {' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing


def test_help_of_every_command_imports_nothing_heavy():
    # A fresh interpreter: this test session has long imported torch.
    names = [" ".join(path) for path, parser, _ in _commands(build_parser()) if not parser._subparsers]
    script = f"""
import json, sys
from spcreid.cli import main
for argv in [[]] + [name.split() for name in {names!r}]:
    try:
        main(argv + ["--help"])
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: spcreid train" in result.stdout and "usage: spcreid bench evaluate" in result.stdout
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"spcreid {__version__}\n"


def test_lazy_package_exports_resolve_to_the_functions():
    # spcreid.clustering's pseudo_labels function shares its name with a submodule imported directly here.
    import spcreid.clustering.bench  # noqa: F401  (loads the submodule spcreid.clustering.pseudo_labels first)
    from spcreid.clustering import pseudo_labels
    from spcreid.clustering.pseudo_labels import pseudo_labels as direct
    from spcreid.evaluation import evaluate
    from spcreid.evaluation.metrics import evaluate as evaluate_direct

    assert pseudo_labels is direct and callable(pseudo_labels)
    assert evaluate is evaluate_direct
