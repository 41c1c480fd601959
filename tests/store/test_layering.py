"""The import rules of the whole tree (ARCHITECTURE.md, "Rooms"): the store imports
nothing above it; handlers and the scheduler import only the store (and handlers each
other); bot/ assembles; no import cycle anywhere, lazy imports included; and an import
inside a function only where it is documented below.

Read from the source (no module is imported), so a cycle cannot hide behind import order.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import REPO as ROOT

STORE = ROOT / "store"
ABOVE_STORE = ("handlers", "scheduler", "bot", "benchmarks", "testing", "privacy", "demo")
PACKAGES = ("store", "migrations", "handlers", "scheduler", "bot", "testing", "privacy", "demo")
EVERYWHERE = (*PACKAGES, "benchmarks", "tests")

# The packages each package may import at module level, besides itself.
BELOW_BOT = {"store", "handlers", "scheduler"}
MAY_IMPORT = {
    "store": {"migrations"},  # the package alone, to find Alembic's scripts (store.migrate)
    "migrations": {"store"},  # the scripts read the models
    "handlers": {"store"},
    "scheduler": {"store"},
    "bot": BELOW_BOT,
    "testing": BELOW_BOT | {"bot"},
    "privacy": BELOW_BOT | {"bot", "testing"},
    "demo": BELOW_BOT | {"bot", "testing"},
    "benchmarks": BELOW_BOT | {"bot", "testing"},
}

# The only modules that import one of ours inside a function, and why.
LAZY_IMPORTS = {
    # Each command loads what it runs: `vigil --help` starts at once, and only
    # `vigil demo` and `vigil privacy-check --exercise` load the test tools (testing/).
    "bot.cli",
    # `python -m benchmarks.floor` (a floor server's own process) loads only the frameworks.
    "benchmarks",
    # Only `--in-process` loads the app into the benchmark's own process.
    "benchmarks.processes",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules_of(*packages: str) -> dict[str, Path]:
    """Every module of the packages, by dotted name."""
    return {
        module_name(p): p for package in packages for p in sorted((ROOT / package).rglob("*.py"))
    }


def store_modules() -> dict[str, Path]:
    return modules_of("store")


def imported(node: ast.Import | ast.ImportFrom, known: set[str], here: str = "") -> list[str]:
    """The modules an import statement in module `here` names (`from store import audit`
    names store.audit; in tests.conftest, `from .support import database` names
    tests.support.database)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = here.split(".")[: -node.level]
        base = ".".join([*package, base] if base else package)
    return [
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
    ]


def _imports(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, and whether it runs only when a function is called (inside a
    function or class body; not a module-level `if` or `try`, `if TYPE_CHECKING` included)."""

    def walk(node: ast.AST, inside: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                yield child, inside
            nested = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            yield from walk(child, inside or nested)

    yield from walk(tree, False)


def relative_imports(path: Path) -> list[int]:
    """The lines of `path` that import relative to its package."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node.lineno for node, _ in _imports(tree) if getattr(node, "level", 0)]


def imports_of(path: Path, known: set[str]) -> tuple[set[str], list[str]]:
    """Every module `path` imports, and those imported inside a function or class."""
    found: set[str] = set()
    nested: list[str] = []
    here = module_name(path) if path.name != "__init__.py" else module_name(path) + ".__init__"
    for node, inside in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        names = imported(node, known, here)
        found.update(names)
        if inside:
            nested += names
    return found, nested


def graph_of(*packages: str) -> dict[str, set[str]]:
    """Which of the packages' modules each of their modules imports, lazily or not."""
    modules = modules_of(*packages)
    known = set(modules)
    return {
        name: {m for m in imports_of(path, known)[0] if m in known and m != name}
        for name, path in modules.items()
    }


def package_graph(package: str) -> dict[str, set[str]]:
    """Which of the package's modules each of its modules imports."""
    return graph_of(package)


def store_graph() -> dict[str, set[str]]:
    return package_graph("store")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (as the modules along it), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = "open"
        stack.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[name] = "done"
        stack.pop()
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


def test_no_module_in_store_imports_another_in_a_cycle() -> None:
    graph = store_graph()
    assert len(graph) > 30
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_application_imports_by_absolute_names_only() -> None:
    for name, path in modules_of(*PACKAGES, "benchmarks").items():
        assert not relative_imports(path), f"{name} imports relative to its package"


def test_store_imports_nothing_above_it_and_nothing_inside_a_function() -> None:
    modules = store_modules()
    for name, path in modules.items():
        found, nested = imports_of(path, set(modules))
        above = sorted(m for m in found if m.split(".")[0] in ABOVE_STORE)
        assert not above, f"{name} imports {above}"
        assert not nested, f"{name} imports {nested} inside a function"


def test_no_module_in_handlers_imports_another_in_a_cycle_or_inside_a_function() -> None:
    graph = package_graph("handlers")
    assert len(graph) > 20
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])
    ours = set(graph) | set(store_modules())
    for path in sorted((ROOT / "handlers").rglob("*.py")):
        _, nested = imports_of(path, ours)
        assert not [m for m in nested if m in ours], f"{path.name} imports {nested} in a function"


def test_no_module_anywhere_imports_another_in_a_cycle_lazy_imports_included() -> None:
    graph = graph_of(*EVERYWHERE)
    assert {name.split(".")[0] for name in graph} == set(EVERYWHERE)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_each_package_imports_only_the_packages_below_it() -> None:
    known = set(modules_of(*EVERYWHERE))
    for package, allowed in MAY_IMPORT.items():
        for name, path in modules_of(package).items():
            found, nested = imports_of(path, known)
            top_level = set(found) - set(nested)
            ours = {m.split(".")[0] for m in top_level} & set(EVERYWHERE)
            assert ours <= allowed | {package}, f"{name} imports {sorted(ours - allowed)}"


def test_the_import_rules_cover_every_package_in_the_repository() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages == set(MAY_IMPORT) | {"tests"}


def test_imports_inside_a_function_are_only_where_they_are_documented() -> None:
    modules = modules_of(*PACKAGES, "benchmarks")
    known = set(modules)
    lazy = {}
    for name, path in modules.items():
        nested = [m for m in imports_of(path, known)[1] if m.split(".")[0] in EVERYWHERE]
        if nested:
            lazy[name] = nested
    assert set(lazy) <= LAZY_IMPORTS, {n: m for n, m in lazy.items() if n not in LAZY_IMPORTS}
    assert {"demo.walkthrough", "privacy.exercise"} <= set(lazy["bot.cli"])


def test_handlers_and_the_scheduler_never_import_each_other_and_only_bot_assembles_them() -> None:
    graph = graph_of(*PACKAGES)
    for name, targets in graph.items():
        packages = {t.split(".")[0] for t in targets}
        if name.startswith("handlers"):
            assert "scheduler" not in packages, f"{name} imports the scheduler"
        if name.startswith("scheduler"):
            assert "handlers" not in packages, f"{name} imports handlers"
    assert {"handlers", "scheduler"} <= {t.split(".")[0] for t in graph["bot.app"]}
