"""A moto server of a test module's (or session's) own."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

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
