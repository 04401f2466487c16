"""The package's layers: data flows one way, and no module imports its way back.

Each subpackage is a layer; a module may import from its own layer and those below it,
never from one above (an import inside ``if TYPE_CHECKING:`` is only for type names and
does not count). And no module imports, directly or through others, itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "npl_disposal"

#: Layers from the bottom up; a module may import its own layer and any below.
LAYERS = {
    "exceptions": 0, "_memory": 0, "_threads": 0, "_grid": 0, "_version": 0, "_lazy": 0,
    "io": 1,
    "policy": 2,
    "valuation": 3,
    "model": 4, "datasets": 4,
    "solvers": 5,
    "reporting": 6,
    "distributed": 7, "cli": 7,
    "__main__": 8,
}  # fmt: skip


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, bool]]:
    """``npl_disposal`` modules imported by ``path``: (name, at module level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, bool]] = []
    checking = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if id(node) in checking:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("npl_disposal"):
                found.append((node.module, id(node) in top))
        elif isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names
                      if a.name.startswith("npl_disposal")]  # fmt: skip
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the package itself: its __init__ gathers the public names
    return LAYERS[parts[1]]


MODULES = {_module(p): p for p in sorted(SRC.rglob("*.py"))}


def test_every_subpackage_and_top_module_has_a_layer() -> None:
    tops = {m.split(".")[1] for m in MODULES if "." in m}
    assert tops - set(LAYERS) == set(), "a new subpackage or module: give it a layer"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if "." in m))
def test_no_import_from_a_layer_above(module: str) -> None:
    mine = _layer(module)
    assert mine is not None
    for name, _ in _imports(MODULES[module]):
        theirs = _layer(name)
        if theirs is None:
            raise AssertionError(f"{module} imports the whole package ({name}): import a module")
        assert theirs <= mine, f"{module} (layer {mine}) imports {name} (layer {theirs})"


def test_no_import_circle() -> None:
    graph = {
        module: {name for name, top in _imports(path) if top and name in MODULES}
        for module, path in MODULES.items()
    }
    # A package's __init__ is imported with any of its modules: count that edge too.
    for module in list(graph):
        parent = module.rsplit(".", 1)[0]
        if parent in graph and parent != module:
            graph[module].add(parent)
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> None:
        if node in path:
            circle = [*path[path.index(node) :], node]
            raise AssertionError("import circle: " + " -> ".join(circle))
        if node in done:
            return
        path.append(node)
        for nxt in sorted(graph[node]):
            if nxt != node and not node.startswith(nxt + "."):  # a module sees its package
                visit(nxt)
        path.pop()
        done.add(node)

    for module in sorted(graph):
        visit(module)
