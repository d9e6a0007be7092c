"""A one-box first (``release.one_box``): the first step's share on one new instance, the rest only after its watch."""

from __future__ import annotations

import pytest

from toolkit.errors import ReleaseError
from toolkit.release import ledger, rollout


class Crash(BaseException):
    """Unwinds a release the way a kill would leave it: nothing catches it (its ``finally`` blocks still run)."""


def _watch_weights(world, seen, then=None):
    """After each weight change: (green's weight, green's desired capacity, green's healthy targets) into ``seen``."""

    def after(model, **kwargs):
        if model.name != "ModifyListener":
            return
        state = world.state()
        seen.append((state.green.weight, state.green.desired, state.green.healthy))
        if then:
            then(len(seen))

    world.aws.client("elbv2").meta.events.register("after-call", after)


def _rerun(world, ami):
    """The release of ``ami`` run again on fresh clients (the stopped run's hooks left behind): (result, weights seen)."""
    again = world.__class__(world.cfg, world.url, world.stack)
    again.env = world.env
    seen = []
    _watch_weights(again, seen)
    return rollout.release(again.cfg, again.aws, ami=ami, reporter=again.reporter), seen


def test_the_first_step_goes_to_one_instance_and_the_rest_start_after_its_watch(make_world):
    world = make_world(one_box=True)
    ami = world.ami()
    planned = rollout.release(world.cfg, world.aws, ami=ami, plan_only=True, reporter=world.reporter)
    assert [(s["new_weight"], s["new_instances"]) for s in planned.plan["steps"]] == [(10, 1), (50, 2), (100, 2)]
    assert any("one box first" in note for note in planned.plan["notes"])
    seen = []
    _watch_weights(world, seen)
    result = rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    assert result.outcome == "released" and result.steps == [10, 50, 100]
    assert seen == [(10, 1, 1), (50, 2, 2), (100, 2, 2)]
    after = world.state()
    assert after.weights == {"blue": 0, "green": 100} and (after.green.desired, after.green.min_size) == (2, 2)


def test_a_one_box_that_fails_its_gate_is_rolled_back_with_one_instance_launched(make_world):
    world = make_world(one_box=True)
    ami = world.ami()
    ec2 = world.aws.client("ec2")
    launched = set()

    def stop_the_box(count):
        group = world.observer.client("autoscaling").describe_auto_scaling_groups(
            AutoScalingGroupNames=[f"{world.cfg.app}-green"]
        )["AutoScalingGroups"][0]
        ids = [i["InstanceId"] for i in group["Instances"]]
        launched.update(ids)
        if count == 1:
            ec2.stop_instances(InstanceIds=ids)

    seen = []
    _watch_weights(world, seen, stop_the_box)
    with pytest.raises(ReleaseError) as caught:
        rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    assert caught.value.result.outcome == "rolled_back" and caught.value.result.steps == [10]
    assert "healthy" in caught.value.message and len(launched) == 1
    after = world.state()
    assert after.weights == {"blue": 100, "green": 0} and after.green.desired == 0 and after.blue.healthy == 2


def test_a_rerun_after_a_stop_during_the_one_box_boxes_again_then_grows(make_world):
    world = make_world(one_box=True)
    ami = world.ami()

    def crash_after_the_box(count):
        if count == 1:
            raise Crash()

    first = []
    _watch_weights(world, first, crash_after_the_box)
    with pytest.raises(Crash):
        rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    assert first == [(10, 1, 1)]
    assert ledger.recent(world.cfg, world.aws, 1)[0]["outcome"] == "in_progress"
    result, seen = _rerun(world, ami)
    assert result.outcome == "released" and seen == [(10, 1, 1), (50, 2, 2), (100, 2, 2)]


def test_a_rerun_after_a_stop_while_growing_past_the_box_waits_for_the_new_instances(make_world):
    world = make_world(one_box=True)
    ami = world.ami()

    def crash_when_growing(http_response, parsed, model, **kwargs):
        if "Error" not in parsed and world.state().green.desired == 2:
            raise Crash()  # the group was asked for 2: the second instance is not healthy yet

    world.aws.client("autoscaling").meta.events.register(
        "after-call.autoscaling.UpdateAutoScalingGroup", crash_when_growing
    )
    with pytest.raises(Crash):
        rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    state = world.state()
    assert (state.green.weight, state.green.desired) == (10, 2) and state.green.healthy < 2
    result, seen = _rerun(world, ami)
    assert result.outcome == "released" and seen == [(10, 2, 2), (50, 2, 2), (100, 2, 2)]
