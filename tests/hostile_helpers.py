"""Shared checks of the hostile suite (tests/test_hostile_*.py): every probe feeds one bad input or fault to
the real `spcreid` command line and asserts the one clear error line, the exit status, and that nothing
partial was left behind."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from spcreid.cli import main

# A message must say what to do, not only what is wrong.
REMEDY = re.compile(
    r"\b(delete|rerun|re-?extract|pass|use|fix|remove|keep|lower|convert|wait|get|train|store|save|give|fetch|"
    r"check|extract|move|run|recompute|build|choose|rebuild|change|request|download|evaluate|stop|compute|point)\b",
    re.IGNORECASE,
)


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def error(self, command: str) -> str:
        """The one `spcreid COMMAND: error: ...` line; no traceback anywhere."""
        assert "Traceback" not in self.err + self.out, self.err
        lines = [line for line in self.err.splitlines() if line.startswith(f"spcreid {command}: error: ")]
        assert len(lines) == 1, self.err
        return lines[0]


def spcreid(capsys, *argv) -> Outcome:
    """Run `spcreid ARGV...` through the real entry point, capturing its output."""
    capsys.readouterr()
    try:
        code = main([str(arg) for arg in argv])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    captured = capsys.readouterr()
    return Outcome(int(code), captured.out, captured.err)


def assert_refused(outcome: Outcome, command: str, *names, code: int = 2) -> str:
    """Exit ``code``, one error line naming every one of ``names`` and saying what to do."""
    line = outcome.error(command)
    assert outcome.code == code, (outcome.code, line)
    for name in names:
        assert str(name) in line, (name, line)
    assert REMEDY.search(line.split(": error: ", 1)[1]), line
    return line


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) with its sha256: compare before/after a refusal."""
    if not root.exists():
        return {}
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        for path in sorted(root.rglob("*"))
    }


def leftovers(root: Path) -> list[str]:
    """Temporary or staging files an atomic writer or extractor would leave if it were interrupted."""
    if not root.exists():
        return []
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.name.endswith((".tmp", ".extracting", ".download", ".staging")) or ".extracting" in p.parts
    )
