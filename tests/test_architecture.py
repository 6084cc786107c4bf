"""Architecture rules checked on the source: no import cycle among harness modules (counting
imports made inside functions), and the engine imports nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "harness"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The harness module an import of `name` loads (the longest existing prefix)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking_block(node: ast.AST) -> bool:
    """`if TYPE_CHECKING:`: imports for type checkers only, never run."""
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def import_graph() -> dict[str, set[str]]:
    """module -> the harness modules it imports anywhere in its source (also in functions).

    `from harness.a import b` counts as importing `harness.a.b` when that is a module, else
    `harness.a`. Left out: imports under `if TYPE_CHECKING:` (they never run) and edges from a
    module to the packages that contain it (Python runs a package's `__init__` before its
    submodules, so those are not cycles).
    """
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        typing_only = {id(n) for block in ast.walk(tree) if _is_type_checking_block(block)
                       for stmt in block.body for n in ast.walk(stmt)}  # type: ignore[attr-defined]
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    anchor = anchor[:len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            for t in targets:
                if not t.startswith("harness"):
                    continue
                dep = _resolve(t, modules)
                if dep and dep != mod and not mod.startswith(dep + "."):
                    graph[mod].add(dep)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (the cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _path(graph: dict[str, set[str]], comp: list[str]) -> str:
    """One concrete cycle inside a component, for the failure message."""
    members = set(comp)
    start = comp[0]
    seen = [start]
    while True:
        nxt = sorted(graph[seen[-1]] & members)
        step = next((n for n in nxt if n not in seen), None) or next(
            (n for n in nxt if n == start), nxt[0])
        if step in seen:
            return " -> ".join([*seen[seen.index(step):], step])
        seen.append(step)


def test_graph_sees_imports_inside_functions() -> None:
    graph = import_graph()
    # harness.cli.run imports harness.run inside its handler (lazily, for start-up time).
    assert "harness.run" in graph["harness.cli.run"]
    assert "harness.targets.base" in graph["harness.engine._sampling"]
    cyclic = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(cyclic) == [["a", "b", "c"]]


def test_no_import_cycles_among_harness_modules() -> None:
    graph = import_graph()
    cycles = strongly_connected(graph)
    assert not cycles, "import cycles:\n" + "\n".join(_path(graph, c) for c in cycles)


def test_engine_imports_nothing_above_it() -> None:
    above = {"harness.run", "harness.analysis", "harness.report", "harness.gating",
             "harness.summary", "harness.cli", "harness.rescore", "harness.calibration",
             "harness.watch", "harness.incidents", "harness.compare", "harness.html_report"}
    graph = import_graph()
    for mod in (m for m in graph if m == "harness.engine" or m.startswith("harness.engine.")):
        bad = {d for d in graph[mod] if any(d == a or d.startswith(a + ".") for a in above)}
        assert not bad, f"{mod} imports {sorted(bad)}: the engine only samples"


def test_detectors_reach_the_simulator_only_as_a_target() -> None:
    graph = import_graph()
    for mod in (m for m in graph if m.startswith("harness.detectors")):
        sim = {d for d in graph[mod] if d == "harness.sim" or d.startswith("harness.sim.")}
        assert not sim, f"{mod} imports {sorted(sim)}: use the `sim` target (harness.targets)"
