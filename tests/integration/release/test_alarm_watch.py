"""A release whose watch ends before its gate alarm could fire is refused before it changes anything (issue 19, item 8)."""

from __future__ import annotations

import dataclasses

import pytest

from toolkit.errors import ReleaseError
from toolkit.release import rollout


@pytest.mark.parametrize("plan_only", [False, True], ids=["release", "--plan"])
def test_a_watch_too_short_for_the_alarm_is_refused(make_world, plan_only):
    world = make_world(alarmed=True, pause_seconds=5)
    before = world.state()
    with pytest.raises(ReleaseError) as caught:
        rollout.release(world.cfg, world.aws, ami=world.ami(), plan_only=plan_only, reporter=world.reporter)
    assert caught.value.message == (
        f"release.pause_seconds 5 is shorter than alarm {world.cfg.app}-5xx needs to fire: 20s (1 datapoint(s) of 10s, "
        "0s to publish, 10s to evaluate); a bad step would be over before it could"
    )
    assert caught.value.hint.startswith("set release.pause_seconds to at least 20 in rodeo.yml")
    assert world.state() == before


def test_a_rollback_is_never_refused_for_its_watch(make_world):
    """A rollback goes back to a known build in one step: a pause shorter than the alarm needs does not stop it."""
    world = make_world(alarmed=True, pause_seconds=0)
    unwatched = dataclasses.replace(world.cfg, release=dataclasses.replace(world.cfg.release, alarms=()))
    assert rollout.release(unwatched, world.aws, ami=world.ami(), reporter=world.reporter).outcome == "released"
    assert rollout.rollback(world.cfg, world.aws, reporter=world.reporter).outcome == "restored"
    assert world.state().weights == {"blue": 100, "green": 0}
