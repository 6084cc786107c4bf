"""Architecture rules checked on the source: no import cycle among harness modules (counting
imports made inside functions), the engine imports nothing above it, and no module over 400
lines or function over 60 lines (unless it says why)."""

from __future__ import annotations

import ast
import warnings
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


# --------------------------------------------------------------------------- sizes

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
LONG_MARK = "# long:"
"""A function may pass MAX_FUNCTION_LINES when its `def` (or the line above it) carries
`# long: <reason>`: one table or one linear script that reads better whole."""

# Today's violations, each with who splits it. An entry that is no longer a violation is
# reported as a warning (remove it then, so the list only shrinks): with several helpers
# landing at once, a split must not fail someone else's landing.
MODULES_OVER: dict[str, str] = {
}
FUNCTIONS_OVER: dict[str, str] = {
    "harness/gate_plan.py:gate_plan": "h12c",
    "harness/sim/canon.py:analyse": "h11c",
    "harness/stats/misclassification.py:rogan_gladen": "h12c",
}


def _source_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def long_functions(path: Path) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function in `path` over MAX_FUNCTION_LINES lines
    (decorators included) whose header carries no `# long: <reason>` comment."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = prefix
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([d.lineno for d in child.decorator_list] + [child.lineno])
                length = (child.end_lineno or child.lineno) - first + 1
                # The header: the line above the def, the def itself, up to its first statement.
                header = lines[max(first - 2, 0):child.body[0].lineno - 1]
                marked = any(LONG_MARK in h and h.split(LONG_MARK, 1)[1].strip()
                             for h in header)
                if length > MAX_FUNCTION_LINES and not marked:
                    out.append((name, length))
            visit(child, f"{name}." if name != prefix else prefix)

    visit(ast.parse("\n".join(lines), str(path)), "")
    return out


def test_long_functions_are_found_and_a_reason_excuses_them(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    src = tmp_path / "m.py"
    src.write_text(f"class C:\n    def f(self):\n    {body.replace(chr(10), chr(10) + '    ')}\n"
                   f"def short():\n    return 1\n")
    assert long_functions(src) == [("C.f", MAX_FUNCTION_LINES + 1)]
    src.write_text(f"# long: one table\ndef g():\n{body}\n")
    assert long_functions(src) == []
    src.write_text(f"# long:\ndef g():\n{body}\n")  # a mark needs a reason
    assert long_functions(src) == [("g", MAX_FUNCTION_LINES + 1)]


def test_no_module_over_400_lines() -> None:
    over = {_rel(p): n for p in _source_files()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    new = {m: n for m, n in over.items() if m not in MODULES_OVER}
    assert not new, (f"modules over {MAX_MODULE_LINES} lines: {new}; split them into a package "
                     "of smaller modules (DESIGN.md: Shape of the code)")
    fixed = sorted(set(MODULES_OVER) - set(over))
    if fixed:
        warnings.warn(f"now at most {MAX_MODULE_LINES} lines: remove {fixed} from MODULES_OVER",
                      stacklevel=1)


def test_no_function_over_60_lines_without_a_reason() -> None:
    over = {f"{_rel(p)}:{name}": n for p in _source_files() for name, n in long_functions(p)}
    new = {f: n for f, n in over.items() if f not in FUNCTIONS_OVER}
    assert not new, (f"functions over {MAX_FUNCTION_LINES} lines: {new}; split them, or say why "
                     f"one piece reads better with `{LONG_MARK} <reason>` above the def")
    fixed = sorted(set(FUNCTIONS_OVER) - set(over))
    if fixed:
        warnings.warn(f"now short or marked: remove {fixed} from FUNCTIONS_OVER", stacklevel=1)


# The environment is read in harness/settings.py only; these read a secret by the name the
# user gave (never a setting), so they stay with the code that keeps the secret.
ENV_READERS = {
    "harness/settings.py": "the settings layer",
    "harness/privacy.py": "secret_env_values: credential-named variables, to scrub them",
    "harness/targets/openai_wire.py": "read_api_key: the key from the variable api_key_env names",
    "harness/ray_executor.py": "RAY_ADDRESS / RAY_USAGE_STATS_ENABLED for Ray (h16b: settings)",
}


def test_environment_read_only_in_settings() -> None:
    readers = set()
    for p in _source_files():
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                readers.add(_rel(p))
    assert readers - set(ENV_READERS) == set(), (
        f"{sorted(readers - set(ENV_READERS))} read the environment: add the variable to "
        "harness.settings.Environment (or env_overrides) and read it from there")
    if set(ENV_READERS) - readers:
        warnings.warn(f"remove stale ENV_READERS entries {sorted(set(ENV_READERS) - readers)}",
                      stacklevel=1)
