"""The import graph of ``src/spcreid``: no circles, every function-local import says why, every module imports alone.

A circle between two modules works only as long as they are imported in one order, and a function-local import
is the usual way to hide one. So the graph below counts module-level and function-local imports alike, and a
function-local import of an ``spcreid`` module needs a comment saying ``lazy`` (kept out of start-up time, or
needed on one path only) on its line or the line above, or above the run of import statements it opens with.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import tokenize
from collections import deque
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE = "spcreid"
SRC = Path(__file__).resolve().parents[1] / "src"
LAZY = re.compile(r"\blazy\b", re.IGNORECASE)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the spcreid module it imports
    node: ast.Import | ast.ImportFrom
    local: bool  # inside a function

    @property
    def where(self) -> str:
        return f"{module_files()[self.module].relative_to(SRC.parent)}:{self.node.lineno}"


@cache
def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its ``__init__.py``)."""
    modules = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _existing(name: str) -> str | None:
    """``name``, or the nearest package above it that exists (``spcreid.x.y`` where y is a function: spcreid.x)."""
    while name and name not in module_files():
        name = name.rpartition(".")[0]
    return name or None


def _targets(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    """The spcreid modules an import statement loads: ``from spcreid.x import y`` is spcreid.x.y if y is a
    submodule, else spcreid.x."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".")
            if module_files()[module].name != "__init__.py":
                package.pop()
            package = package[: len(package) - node.level + 1]
            base = ".".join(package + ([base] if base else []))
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in module_files() else base for alias in node.names]
    found = {_existing(name) for name in names if name.split(".")[0] == PACKAGE}
    return sorted(target for target in found if target and target != module)


def _type_checking_only(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


@cache
def tree(module: str) -> ast.Module:
    return ast.parse(module_files()[module].read_text(encoding="utf-8"))


@cache
def imports() -> tuple[Import, ...]:
    """Every import of an spcreid module that runs (``if TYPE_CHECKING:`` blocks never do)."""
    found = []

    def visit(node: ast.AST, module: str, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking_only(child):
                for branch in child.orelse:
                    visit(ast.Module(body=[branch], type_ignores=[]), module, local)
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.extend(Import(module, target, child, local) for target in _targets(child, module))
            visit(child, module, local or isinstance(child, FUNCTIONS))

    for module in module_files():
        visit(tree(module), module, False)
    return tuple(found)


def graph() -> dict[str, dict[str, Import]]:
    """module -> {imported module: the first statement importing it}."""
    edges: dict[str, dict[str, Import]] = {module: {} for module in module_files()}
    for item in imports():
        edges[item.module].setdefault(item.target, item)
    return edges


def strongly_connected(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's components with more than one module, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def a_cycle(edges: dict[str, dict[str, Import]], component: list[str]) -> list[Import]:
    """The shortest circle through the component's first module, as the imports that close it."""
    start, members = component[0], set(component)
    came_from: dict[str, Import] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target, item in edges[node].items():
            if target == start:
                path = [item]
                while path[0].module != start:
                    path.insert(0, came_from[path[0].module])
                return path
            if target in members and target not in came_from:
                came_from[target] = item
                queue.append(target)
    raise AssertionError(f"no circle found in {component}")


def describe(path: list[Import]) -> str:
    kind = {True: "function-local", False: "module-level"}
    return "\n".join(f"    {item.module} -> {item.target}  ({item.where}, {kind[item.local]})" for item in path)


def test_no_import_cycles():
    edges = graph()
    assert sum(map(len, edges.values())) > 100, "the graph looks empty: did the package move?"
    components = strongly_connected(edges)
    report = [f"  {' <-> '.join(component)}:\n{describe(a_cycle(edges, component))}" for component in components]
    assert not components, (
        "import circles in src/spcreid (module-level and function-local imports count alike); break each one, "
        "e.g. by moving what both modules need into a third:\n" + "\n".join(report)
    )


def test_cycle_check_finds_a_circle():
    edges = {"a": {}, "b": {}, "c": {}, "d": {}}
    edges["a"]["b"] = edges["b"]["c"] = edges["c"]["a"] = edges["c"]["d"] = None
    assert strongly_connected(edges) == [["a", "b", "c"]]
    assert strongly_connected({"a": {"b": None}, "b": {}}) == []


def _comments(module: str) -> dict[int, str]:
    """Line -> the text of the comment on it."""
    source = module_files()[module].read_text(encoding="utf-8")
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.start[0]: token.string for token in tokens if token.type == tokenize.COMMENT}


def _says_lazy(comments: dict[int, str], node: ast.stmt) -> bool:
    return any(LAZY.search(comments.get(line, "")) for line in range(node.lineno - 1, node.end_lineno + 1))


def test_function_local_imports_say_why():
    """Each function-local import of an spcreid module has a comment with "lazy" on its line or the line above,
    or follows, in a run of import statements, one that has."""
    local = {id(item.node) for item in imports() if item.local}
    unexplained = []
    for module in sorted({item.module for item in imports() if item.local}):
        comments = _comments(module)
        for node in ast.walk(tree(module)):
            for name in ("body", "orelse", "finalbody"):
                statements = getattr(node, name, None)
                if not isinstance(statements, list):
                    continue
                covered = False  # by a lazy comment above the run of import statements this one belongs to
                for statement in statements:
                    if not isinstance(statement, ast.Import | ast.ImportFrom):
                        covered = False
                        continue
                    covered = covered or _says_lazy(comments, statement)
                    if id(statement) in local and not covered:
                        unexplained.append((module, statement.lineno, ast.unparse(statement)))
    assert not unexplained, (
        "function-local imports of spcreid modules without a `# lazy: <why>` comment (on the line or the line "
        "above): a lazy import kept for start-up time says so; one that only breaks a circle should not be local, "
        "move what both modules need into a third module instead:\n"
        + "\n".join(
            f"  {module_files()[module].relative_to(SRC.parent)}:{line}: {text}"
            for module, line, text in sorted(unexplained)
        )
    )


# Imports every module of the package in a fresh child of a process that has imported nothing of spcreid: a
# module that only imports after another was imported first fails here. The third-party packages the
# package imports at module level are loaded once, before the children are forked, to keep this cheap.
IMPORT_ALONE = textwrap.dedent(
    """
    import importlib, json, os, sys, traceback
    modules, third_party = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    for name in third_party:
        try:
            importlib.import_module(name)
        except Exception:
            pass
    assert not any(name.split(".")[0] == "spcreid" for name in sys.modules), "spcreid was imported early"
    failed = {}
    for module in modules:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            try:
                importlib.import_module(module)
                message = b""
            except BaseException:
                message = traceback.format_exc(limit=-3).encode()
            os.write(write, message[-4000:])
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            message = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        if message or status:
            failed[module] = message or f"child exited with status {status}"
    print(json.dumps(failed))
    """
)


def _third_party() -> list[str]:
    """The non-spcreid modules named by module-level imports (``from x.y import z``: x.y.z, then x.y)."""
    names = set()
    for module in module_files():
        for node in tree(module).body:
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
                names.add(node.module)
    return sorted(name for name in names if name.split(".")[0] not in (PACKAGE, "__future__"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks one child per module")
def test_every_module_imports_alone(tmp_path):
    modules = sorted(module_files())
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALONE, json.dumps(modules), json.dumps(_third_party())],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    failed = json.loads(result.stdout.strip().splitlines()[-1])
    assert not failed, "modules that do not import on their own:\n" + "\n".join(
        f"  {module}:\n{textwrap.indent(message.strip(), '    ')}" for module, message in failed.items()
    )
