"""The documentation names only paths and modules that exist: README.md and docs/*.md, checked against the tree.

Checked, each failure named by file, line and path: relative Markdown links `[text](path)` (relative to the linking
file); repository paths in backticks or bare in prose (`src/spcreid/...`, `workflow/rules/x.smk`, `docs/X.md`,
`tests/...`, `containers/...`, `envs/...`, the top-level files), paths inside the package (`engine/trainer.py`,
`spcreid/data/manifest.py`) and test files by name (`test_tables.py`); `spcreid.x.y` modules with at most one
attribute (`spcreid.report.tables.build_table`, a package's lazy exports included); `from spcreid... import` lines
of Python examples; the file tree of docs/ARCHITECTURE.md. Not checked: what runs and set-up produce (`data/`,
`work/`, `results/<profile>/`, `.venv/`, the built image), placeholders and globs (`<profile>`, `{csv,md}`,
`*.smk`), URLs, and commands inside other fenced code blocks.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# A backticked token is taken for a repository path when it starts with one of these folders or is one of these
# files; anything else in backticks (options, values, commands, bare file names) is left alone.
TOP_FOLDERS = (".ci", ".dvc", ".github", "containers", "docs", "envs", "results", "src", "tests", "workflow")
TOP_FILES = (
    "CHANGELOG.md",
    "CITATION.cff",
    "LICENSE",
    "Makefile",
    "README.md",
    "Snakefile",
    "dvc.lock",
    "dvc.yaml",
    "params.yaml",
    "pyproject.toml",
)
# Made by a run or by `make setup` / `make image`, so absent from a fresh clone: never required to exist.
PRODUCED = ("data/", "work/", ".venv/", "containers/spcreid.sif", ".snakemake/")
# results/ holds one folder per profile, written by runs; only the paper's own numbers are part of the sources.
KEPT_RESULTS = ("results/published",)
# The package's subpackages: `engine/trainer.py` in a doc means src/spcreid/engine/trainer.py.
SUBPACKAGES = frozenset(p.parent.name for p in (REPO / "src/spcreid").glob("*/__init__.py"))
PLACEHOLDER = re.compile(r"[<>{}*?\[\]$]|\.\.\.|…")

FENCE = re.compile(r"^\s*(```|~~~)")
# [text](target "title") and ![alt](target); the text may wrap a line.
LINK = re.compile(r"!?\[[^\]]*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
# A code span, which may wrap a line (not a paragraph).
CODE = re.compile(r"(?<!`)`((?:[^`\n]|\n(?!\s*\n))+)`(?!`)")
MODULE = re.compile(r"^spcreid(?:\.[A-Za-z_]\w*)+$")
# A path written without backticks in prose, e.g. "(docs/WORKFLOW.md, "Locking")".
BARE_PATH = re.compile(
    r"(?<![\w/.<>{}*-])((?:\.ci|\.github|containers|docs|envs|spcreid|src|tests|workflow)/[\w./-]*[\w/])"
)
PYTHON_IMPORT = re.compile(r"^\s*(?:from|import)\s+(spcreid(?:\.\w+)*)")
TREE_NAME = r"[\w.-]+(?:/[\w.-]+)*/?"
TREE_ENTRY = re.compile(rf"^( *)({TREE_NAME}(?:, {TREE_NAME})*)(?: {{2,}}\S.*)?$")


def _blocks(path: Path):
    """(line number, text, fence tag) of every line; the tag is None outside fenced code blocks."""
    tag = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = FENCE.match(line)
        if fence:
            tag = None if tag is not None else line.strip()[3:].strip()
            continue
        yield number, line, tag


def _repo_path(token: str) -> str | None:
    """The repository path a backticked token names, or None when it names none (or one that need not exist)."""
    token = token.strip().split("::")[0].rstrip(".,;")
    # A line reference (`Makefile:42`, `src/spcreid/cli.py:10`) names the file.
    token = re.sub(r":\d+(-\d+)?$", "", token).rstrip(":").removeprefix("./")
    if not token or any(ch.isspace() for ch in token) or PLACEHOLDER.search(token) or "://" in token:
        return None
    # Paths given inside the package (`spcreid/data/manifest.py`, `engine/trainer.py`) and test files by name.
    if token.startswith("spcreid/"):
        token = f"src/{token}"
    elif token.endswith(".py") and token.split("/")[0] in SUBPACKAGES:
        token = f"src/spcreid/{token}"
    elif re.fullmatch(r"test_\w+\.py", token):
        token = f"tests/{token}"
    top = token.split("/")[0]
    if not (top in TOP_FOLDERS and "/" in token) and token.rstrip("/") not in TOP_FILES:
        return None
    if token.startswith(PRODUCED) or (top == "results" and not token.startswith(KEPT_RESULTS)):
        return None
    return token


@cache
def _defined_names(module: Path) -> frozenset[str]:
    """Top-level names of a module (functions, classes, assignments, imports)."""
    names = set()
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            assigned = {t.id for target in targets for t in ast.walk(target) if isinstance(t, ast.Name)}
            names.update(assigned)
            # A package's lazy exports (spcreid._lazy): the keys of its _EXPORTS table.
            if "_EXPORTS" in assigned and isinstance(node.value, ast.Dict):
                names.update(key.value for key in node.value.keys if isinstance(key, ast.Constant))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return frozenset(names)


def _missing_module(dotted: str) -> str | None:
    """What of `spcreid.a.b[.name]` does not exist under src/ (None if all of it does)."""
    parts = dotted.split(".")
    where = REPO / "src" / parts[0]
    for i, part in enumerate(parts[1:], start=1):
        if (where / part / "__init__.py").is_file():
            where = where / part
        elif (where / f"{part}.py").is_file():
            where = where / f"{part}.py"
            # One attribute of the module may follow (a function, class or constant); its own attributes are
            # not followed.
            if i + 1 < len(parts) and parts[i + 1] not in _defined_names(where):
                return f"{'.'.join(parts[: i + 2])} ({where.relative_to(REPO)} defines no {parts[i + 1]})"
            return None
        elif where.is_dir() and part in _defined_names(where / "__init__.py"):
            return None
        else:
            return f"{'.'.join(parts[: i + 1])} (no {where.relative_to(REPO)}/{part}.py or package)"
    return None


def _tree_paths(lines: list[tuple[int, str]]):
    """(line number, path) of each entry of a file-tree block (ARCHITECTURE.md's layout), its folders joined.

    An entry is a line whose first column (up to two spaces) is a name or a comma-separated list of names, indented
    at most two columns deeper than the entry before it; deeper lines continue the previous description.
    """
    folders: list[tuple[int, str]] = []  # (indent, folder) of the enclosing entries
    last_indent = 0
    for number, line in lines:
        match = TREE_ENTRY.match(line)
        if not match or len(match[1]) > last_indent + 2:
            continue
        indent = len(match[1])
        while folders and folders[-1][0] >= indent:
            folders.pop()
        names = [name.strip() for name in match[2].split(",")]
        for name in names:
            yield number, "/".join([folder for _, folder in folders] + [name.rstrip("/")])
        last_indent = indent
        if names[-1].endswith("/"):
            folders.append((indent, names[-1].rstrip("/")))
            last_indent = indent + 2


def _problems(path: Path) -> list[str]:
    problems = []
    name = path.relative_to(REPO)
    lines = list(_blocks(path))
    segments: list[tuple[str | None, list[tuple[int, str]]]] = []
    for number, line, tag in lines:
        if not segments or segments[-1][0] != tag or (tag is not None and number != segments[-1][1][-1][0] + 1):
            segments.append((tag, []))
        segments[-1][1].append((number, line))
    for tag, segment in segments:
        if tag is None:
            problems += _prose_problems(name, path, segment)
        elif tag == "python":
            for number, line in segment:
                for dotted in PYTHON_IMPORT.findall(line):
                    missing = _missing_module(dotted)
                    if missing:
                        problems.append(f"{name}:{number}: missing module {missing}")
        elif tag == "" and TREE_ENTRY.match(segment[0][1]) and not segment[0][1].startswith(" "):
            for number, tree_path in _tree_paths(segment):
                repo_path = _repo_path(tree_path)
                if repo_path is not None and not (REPO / repo_path).exists():
                    problems.append(f"{name}:{number}: missing path {repo_path} (file tree)")
    return problems


def _prose_problems(name: Path, path: Path, segment: list[tuple[int, str]]) -> list[str]:
    """Links, code spans and bare paths of consecutive prose lines (a code span or a link may wrap a line)."""
    problems = []
    first = segment[0][0]
    text = "\n".join(line for _, line in segment)

    def at(offset: int) -> int:
        return first + text.count("\n", 0, offset)

    for match in LINK.finditer(text):
        target = match[1]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL, mailto:, or an anchor in the same file
        relative = target.split("#")[0]
        if relative and not (path.parent / relative).exists():
            problems.append(f"{name}:{at(match.start())}: link to missing path {target}")
    for match in CODE.finditer(text):
        token = match[1]
        repo_path = _repo_path(token)
        dotted = token.strip().removesuffix("()")
        if repo_path is not None and not (REPO / repo_path).exists():
            problems.append(f"{name}:{at(match.start())}: missing path `{repo_path}`")
        elif MODULE.match(dotted):
            missing = _missing_module(dotted)
            if missing:
                problems.append(f"{name}:{at(match.start())}: missing module {missing}")
    # Paths outside code spans and link targets; blanking keeps the offsets.
    bare_text = CODE.sub(lambda m: re.sub(r"[^\n]", " ", m[0]), text)
    bare_text = LINK.sub(lambda m: re.sub(r"[^\n]", " ", m[0]), bare_text)
    for match in BARE_PATH.finditer(bare_text):
        repo_path = _repo_path(match[1])
        if repo_path is not None and not (REPO / repo_path).exists():
            problems.append(f"{name}:{at(match.start())}: missing path {repo_path}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_docs_name_only_existing_paths(doc):
    problems = _problems(doc)
    assert not problems, "\n".join(problems)


def test_the_checker_sees_what_it_should():
    # Paths and modules that must be recognised (and exist), and tokens that must be left alone.
    assert _repo_path("workflow/rules/tables.smk") == "workflow/rules/tables.smk"
    assert _repo_path("tests/test_tables.py::test_single_seed_has_no_std") == "tests/test_tables.py"
    assert _repo_path("Makefile:12") == "Makefile"
    assert _repo_path("engine/trainer.py") == _repo_path("spcreid/engine/trainer.py") == "src/spcreid/engine/trainer.py"
    assert _repo_path("test_tables.py") == "tests/test_tables.py"
    for token in ("results/<profile>/tables", "workflow/rules/*.smk", "data/embedded/toy", "--out", "spcreid train"):
        assert _repo_path(token) is None, token
    assert _repo_path("results/published/table1.csv") == "results/published/table1.csv"
    assert _missing_module("spcreid.report.tables") is None
    assert _missing_module("spcreid.report.tables.build_table") is None
    assert _missing_module("spcreid.no_such_package.tables") is not None
    assert _missing_module("spcreid.report.tables.no_such_name") is not None
