"""The core's packages form one-way layers with no import cycle (DESIGN.md section 7, ARCHITECTURE.md).

Every import counts: at module level, inside functions, and under ``TYPE_CHECKING``. A module may
import only from its own layer's packages or from layers below; a ``TYPE_CHECKING`` import that
points upward, or that makes a cycle, is allowed only within one package (a type named for a
sibling module). Among all other imports there is no cycle, inside a package or across packages.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

CORE = Path(__file__).resolve().parents[2] / "core"
PACKAGE = CORE / "modularml"

#: Bottom to top. Each entry is one layer: the packages (or top-level modules) in it.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "_version"),
    ("utils",),
    ("io",),
    ("plugins",),
    ("backends",),
    ("context",),
    ("scalers",),
    ("data",),
    ("splitters",),
    ("batches",),
    ("samplers", "similarity"),
    ("models",),
    ("losses", "optimizers"),
    ("nodes",),
    ("graph",),
    ("results",),
    ("phases",),
    ("callbacks",),
    ("experiment", "executors", "datasets"),
    ("__init__", "__main__", "testing", "cli", "transforms"),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


class Import(NamedTuple):
    source: str  # importing module, dotted
    line: int
    target: str  # imported module, dotted
    type_checking: bool

    def __str__(self) -> str:
        where = " (under TYPE_CHECKING)" if self.type_checking else ""
        return f"{self.source.replace('.', '/')}.py:{self.line} imports {self.target}{where}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(CORE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(root.rglob("*.py"))}


def _imports(modules: dict[str, Path]) -> list[Import]:
    found = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        guarded = {
            id(node)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
            for node in ast.walk(block)
        }
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                while target not in modules and "." in target:
                    target = target.rsplit(".", 1)[0]
                if target in modules and target != name:
                    found.append(Import(name, node.lineno, target, id(node) in guarded))
    return found


def _unit(module: str) -> str:
    """The package (or top-level module) a module belongs to: ``modularml.data.view`` -> ``data``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _exempt(edge: Import) -> bool:
    return edge.type_checking and _unit(edge.source) == _unit(edge.target)


def upward_imports(edges: list[Import]) -> list[Import]:
    """Imports from a lower layer into a higher one (a ``TYPE_CHECKING`` import within one package excepted)."""
    return [e for e in edges if not _exempt(e) and RANK[_unit(e.target)] > RANK[_unit(e.source)]]


def cycles(edges: list[Import]) -> list[list[str]]:
    """The import cycles (strongly connected groups of two or more modules), Tarjan's algorithm."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        if not _exempt(edge):
            graph.setdefault(edge.source, set()).add(edge.target)
            graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # recursion depth is bounded by the number of modules (~200)
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
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_package_has_a_layer() -> None:
    units = {_unit(name) for name in _modules()}
    assert units - set(RANK) == set(), "add the new package to LAYERS here and to ARCHITECTURE.md"


def test_no_module_imports_from_a_layer_above_it() -> None:
    offending = upward_imports(_imports(_modules()))
    assert not offending, "imports from a lower layer into a higher one:\n" + "\n".join(map(str, offending))


def test_no_import_cycles() -> None:
    edges = _imports(_modules())
    found = cycles(edges)
    lines = []
    for group in found:
        members = set(group)
        lines.append(" <-> ".join(group))
        lines += [f"    {e}" for e in edges if e.source in members and e.target in members and not _exempt(e)]
    assert not found, "import cycles:\n" + "\n".join(lines)


def test_the_checker_finds_upward_imports_and_cycles(tmp_path: Path) -> None:
    root = tmp_path / "modularml"
    (root / "data").mkdir(parents=True)
    (root / "graph").mkdir()
    (root / "__init__.py").write_text("")
    (root / "data" / "__init__.py").write_text("")
    (root / "graph" / "__init__.py").write_text("")
    (root / "data" / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from modularml.data.b import B\n"
        "def f():\n    from modularml.graph.g import G\n"
    )
    (root / "data" / "b.py").write_text("from modularml.data.a import f\n")
    (root / "graph" / "g.py").write_text("from . import h\n")
    (root / "graph" / "h.py").write_text("from modularml.graph import g\n")
    global CORE
    saved, CORE = CORE, tmp_path
    try:
        edges = _imports(_modules(root))
    finally:
        CORE = saved
    assert [str(e) for e in upward_imports(edges)] == ["modularml/data/a.py:5 imports modularml.graph.g"]
    assert cycles(edges) == [["modularml.graph.g", "modularml.graph.h"]]  # data a<->b is TYPE_CHECKING, one package
