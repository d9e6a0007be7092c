"""The lock: a second release is refused with who holds it; --break-lock takes over."""

from __future__ import annotations

import pytest

from toolkit import lock
from toolkit.errors import LockError, ReleaseError
from toolkit.release import rollout


def test_second_release_is_refused_while_one_holds_the_lock(world):
    held = lock.acquire(world.cfg, world.aws, "release of ami-other")
    before = world.state()
    with pytest.raises(LockError) as caught:
        rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    message = caught.value.message
    assert lock.whoami() in message and f"pid {held.holder['pid']}" in message and held.holder["since"] in message
    assert "--break-lock" in caught.value.hint
    assert world.state() == before
    assert lock.holder(world.cfg, world.aws)["token"] == held.token


def test_break_lock_takes_over_and_frees_it_after(world):
    held = lock.acquire(world.cfg, world.aws, "release of ami-other")
    result = rollout.release(world.cfg, world.aws, ami=world.ami(), break_lock=True, reporter=world.reporter)
    assert result.outcome == "released"
    assert lock.holder(world.cfg, world.aws) is None
    assert lock.free(world.aws, held) is False  # the broken holder cannot free a lock it lost


def test_lock_is_freed_after_a_rolled_back_release(alarmed_world):
    world = alarmed_world
    world.aws.client("cloudwatch").set_alarm_state(
        AlarmName=f"{world.cfg.app}-5xx", StateValue="ALARM", StateReason="test"
    )
    with pytest.raises(ReleaseError, match="rolled back after .*: alarm\\(s\\) in ALARM"):
        rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    assert lock.holder(world.cfg, world.aws) is None
