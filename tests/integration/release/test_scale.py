"""``invoke scale N`` against a moto server: the live slot now, recorded, shown, and the next release starts at it."""

from __future__ import annotations

import dataclasses

import pytest

from toolkit.errors import ConfigError
from toolkit.release import resize, rollout, scaled
from toolkit.release import status as release_status


def shape(state):
    """The slots without target health (moto's flips between reads on its own; tests/integration/release/test_alarm_watch.py sees it too)."""
    return [dataclasses.replace(x, healthy=0) for x in (state.blue, state.green)]


def group(world, slot):
    return world.observer.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[world.cfg.release.slots[slot]]
    )["AutoScalingGroups"][0]


def test_scale_is_kept_by_the_next_release_and_its_rollback(world):
    result = resize.scale(world.cfg, world.aws, resize.parse("5", "", "6"), reporter=world.reporter)
    assert (result.outcome, result.plan.desired, result.plan.min, result.plan.max) == ("scaled", 5, 2, 6)
    blue = group(world, "blue")
    assert (blue["DesiredCapacity"], blue["MinSize"], blue["MaxSize"], world.state().blue.healthy) == (5, 2, 6, 5)
    kept = scaled.recorded(world.cfg, world.aws)
    assert (kept.desired, kept.min, kept.max) == (5, 2, 6) and kept.by and kept.at
    info = release_status.status(world.cfg, world.aws)
    assert info["scaled"]["desired"] == 5
    assert any(
        line.startswith("  scaled to web=5 (min 2, max 6) by ") for line in release_status.lines(world.cfg, info)
    )
    # the next release starts its slot at it, though release.capacity says 2 of at most 4
    rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    green = group(world, "green")
    assert (green["DesiredCapacity"], green["MinSize"], green["MaxSize"], world.state().green.healthy) == (5, 2, 6, 5)
    # scaled down later: a rollback starts the old slot at the new size
    assert resize.scale(world.cfg, world.aws, resize.parse("web=3"), reporter=world.reporter).plan.desired == 3
    rollout.rollback(world.cfg, world.aws, reporter=world.reporter)
    blue = group(world, "blue")
    assert (world.state().active.name, blue["DesiredCapacity"], blue["MaxSize"]) == ("blue", 3, 6)


@pytest.mark.parametrize(
    "word, low, message",
    [
        ("1", "", "web=1 is below release.capacity.min (2)"),
        ("2", "1", "--min 1 is below release.capacity.min (2)"),
    ],
)
def test_below_capacity_min_is_refused_with_the_reason_and_changes_nothing(world, word, low, message):
    before = shape(world.state())
    with pytest.raises(ConfigError) as refused:
        resize.scale(world.cfg, world.aws, resize.parse(word, low), reporter=world.reporter)
    assert (
        refused.value.message == message
        and "needs that many healthy instances to hold any traffic" in refused.value.hint
    )
    assert shape(world.state()) == before and scaled.recorded(world.cfg, world.aws) is None


def test_plan_changes_and_records_nothing(world):
    before = shape(world.state())
    planned = resize.scale(world.cfg, world.aws, resize.parse("3"), plan_only=True, reporter=world.reporter)
    assert (
        planned.outcome == "planned"
        and shape(world.state()) == before
        and scaled.recorded(world.cfg, world.aws) is None
    )
