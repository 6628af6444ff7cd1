"""Imports inside ``genomes/`` run one way: at module level, without cycles, and never of a
private name. Imports under ``if TYPE_CHECKING:`` are for annotations only and never run, so
they are left out of the graph; the registries' ``importlib`` loading is by design (lazy)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "genomes"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _targets(name: str, node: ast.Import | ast.ImportFrom) -> list[tuple[str, str | None]]:
    """(genomes module imported, name taken from it or None) for one import statement."""
    if isinstance(node, ast.Import):
        return [(a.name, None) for a in node.names if a.name.split(".")[0] == "genomes"]
    if node.level:
        base = name.split(".") if _is_package(name) else name.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    if module.split(".")[0] != "genomes":
        return []
    out = []
    for alias in node.names:
        sub = f"{module}.{alias.name}"
        out.append((sub, None) if sub in MODULES else (module, alias.name))
    return out


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(name: str):
    """(import node, whether it sits inside a function) for the module, skipping TYPE_CHECKING."""
    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            if _type_checking_only(child):
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, in_function
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                      ast.Lambda))
            yield from walk(child, inner)

    yield from walk(ast.parse(MODULES[name].read_text(encoding="utf-8")), False)


def _graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for name in MODULES:
        for node, _ in _imports(name):
            for target, _ in _targets(name, node):
                graph.add_edge(name, target)
    return graph


def test_the_parser_sees_every_module_and_the_known_imports():
    assert {"genomes.genome", "genomes.checks", "genomes.spaces.cell"} <= set(MODULES)
    graph = _graph()
    assert graph.has_edge("genomes.genome", "genomes.validation")
    assert graph.has_edge("genomes.spaces.cell", "genomes.genome")


# The modules that import torch, each imported only inside the function that needs it (making a
# network), so that reading, checking and hashing genomes never pays for torch.
LOADED_ON_USE = {"genomes.build", "genomes.modules"}


def test_no_genomes_module_imports_another_inside_a_function():
    local = [f"{name}:{node.lineno} imports {target}"
             for name in MODULES for node, in_function in _imports(name) if in_function
             for target, _ in _targets(name, node) if target not in LOADED_ON_USE]
    assert local == []


def test_only_the_modules_loaded_on_use_import_torch_and_nothing_imports_them_eagerly():
    def torch(node) -> bool:
        if isinstance(node, ast.ImportFrom):
            return not node.level and (node.module or "").split(".")[0] == "torch"
        return any(a.name.split(".")[0] == "torch" for a in node.names)

    eager_torch = {name for name in MODULES for node, in_function in _imports(name)
                   if not in_function and torch(node)}
    assert eager_torch == LOADED_ON_USE
    eager = [f"{name}:{node.lineno} imports {target}"
             for name in MODULES for node, in_function in _imports(name) if not in_function
             for target, _ in _targets(name, node) if target in LOADED_ON_USE]
    assert eager == []


def test_the_import_graph_of_genomes_has_no_cycle():
    cycles = list(nx.simple_cycles(_graph()))
    assert cycles == []


def test_no_private_name_is_imported_from_another_module():
    private = [f"{name}:{node.lineno} imports {taken} from {target}"
               for name in MODULES for node, _ in _imports(name)
               for target, taken in _targets(name, node)
               if taken is not None and taken.startswith("_")]
    assert private == []


def test_a_function_local_import_and_a_cycle_would_be_caught(tmp_path, monkeypatch):
    """The checks above are not vacuous: a planted local import and cycle are found."""
    fake = {"genomes.a": tmp_path / "a.py", "genomes.b": tmp_path / "b.py"}
    fake["genomes.a"].write_text("from .b import x\n")
    fake["genomes.b"].write_text("def f():\n    from .a import _y\n")
    monkeypatch.setattr(sys.modules[__name__], "MODULES", fake)
    assert [in_f for node, in_f in _imports("genomes.b")] == [True]
    assert _targets("genomes.b", next(_imports("genomes.b"))[0]) == [("genomes.a", "_y")]
    assert list(nx.simple_cycles(_graph())) != []
