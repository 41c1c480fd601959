"""The store's imports: nothing above it, no cycles inside it, none hidden in a function.
Nor a cycle in `handlers/`, where a lazy import once hid one (render and security).

Read from the source (no module is imported), so a cycle cannot hide behind import order.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.paths import REPO as ROOT

STORE = ROOT / "store"
ABOVE_STORE = ("handlers", "scheduler", "bot", "benchmarks", "testing", "privacy", "demo")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def store_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(STORE.rglob("*.py"))}


def imported(node: ast.Import | ast.ImportFrom, known: set[str]) -> list[str]:
    """The modules an import statement names (`from store import audit` names store.audit)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    assert node.level == 0, "store uses absolute imports"
    base = node.module or ""
    return [
        f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names
    ]


def imports_of(path: Path, known: set[str]) -> tuple[set[str], list[str]]:
    """Every module `path` imports, and those imported inside a function or class."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    nested: list[str] = []
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = imported(node, known)
            found.update(names)
            if id(node) not in top_level:
                nested += names
    return found, nested


def package_graph(package: str) -> dict[str, set[str]]:
    """Which of the package's modules each of its modules imports."""
    modules = {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}
    known = set(modules)
    return {
        name: {m for m in imports_of(path, known)[0] if m in known and m != name}
        for name, path in modules.items()
    }


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
