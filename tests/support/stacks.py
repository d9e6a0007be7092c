"""A moto server of a test module's (or session's) own, and small release environments for it."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import yaml

from toolkit import config
from toolkit.local import stack


@contextlib.contextmanager
def moto_stack(folder: Path, region: str = "us-east-1") -> Iterator[tuple[stack.Stack, str]]:
    """Start a seeded local stack keeping its state in ``folder``; yield (stack, endpoint); stop it after."""
    st = stack.Stack(state_dir=folder, cache_dir=folder)
    url = stack.up(st, region)
    try:
        yield st, url
    finally:
        stack.down(st)


def release_env(root: Path, app: str, env: str | None = None, **release: Any) -> config.Config:
    """A loaded environment ``env`` (default: ``app``) under ``root`` for release benchmarks: one image that is
    never baked, a load balancer and slots named after ``app``, and ``release``'s own settings."""
    for name in ("p.yml", "t.py"):
        (root / name).touch()
    data = {
        "app": app,
        "stack": "local",
        "region": "us-east-1",
        "images": {"app": {"source_ami": {"name": "x-*", "owners": ["self"]}, "playbook": "p.yml", "tests": "t.py"}},
        "release": {"load_balancer": app, "slots": {"blue": f"{app}-blue", "green": f"{app}-green"}, **release},
    }
    folder = root / "inventories" / (env or app)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "rodeo.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return config.load(env or app, root)
