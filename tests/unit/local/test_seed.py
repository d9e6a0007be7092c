"""What the local stack seeds once per server: a release side per app, settings and region."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from toolkit import config
from toolkit.local import seed

ROOT = Path(__file__).resolve().parents[3]


def test_the_release_side_is_seeded_again_for_another_region_or_other_settings():
    local = config.load("local", ROOT)
    moved = dataclasses.replace(local, region="eu-west-1")
    slower = dataclasses.replace(local, release=dataclasses.replace(local.release, pause_seconds=99))
    keys = [seed.seed_release(c).seed_key for c in (local, local, moved, slower)]
    assert keys[0] == keys[1] and len(set(keys)) == 3
