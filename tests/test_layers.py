"""The layers of ../shared/DESIGN.md hold: imports point only downward, and no two packages
import each other (read from the source with ``ast``, so a lazy import inside a function
counts as much as one at the top of a module)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "airda"
KERNELS = ROOT / "kernels"  # installed as airda.kernels

# The layer of each top-level module or package of airda (higher may import lower).
LAYERS: dict[str, int] = {
    # L0: records and pure helpers
    "_version": 0,
    "space": 0,
    "trial": 0,
    "_logging": 0,
    "logging": 0,
    "_text": 0,
    "_budget": 0,
    "_deprecation": -1,  # imports nothing of airda; every layer may use it
    # L1: kernels below ops; storage
    "_native": 1,
    "_C": 1,
    "kernels": 1,
    "ops": 2,
    "storage": 2,
    # L2: proposers and pruning rules
    "strategies": 3,
    "schedulers": 3,
    # L3: the study layer
    "study": 4,
    "executor": 4,  # deprecated re-export of airda.study's executors
    # L4: domains
    "hpo": 5,
    "nas": 5,
    "codeopt": 5,
    "eval": 5,
    "synth": 5,
    "lm": 5,
    "prompt": 5,
    "integrations": 5,  # training-loop and tracker callbacks: use airda.study and below
    # L5: front ends
    "cli": 6,
    "viz": 6,  # plots of studies of every domain
    "testing": 6,
    "examples": 6,
    "dashboard": 6,  # the web dashboard: draws airda.viz's plots, started by `airda dashboard`
}
# Imports within one layer that are allowed: the public logging module re-exports the
# private one, the loader opens the compiled module, prompt search and code evolution use the
# LM layer (DESIGN.md), and every domain states its results with airda.eval's statistics.
ALLOWED_SIDEWAYS = {
    ("logging", "_logging"),
    ("executor", "study"),  # the deprecated path of the executors, for one release
    ("_native", "_C"),
    ("prompt", "lm"),
    ("cli", "viz"),  # `airda report` writes airda.viz's report
    ("cli", "dashboard"),  # `airda dashboard` serves the dashboard
    ("dashboard", "viz"),  # the dashboard's plots are airda.viz's
    ("codeopt", "lm"),
    *((domain, "eval") for domain in ("hpo", "nas", "codeopt", "synth", "lm", "prompt")),
}


def _modules() -> dict[str, Path]:
    out = {}
    for base, prefix in ((PACKAGE, "airda"), (KERNELS, "airda.kernels")):
        for f in base.rglob("*.py"):
            parts = list(f.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([prefix, *parts])] = f
    return out


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _deprecation_shim(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    # A module-level __getattr__ that re-exports a moved name for one release.
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            return True
    return False


def _imports() -> list[tuple[str, str, int]]:
    """(importing module, imported airda module, line) for every import in the package."""
    found = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text(), str(path))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")
                    base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                    targets = [".".join([*base, *([node.module] if node.module else [])])]
                else:
                    targets = [node.module or ""]
            else:
                continue
            if _deprecation_shim(node, parents):
                continue
            for t in targets:
                if t == "airda" or t.startswith("airda."):
                    found.append((module, t, node.lineno))
    return found


def _edges() -> dict[tuple[str, str], list[str]]:
    edges = defaultdict(list)
    for module, target, line in _imports():
        a, b = _unit(module), _unit(target)
        if a != b and b != "__init__" and a != "__init__":
            edges[(a, b)].append(f"{module}:{line} imports {target}")
    return edges


def test_every_module_has_a_layer():
    units = {_unit(m) for m in _modules()} - {"__init__"}
    assert not units - set(LAYERS), f"give these a layer in LAYERS: {sorted(units - set(LAYERS))}"


def test_imports_point_only_downward():
    upward = [
        where
        for (a, b), wheres in _edges().items()
        if LAYERS[b] >= LAYERS[a] and (a, b) not in ALLOWED_SIDEWAYS
        for where in wheres
    ]
    assert not upward, "imports against the layers:\n" + "\n".join(sorted(upward))


def test_no_import_loop_between_packages():
    graph = defaultdict(set)
    for a, b in _edges():
        graph[a].add(b)
    loops = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                loops.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    assert not loops, f"packages that import each other: {loops}"


@pytest.mark.parametrize("name", ["kernels"])
def test_kernels_import_nothing_from_ops(name):
    bad = [f"{m}:{line}" for m, t, line in _imports() if _unit(m) == name and _unit(t) == "ops"]
    assert not bad, f"Triton kernels must not import airda.ops: {bad}"
