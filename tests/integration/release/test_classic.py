"""A release behind a Classic ELB: rotation (the new slot's group joins, then the old one leaves), on a moto server.

The live stack's test (``tests/integration/local/test_classic_live.py``)
sends requests through it; these read what AWS's APIs say after each call.
"""

from __future__ import annotations

import pytest

from tests.integration.release.test_crash import Watched, crash_release
from toolkit.errors import ReleaseError
from toolkit.release import ledger, rollout, slots

CALLS_IN_A_CLASSIC_RELEASE = 12  # checked below: a clean rotation makes this many mutating calls


@pytest.fixture
def classic_world(make_world):
    return make_world(load_balancer_type="classic", steps=(50, 100))


def attached(world) -> dict[str, str]:
    asg = world.aws.client("autoscaling")
    return {
        slot: ",".join(
            f"{lb['LoadBalancerName']}:{lb['State']}"
            for lb in asg.describe_load_balancers(AutoScalingGroupName=world.env.groups[slot])["LoadBalancers"]
        )
        for slot in slots.SLOTS
    }


def registered(world) -> set[str]:
    health = world.aws.client("elb").describe_instance_health(LoadBalancerName=world.cfg.release.load_balancer)
    return {s["InstanceId"] for s in health["InstanceStates"]}


def test_the_seeded_classic_elb_serves_blue_alone(classic_world):
    world = classic_world
    state = world.state()
    assert state.weights == {"blue": 100, "green": 0}
    assert (state.blue.healthy, state.green.desired) == (2, 0)
    assert attached(world)["green"] == "" and attached(world)["blue"].startswith(f"{world.cfg.release.load_balancer}:")
    assert registered(world) == set(slots.instance_ids(world.env, world.aws, "blue"))
    assert state.blue.drain_seconds == 10  # the seeded ELB's connection draining


def test_a_release_rotates_green_in_and_blue_out(classic_world):
    world = classic_world
    blue_ids = set(slots.instance_ids(world.env, world.aws, "blue"))
    seen = []

    def on_attach(**kwargs):  # the moment green joins: blue's instances must still be registered
        seen.append(registered(world))

    world.aws.client("autoscaling").meta.events.register("after-call.autoscaling.AttachLoadBalancers", on_attach)
    ami = world.ami()
    result = rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    assert result.outcome == "released" and result.steps == [50, 100]
    green_ids = set(slots.instance_ids(world.env, world.aws, "green"))
    assert len(seen) == 1 and blue_ids <= seen[0]  # blue kept serving while green joined
    after = world.state()
    assert after.weights == {"blue": 0, "green": 100}
    assert (after.green.ami, after.green.healthy, after.blue.desired, after.blue.instances) == (ami, 2, 0, 0)
    assert attached(world)["blue"] == ""
    assert registered(world) == green_ids
    assert ledger.recent(world.cfg, world.aws, 1)[0]["steps"] == [50, 100]


def test_a_rollback_rotates_blue_back(classic_world):
    world = classic_world
    base = world.state().blue.ami
    rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    result = rollout.rollback(world.cfg, world.aws, reporter=world.reporter)
    assert result.outcome == "restored" and result.ami == base
    after = world.state()
    assert after.weights == {"blue": 100, "green": 0} and (after.blue.healthy, after.green.desired) == (2, 0)
    assert registered(world) == set(slots.instance_ids(world.env, world.aws, "blue"))


def test_a_classic_elb_that_does_not_exist_is_named(make_world):
    world = make_world(load_balancer_type="classic", steps=(50, 100))
    world.aws.client("elb").delete_load_balancer(LoadBalancerName=world.cfg.release.load_balancer)
    with pytest.raises(ReleaseError, match=rf"Classic ELB '{world.cfg.release.load_balancer}' does not exist"):
        rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter)


def test_the_oracle_sees_an_elb_left_without_instances(classic_world):
    """The watcher's oracle can fail: blue detached, the ELB has no InService instance."""
    world = classic_world
    assert world.invariant() == []
    slots.set_weights(world.env, world.aws, {"blue": 0, "green": 0})
    assert world.invariant() == ["the ELB has 0 InService instance(s), fewer than 2"]


def test_a_clean_classic_release_makes_the_expected_mutating_calls(classic_world):
    watched = Watched(classic_world)
    rollout.release(classic_world.cfg, watched, ami=classic_world.ami(), reporter=classic_world.reporter)
    assert watched.count == CALLS_IN_A_CLASSIC_RELEASE and watched.broken == []


@pytest.mark.parametrize("n", range(1, CALLS_IN_A_CLASSIC_RELEASE + 1))
def test_a_rerun_after_a_crash_at_each_call_converges(classic_world, n):
    """kill -9 after each mutating call of a rotation (the attach and the detach among them), then a rerun:
    no slot held traffic with fewer InService instances than capacity.min, after any call of either run."""
    world = classic_world
    ami, _ = crash_release(world, n)  # asserts no call of the crashed run broke the invariant
    rerun = Watched(world)
    result = rollout.release(world.cfg, rerun, ami=ami, break_lock=True, reporter=world.reporter)
    assert rerun.broken == []
    assert result.outcome in ("released", "unchanged")
    after = world.state()
    assert after.weights == {"blue": 0, "green": 100}
    assert (after.green.ami, after.green.healthy, after.blue.instances) == (ami, 2, 0)
    assert attached(world)["blue"] == "" and registered(world) == set(slots.instance_ids(world.env, world.aws, "green"))
