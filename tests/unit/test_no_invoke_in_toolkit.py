"""The toolkit is a library: only tasks.py (the command line) imports invoke."""

from __future__ import annotations

import ast
from pathlib import Path

TOOLKIT = Path(__file__).resolve().parents[2] / "toolkit"


def invoke_imports(source: str) -> list[int]:
    """Line numbers of the imports of invoke (or of a module in it) in ``source``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        if any(name == "invoke" or name.startswith("invoke.") for name in names):
            lines.append(node.lineno)
    return lines


def test_the_check_sees_an_import_of_invoke():
    assert invoke_imports("import os\nfrom invoke import Exit\ndef f():\n    import invoke.main\n") == [2, 4]


def test_no_module_of_the_toolkit_imports_invoke():
    found = {str(p.relative_to(TOOLKIT)): invoke_imports(p.read_text()) for p in sorted(TOOLKIT.rglob("*.py"))}
    assert {path: lines for path, lines in found.items() if lines} == {}
