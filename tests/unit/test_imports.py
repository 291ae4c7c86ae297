"""The import graph of ``lloom_lsp``: no cycles, and no module reaching another's privates.

Every module is read with :mod:`ast` (nothing is imported), its relative imports resolved.
An import counts wherever it is written, in a function too (a lazy import is still an
arrow between two modules), except under ``if TYPE_CHECKING:``, which never runs.  An
arrow goes to the module named and, for ``from package import name``, to the submodule
``name`` where there is one; importing a module runs its packages' ``__init__`` too, but
that is Python's arrow, not the writer's, and is left out.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import lloom_lsp

ROOT = Path(lloom_lsp.__file__).parent
PACKAGE = "lloom_lsp"


def _module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: those under ``if TYPE_CHECKING:`` are not."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node):
            for other in node.orelse:
                yield from _imports(ast.Module(body=[other], type_ignores=[]))
        else:
            yield from _imports(node)


def _target(module: str, node: ast.ImportFrom) -> str:
    """The absolute name of the module ``node`` imports from."""
    if not node.level:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
    return f"{base}.{node.module}" if node.module else base


def _edges(module: str) -> Iterator[tuple[str, str | None, int]]:
    """``(imported module, name taken from it or None, line)`` for every import of ours."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in _imports(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield alias.name, None, node.lineno
            continue
        target = _target(module, node)
        if target.split(".")[0] != PACKAGE:
            continue
        for alias in node.names:
            submodule = f"{target}.{alias.name}"
            if submodule in MODULES:
                yield submodule, None, node.lineno
            else:
                yield target, alias.name, node.lineno


GRAPH: dict[str, set[str]] = {
    module: {target for target, _, _ in _edges(module) if target in MODULES and target != module}
    for module in MODULES
}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


#: The rooms: the top-level modules, and each subpackage.
ROOMS = sorted(
    {".".join(module.split(".")[:2]) for module in MODULES if "." in module}
    - {module for module, path in MODULES.items() if path.name != "__init__.py"}
    | {PACKAGE}
)


def _room(module: str) -> str:
    room = ".".join(module.split(".")[:2])
    return room if room in ROOMS else PACKAGE


def test_the_graph_holds_the_arrows_written() -> None:
    """Not empty by mistake: arrows of each kind of import statement are found."""
    assert "lloom_lsp.server.positions" in GRAPH["lloom_lsp.server.woven_spans"]  # from .x import y
    assert "lloom_lsp.server.features.shading" in GRAPH["lloom_lsp.server.features.lifecycle"]
    assert "lloom_lsp.server" in GRAPH["lloom_lsp.cli.main"]  # inside a function
    assert "lloom_lsp.server.woven_spans" not in GRAPH["lloom_lsp.server.convert"]  # TYPE_CHECKING
    assert "lloom_lsp.engine" in GRAPH["lloom_lsp.server.convert"]  # from ..engine import X


@pytest.mark.parametrize("room", ROOMS)
def test_no_import_cycle(room: str) -> None:
    """No module of ``room`` is in an import cycle (within the room or across rooms)."""
    cycles = [c for c in _cycles(GRAPH) if any(_room(module) == room for module in c)]
    assert cycles == []


def _private_reaches(module: str) -> Iterator[str]:
    """``module``'s uses of another of our modules' private names: imported by name, or
    read as an attribute of a module it imported."""
    modules: set[str] = set()
    for target, name, line in _edges(module):
        if name is not None and name.startswith("_") and not name.startswith("__"):
            yield f"{module}:{line} imports {target}.{name}"
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in _imports(tree):
        for alias in node.names:
            bound = alias.asname or alias.name.split(".")[0]
            if isinstance(node, ast.ImportFrom):
                if f"{_target(module, node)}.{alias.name}" in MODULES:
                    modules.add(bound)
            elif alias.name.split(".")[0] == PACKAGE:
                modules.add(bound)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            yield f"{module}:{node.lineno} reads {node.value.id}.{node.attr}"


def test_no_module_reaches_another_modules_private_names() -> None:
    reaches = [reach for module in MODULES for reach in _private_reaches(module)]
    assert reaches == []
