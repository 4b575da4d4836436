"""The minimal collector is written from docs/protocol.md alone: it imports none of the project.

If it imported `outpost` (or the services, outpostctl, or the test helpers that do), it
would pass the conformance suite through the project's own code and prove nothing about
the document.
"""

from __future__ import annotations

import ast
from pathlib import Path

MINIMAL = Path(__file__).with_name("minimal_collector.py")
FORBIDDEN = frozenset({"outpost", "services", "outpostctl", "tests"})


def imported_modules(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                modules.add("." * node.level + (node.module or ""))
            elif node.module:
                modules.add(node.module)
        elif isinstance(node, ast.Call) and _dynamic_import(node):
            modules.add(node.args[0].value)
    return modules


def _dynamic_import(call: ast.Call) -> bool:
    """`importlib.import_module("x")` or `__import__("x")` with a literal name."""
    name = getattr(call.func, "attr", getattr(call.func, "id", ""))
    first = call.args[0] if call.args else None
    return name in ("import_module", "__import__") and isinstance(first, ast.Constant) and isinstance(first.value, str)


def forbidden(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith(".") or m.split(".")[0] in FORBIDDEN}


def test_the_minimal_collector_imports_nothing_of_the_project() -> None:
    modules = imported_modules(MINIMAL.read_text())
    assert modules, "the scan found no imports at all: it is not reading the file"
    assert forbidden(modules) == set()


def test_the_scan_would_catch_each_way_of_importing_the_project() -> None:
    source = "\n".join(
        [
            "import outpost.session.handshake",
            "from services.collector import app",
            "from . import project_collector",
            "import importlib; importlib.import_module('outpostctl.main')",
            "from tests.conformance import project_collector",
            "import json",
        ]
    )
    assert forbidden(imported_modules(source)) == {
        "outpost.session.handshake",
        "services.collector",
        ".",
        "outpostctl.main",
        "tests.conformance",
    }
