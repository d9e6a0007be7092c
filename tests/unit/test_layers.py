"""Dependencies point down: each package of ``toolkit/`` imports only packages in the layers below its own.

A package is a folder ``toolkit/<name>/`` or a module ``toolkit/<name>.py``.
Every import counts, wherever it is written: at the top, inside a function
(a lazy import), under ``TYPE_CHECKING``, relative, or through
``importlib.import_module("toolkit...")``. Packages in one layer never import
each other, so a cycle cannot form. The README's Layout draws the same map.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLKIT = ROOT / "toolkit"

# Bottom first. A new package goes in the lowest layer above everything it imports.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "procs", "argv", "ui", "cron", "cancel", "vpc"),  # import nothing of Rodeo's
    ("aws", "secrets", "progress"),  # AWS clients; secret values; a bake's progress events
    ("config",),  # rodeo.yml, read once
    # the app's table, AMIs, webhooks, logs; hosts, Packer; the canary analysis's data and judge; a config per region
    ("table", "lineage", "notify", "logs", "hosts", "packer", "canary", "regions"),
    ("lock", "configvars", "oneoff", "environment"),  # locks in the table; config versions; one-off instances
    ("bake", "release", "iam"),  # the two pipelines, and the policy that covers them
    ("images", "configchange", "deploy", "doctor", "promote", "review"),  # commands made of several concepts
    ("local",),  # the local stack: may use anything; nothing imports it (see test_environment.py)
)
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def package_of(path: Path) -> str:
    """``toolkit/bake/pipeline.py`` -> ``bake``, ``toolkit/config.py`` -> ``config``."""
    first = path.relative_to(TOOLKIT).parts[0]
    return first.removesuffix(".py")


def packages() -> set[str]:
    return {package_of(p) for p in TOOLKIT.rglob("*.py")} - {"__init__"}


def _toolkit_name(dotted: str) -> str | None:
    parts = dotted.split(".")
    return parts[1] if parts[0] == "toolkit" and len(parts) > 1 else None


def imported(node: ast.AST, module: str) -> list[str]:
    """The toolkit packages ``node`` imports, written in the module ``module`` (dotted, for relative imports)."""
    if isinstance(node, ast.Import):
        return [p for p in (_toolkit_name(a.name) for a in node.names) if p]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            here = module.split(".")[: -node.level]
            base = ".".join([*here, base] if base else here)
        if base == "toolkit":  # from toolkit import config, lock: each name is a package (or __version__)
            return [a.name for a in node.names if (TOOLKIT / a.name).is_dir() or (TOOLKIT / f"{a.name}.py").is_file()]
        name = _toolkit_name(base)
        return [name] if name else []
    if isinstance(node, ast.Call):  # importlib.import_module("toolkit.x") or __import__("toolkit.x")
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                name = _toolkit_name(first.value)
                return [name] if name else []
    return []


def upward(source: str, path: Path) -> list[str]:
    """One line per import in ``source`` (the file at ``path``) of a package not below its own."""
    pkg = package_of(path)
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    found = []
    for node in ast.walk(ast.parse(source, str(path))):
        for target in imported(node, module):
            if target != pkg and LAYER.get(target, len(LAYERS)) >= LAYER[pkg]:
                found.append(
                    f"{path.relative_to(ROOT)}:{node.lineno}: {pkg} (layer {LAYER[pkg]}) imports {target} "
                    f"(layer {LAYER.get(target, '?')})"
                )
    return found


def test_every_package_has_a_layer():
    missing = sorted(packages() - set(LAYER))
    assert not missing, f"put {missing} in LAYERS (tests/unit/test_layers.py) and the README's Layout map"
    assert not set(LAYER) - packages(), f"LAYERS names packages that are gone: {sorted(set(LAYER) - packages())}"


def test_no_package_imports_its_own_layer_or_one_above():
    found = [line for path in sorted(TOOLKIT.rglob("*.py")) for line in upward(path.read_text(), path)]
    assert not found, (
        "a package imports only the layers below its own; move the shared piece down a layer "
        "(README, Layout):\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    "source",
    [
        "from toolkit.bake import pipeline\n",
        "import toolkit.bake.pipeline\n",
        "from toolkit import bake\n",
        "def f():\n    from toolkit.bake.pipeline import bake\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toolkit.bake.parallel import run\n",
        "from ..bake import pipeline\n",
        "import importlib\nimportlib.import_module('toolkit.bake.ssh_steps')\n",
        "from toolkit import hosts\n",  # a peer: its own layer is refused too
    ],
)
def test_the_check_sees_every_way_up(source):
    assert upward(source, TOOLKIT / "packer" / "run.py")


@pytest.mark.parametrize(
    "source",
    [
        "from toolkit import __version__, config, progress\n",
        "from toolkit.packer import render\n",  # its own package
        "from . import render\n",
        "import secrets\n",  # the standard library's
    ],
)
def test_the_check_lets_downward_imports_be(source):
    assert upward(source, TOOLKIT / "packer" / "run.py") == []
