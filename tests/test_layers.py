"""The layout rule of DESIGN §2, read from the source: the framework never imports the game;
the game imports only the framework's public names.

Every module's imports are parsed with ``ast`` (module level, in functions and under
``TYPE_CHECKING`` alike; relative imports resolved against the module's package), so a lazy
import in a function counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import starhold

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"starhold": "starhold", "starhold.rooms": "rooms", "starhold.gateway": "gateway",
            "starhold.storage": "storage", "starhold.kernels": "kernels", "starhold.client": "client"}
"""Import name -> folder (setup.py's package_dir)."""
GAME = "starhold.rooms"
FRAMEWORK = ("starhold", "starhold.gateway", "starhold.storage", "starhold.kernels")
GAME_MAY_IMPORT = ("starhold.protocol", "starhold.http", "starhold.kernels")
"""Framework modules the game may import (besides ``from starhold import <name in __all__>``),
each with its submodules."""


def _modules() -> dict[str, Path]:
    """Import name -> file of every ``.py`` module of the packages (web client sources excluded)."""
    found = {}
    for name, folder in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder)
            if {"node_modules", "web"} & set(rel.parts):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([name, *parts])] = path
    return found


MODULES = _modules()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def imports_of(module: str) -> list[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for every import in ``module``'s
    source. ``from X import y`` gives ``(X, "y")`` and, when ``X.y`` is a module of the
    packages, ``(X.y, None)`` too."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), str(MODULES[module]))
    package = module if _is_package(module) else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                found.append((target, alias.name, node.lineno))
                if f"{target}.{alias.name}" in MODULES:
                    found.append((f"{target}.{alias.name}", None, node.lineno))
    return found


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _layer(module: str) -> str:
    for package in (GAME, "starhold.gateway", "starhold.storage", "starhold.kernels", "starhold.client"):
        if _within(module, package):
            return package
    return "starhold"


def test_every_package_folder_is_parsed():
    assert {"starhold._runtime.runtime", "starhold.harness", "starhold.testing", "starhold.cli",
            "starhold.gateway.app", "starhold.rooms.game", "starhold.rooms.system.room"} <= set(MODULES)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) in FRAMEWORK))
def test_the_framework_never_imports_the_game(module):
    bad = [(target, line) for target, _, line in imports_of(module) if target and _within(target, GAME)]
    assert not bad, f"{module} imports the game: {bad}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) == GAME))
def test_the_game_imports_only_public_framework_names(module):
    bad = []
    for target, name, line in imports_of(module):
        if not target or not _within(target, "starhold") or _within(target, GAME):
            continue
        if target == "starhold":
            if name in starhold.__all__ or f"starhold.{name}" in MODULES and name in ("protocol", "http"):
                continue
        elif any(_within(target, allowed) for allowed in GAME_MAY_IMPORT):
            continue
        bad.append((target, name, line))
    assert not bad, f"{module} imports framework internals: {bad}"


def test_the_checker_sees_relative_function_level_and_package_imports(tmp_path, monkeypatch):
    """The parser itself: a relative import inside a function, resolved, is reported."""
    source = tmp_path / "probe.py"
    source.write_text("def f():\n    from ..rooms.galaxy import catalogue\n    from .. import _runtime\n")
    monkeypatch.setitem(MODULES, "starhold.gateway.probe", source)
    found = {(t, n) for t, n, _ in imports_of("starhold.gateway.probe")}
    assert ("starhold.rooms.galaxy", "catalogue") in found and ("starhold.rooms.galaxy.catalogue", None) in found
    assert ("starhold", "_runtime") in found and ("starhold._runtime", None) in found


def test_room_hosts_load_the_game_without_aiohttp_or_the_gateway():
    """Room actors import the game's module (its kinds and its route declarations): the routes
    themselves, aiohttp and the gateway are imported only by the gateways that mount them."""
    import subprocess
    import sys

    probe = ("import sys, starhold.rooms.game; "
             "print(sorted(m for m in sys.modules if m == 'aiohttp' or m.startswith(('starhold.gateway', "
             "'starhold.rooms.http'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
