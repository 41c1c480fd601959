"""ARCHITECTURE.md stays true: every file, folder, template and name it points to exists,
and it has a room for every package.

Read from the source (nothing is imported): `store.access.visible_incident` must be a
module `store/access.py` defining `visible_incident`; `bot.app.VigilServer` a class there.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.support.paths import REPO

DOC = REPO / "ARCHITECTURE.md"
TEMPLATES = REPO / "handlers" / "web" / "templates"
PACKAGES = {p.parent.name for p in REPO.glob("*/__init__.py")}
DOTTED = re.compile(r"[a-z_][a-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def quoted() -> list[str]:
    """Everything ARCHITECTURE.md writes as code, without spaces (so not a command line)."""
    return [t for t in re.findall(r"`([^`]+)`", DOC.read_text(encoding="utf-8")) if " " not in t]


def paths_named() -> list[str]:
    """Files and folders of the repository (`store/access.py`, `tests/support/`, and
    templates such as `incident.html`); not URLs (`/concern`) nor places outside it."""
    return [
        t for t in quoted() if ("/" in t and not t.startswith(("/", ".."))) or t.endswith(".html")
    ]


def names_named() -> list[str]:
    """Dotted names in one of the repository's packages (`store.access.visible_incident`)."""
    return [t for t in quoted() if DOTTED.fullmatch(t) and t.split(".")[0] in PACKAGES]


def _defined(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    """The names a module or class body defines, with their statements."""
    found: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found[node.name] = node
        elif isinstance(node, ast.Assign):
            found.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found[node.target.id] = node
    return found


def _module_file(parts: list[str]) -> Path | None:
    base = REPO.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def resolves(dotted: str) -> bool:
    """True when `dotted` is a module, or a module and what it defines (a class's members
    too)."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        module = _module_file(parts[:split])
        if module is None:
            continue
        body = ast.parse(module.read_text(encoding="utf-8")).body
        for name in parts[split:]:
            node = _defined(body).get(name)
            if node is None:
                return False
            body = node.body if isinstance(node, ast.ClassDef) else []
        return True
    return False


def exists(path: str) -> bool:
    if "/" not in path:
        return (TEMPLATES / path).is_file()
    return (REPO / path).exists() and (not path.endswith("/") or (REPO / path).is_dir())


def test_every_file_and_folder_architecture_md_names_exists() -> None:
    paths = paths_named()
    assert len(paths) > 15
    missing = [p for p in paths if not exists(p)]
    assert not missing, f"ARCHITECTURE.md names files that do not exist: {missing}"


def test_every_module_and_function_architecture_md_names_exists() -> None:
    names = names_named()
    assert len(names) > 40
    missing = [n for n in names if not resolves(n)]
    assert not missing, f"ARCHITECTURE.md names what is not in the code: {missing}"


def test_architecture_md_has_a_room_for_every_package() -> None:
    rooms = {t.rstrip("/") for t in quoted() if t.endswith("/") and t.count("/") == 1}
    assert PACKAGES - {"tests"} <= rooms, sorted(PACKAGES - {"tests"} - rooms)


def test_the_checks_above_can_fail() -> None:
    assert resolves("store.access.visible_incident")
    assert resolves("bot.app.VigilServer.start")
    assert resolves("store.flows")
    assert not resolves("store.access.visible_incidnet")
    assert not resolves("store.acess")
    assert not resolves("bot.app.VigilServer.begin")
    assert exists("store/flows/") and exists("incident.html")
    assert not exists("store/flow/") and not exists("store/access.py/")
    assert not exists("incidents.html")
