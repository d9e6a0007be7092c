"""The local image store: which file-system layers make up each local AMI.

On the local stack an AMI in moto is only metadata; its contents are overlay
layers on disk. ``images/<ami-id>.json`` lists them, bottom first: the cached
Debian root file system, then the upper layer of each bake in its lineage.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from toolkit.errors import SandboxError


class ImageStore:
    """Maps local AMI ids to their overlay layers."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def layers(self, ami: str) -> list[Path]:
        """The layers of ``ami``, bottom first."""
        path = self.root / f"{ami}.json"
        if not path.is_file():
            raise SandboxError(
                f"{ami} has no local image on this machine",
                "bake it here first ('invoke bake'), or restart the local stack with 'invoke local.down local.up'",
            )
        return [Path(p) for p in json.loads(path.read_text())["layers"]]

    def has(self, ami: str) -> bool:
        """True when ``ami`` has a local image."""
        return (self.root / f"{ami}.json").is_file()

    def add(self, ami: str, layers: list[Path]) -> None:
        """Record ``ami`` as the stack of ``layers`` (bottom first)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".{ami}.json.tmp"
        tmp.write_text(json.dumps({"layers": [str(p) for p in layers]}, indent=2) + "\n")
        tmp.replace(self.root / f"{ami}.json")

    def layer_dir(self, bake_id: str) -> Path:
        """Where the upper layer of bake ``bake_id`` is kept (shared by its AMI and copies)."""
        return self.root / "layers" / bake_id

    def clear(self) -> None:
        """Forget every local image (the moto server that knew them is gone)."""
        shutil.rmtree(self.root, ignore_errors=True)
