"""Seeding waits for the live slot to serve with what its group is sized for, not what rodeo.yml says now.

A team that raises ``capacity.min`` in rodeo.yml after the environment was
made (its last release sized the live group) starts the local stack again:
the seeder runs for the new settings, ``setup.ensure`` leaves the groups'
sizes alone, and the wait must not ask for instances the group will never
have (it waited its whole 180 s, then failed).
"""

from __future__ import annotations

import dataclasses

import pytest

from toolkit.errors import StackError
from toolkit.local import seed


def _raised_min(world, minimum: int):
    capacity = dataclasses.replace(world.cfg.release.capacity, min=minimum, desired=minimum, max=minimum + 2)
    return dataclasses.replace(world.cfg, release=dataclasses.replace(world.cfg.release, capacity=capacity))


def test_a_live_slot_sized_below_a_raised_minimum_is_serving_with_what_it_has(world):
    before = world.state().blue
    assert before.healthy == world.cfg.release.capacity.min == 2
    seed._wait_serving(world.aws, _raised_min(world, 3), timeout=5)  # the group holds 2: it serves with 2


def test_a_live_slot_with_fewer_healthy_than_its_group_holds_is_not_serving(world):
    group = world.env.groups["blue"]
    asg = world.aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    one = asg["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    world.aws.client("elbv2").deregister_targets(TargetGroupArn=world.env.target_groups["blue"], Targets=[{"Id": one}])
    with pytest.raises(StackError, match=r"the live slot has 1 of 2 healthy instance\(s\) after 1s"):
        seed._wait_serving(world.aws, world.cfg, timeout=1)
