"""Every project file that Rodeo's code names (in a hint, a docstring, a message) exists: a hint that points
to a file a user cannot find costs them more than no hint."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMED = re.compile(
    r"\b((?:inventories|playbooks|tests|examples|packer|bench)/[A-Za-z0-9_./-]+\.(?:ya?ml|py|hcl|md|cfg))\b"
)
# Shapes in examples of a docstring, not files: "playbooks/x.yml", "roles/x/tasks/main.yml".
PLACEHOLDER = re.compile(r"(^|/)x(/|\.)")
# Files a project may add, which Rodeo reads when they are there.
OPTIONAL = {"tests/image/conftest.py"}


def named_files() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for source in sorted([*(ROOT / "toolkit").rglob("*.py"), ROOT / "tasks.py", ROOT / "Makefile"]):
        for path in NAMED.findall(source.read_text()):
            if not PLACEHOLDER.search(path) and path not in OPTIONAL:
                found.setdefault(path, []).append(str(source.relative_to(ROOT)))
    return found


def test_the_code_names_files_at_all():
    assert "inventories/local/rodeo.yml" in named_files()


def test_every_file_the_code_names_exists():
    missing = {path: where for path, where in named_files().items() if not (ROOT / path).exists()}
    assert missing == {}
