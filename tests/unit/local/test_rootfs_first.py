"""A live stack builds the root file system its images boot from before it starts: on a fresh machine
``make bake``'s seed app booted from a folder that was not there yet ("special device overlay does not exist")."""

from __future__ import annotations

import pytest

from toolkit.hosts import sandbox
from toolkit.local import stack as stack_mod
from toolkit.local.stack import Stack


class Built(Exception):
    """Stops ``up`` once the root file system was asked for."""


def test_a_live_stack_builds_the_root_file_system_before_its_server_starts(tmp_path, monkeypatch):
    asked = []

    def ensure(path, reporter=None):
        asked.append(path)
        raise Built

    monkeypatch.setattr(sandbox, "ensure_rootfs", ensure)
    monkeypatch.setattr(stack_mod, "_start", lambda stack: pytest.fail("the server started before the rootfs"))
    stack = Stack(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache", live=True)
    with pytest.raises(Built):
        stack_mod.up(stack, "us-east-1")
    assert asked == [stack.rootfs]


def test_a_stack_that_boots_nothing_does_not_build_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "ensure_rootfs", lambda *a, **k: pytest.fail("built a rootfs nothing boots"))

    class Started(Exception):
        pass

    def start(stack):
        raise Started

    monkeypatch.setattr(stack_mod, "_start", start)
    with pytest.raises(Started):
        stack_mod.up(Stack(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache", live=False), "us-east-1")
