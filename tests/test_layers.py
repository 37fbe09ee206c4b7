"""Imports read one way: pages -> components -> core, with models/ beside core.

* core/ is pure building blocks: it imports neither Streamlit, components/ nor models/ (a
  model a core function needs is passed in by its caller);
* components/ may import core/ and models/, never pages/;
* models/ may import core/, never components/, pages/ or Streamlit.

Every ``import`` / ``from ... import`` counts, at module level and inside functions or
classes (a lazy import is still a dependency), and so does ``importlib.import_module("...")``
with a literal name. The files are parsed, never imported: this test is fast and has no side
effects.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# (layer, the files it covers, the top-level packages it must not import, why)
RULES = [
    ("core", ["core"], {"streamlit", "components", "models", "pages"},
     "core/ is pure: take the model / UI as a parameter, or move the code to components/ or models/"),
    ("components", ["components"], {"pages"},
     "components/ serve the pages; pages import components, never the reverse"),
    ("models", ["models"], {"streamlit", "components", "pages"},
     "models/ sit beside core/: no UI; move the Streamlit part to components/"),
]
# Every Python file of the app, parsed at least to prove the walk sees them (pages and Home
# may import anything below them).
APP = ["core", "components", "models", "pages", "Home.py"]


def python_files(*parts: str) -> list[Path]:
    files: list[Path] = []
    for part in parts:
        path = ROOT / part
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)
    return files


def imports_in(source: str, filename: str = "<source>") -> list[tuple[int, str, str]]:
    """(line, dotted module name, the statement) of every import in ``source``, however deeply
    nested (functions, classes, ``if`` / ``try`` blocks).

    A relative ``from . import x`` keeps its dots (it stays inside the file's own package);
    ``importlib.import_module("a.b")`` and ``__import__("a")`` with a literal name count too."""
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, f"import {alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names = ", ".join(alias.name for alias in node.names)
            found.append((node.lineno, module, f"from {module} import {names}"))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value, f"{name}({node.args[0].value!r})"))
    return found


def _top(module: str, layer: str) -> str:
    """The top-level package ``module`` names; relative imports stay in the file's own layer."""
    return layer if module.startswith(".") else module.split(".")[0]


def violations(layer: str, dirs: list[str], forbidden: set[str]) -> list[str]:
    out = []
    for path in python_files(*dirs):
        for line, module, statement in imports_in(path.read_text(encoding="utf-8"), str(path)):
            if _top(module, layer) in forbidden:
                out.append(f"{path.relative_to(ROOT)}:{line}: {statement}")
    return out


@pytest.mark.parametrize("layer,dirs,forbidden,why", RULES, ids=[r[0] for r in RULES])
def test_layer_imports_only_downwards(layer, dirs, forbidden, why):
    found = violations(layer, dirs, forbidden)
    assert not found, (f"{layer}/ must not import {sorted(forbidden)} ({why}):\n  " + "\n  ".join(found))


def test_every_app_file_parses_and_the_walk_sees_them():
    files = python_files(*APP)
    names = {p.relative_to(ROOT).as_posix() for p in files}
    assert {"Home.py", "core/shapes_net.py", "components/ui.py", "models/shapes_cnn.py"} <= names
    assert any(n.startswith("pages/") for n in names)
    for path in files:
        imports_in(path.read_text(encoding="utf-8"), str(path))  # a SyntaxError fails here


CHECKER_CASES = [
    # (source put in a core file, caught?)
    ("from models import registry\n", True),
    ("def f():\n    from models import registry\n    return registry\n", True),
    ("class C:\n    def m(self):\n        import models.shapes_cnn as s\n", True),
    ("def f():\n    import streamlit as st\n", True),
    ("import components.ui\n", True),
    ("import importlib\nimportlib.import_module('models.registry')\n", True),
    ("from core.shapes_net import ShapesNet\nimport torch\n", False),
    ("from . import shapes\n", False),
    ("x = 'from models import registry'\n", False),  # a string is not an import
]


@pytest.mark.parametrize("source,caught", CHECKER_CASES)
def test_checker_sees_function_level_and_dynamic_imports(source, caught):
    forbidden = RULES[0][2]
    hits = [m for _, m, _ in imports_in(source) if _top(m, "core") in forbidden]
    assert bool(hits) == caught, (source, hits)
