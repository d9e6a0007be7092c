"""The local stack's patches of moto's internals were checked against one moto release: the project installs that one."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

from toolkit.local.motopatches import MOTO_CHECKED

ROOT = Path(__file__).resolve().parents[3]


def test_the_installed_moto_is_the_one_the_patches_were_checked_against():
    assert version("moto") == MOTO_CHECKED


def test_pyproject_pins_that_release():
    pins = re.findall(r'"moto\[server\]([^"]*)"', (ROOT / "pyproject.toml").read_text())
    assert pins == [f"=={MOTO_CHECKED}"]
