"""The smoke check deletes only the test listeners it made (tag ``rodeo:smoke-check``), never the team's (issue 19, item 11)."""

from __future__ import annotations

import pytest

from toolkit.config import SmokeCheck
from toolkit.errors import ReleaseError
from toolkit.release import rollout, slots, smoke

SMOKE = SmokeCheck(path="/health", port=8081, timeout_seconds=2, requests=1)


def _listeners(world) -> dict[int, list[str]]:
    elbv2 = world.aws.client("elbv2")
    lb = elbv2.describe_load_balancers(Names=[world.cfg.release.load_balancer])["LoadBalancers"][0]["LoadBalancerArn"]
    out: dict[int, list[str]] = {}
    for item in elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"]:
        out.setdefault(item["Port"], []).append(item["ListenerArn"])
    return out


def _team_listener(world, tags=()) -> str:
    """A listener on the smoke port as the team's infrastructure code would make it."""
    elbv2 = world.aws.client("elbv2")
    lb = elbv2.describe_load_balancers(Names=[world.cfg.release.load_balancer])["LoadBalancers"][0]["LoadBalancerArn"]
    blue = elbv2.describe_target_groups(Names=[world.cfg.release.slots["blue"]])["TargetGroups"][0]["TargetGroupArn"]
    return elbv2.create_listener(
        LoadBalancerArn=lb,
        Protocol="HTTP",
        Port=SMOKE.port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": blue}],
        **({"Tags": list(tags)} if tags else {}),
    )["Listeners"][0]["ListenerArn"]


def test_a_foreign_listener_on_the_smoke_port_is_refused_and_kept(make_world):
    world = make_world(smoke_check=SMOKE)
    theirs = _team_listener(world, tags=[{"Key": "team", "Value": "infra"}])
    before = world.state()
    with pytest.raises(ReleaseError) as caught:
        rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    assert caught.value.message == (
        f"release.smoke_check.port 8081: the load balancer {world.cfg.release.load_balancer} already has a listener "
        f"there that Rodeo did not make ({theirs})"
    )
    assert caught.value.hint.startswith("give smoke_check a port no listener uses")
    assert _listeners(world)[8081] == [theirs]
    assert world.state() == before  # nothing scaled, nothing weighted


def test_a_foreign_listener_appearing_mid_release_is_left_alone(make_world):
    world = make_world(smoke_check=SMOKE)
    theirs = _team_listener(world)
    with pytest.raises(smoke.SmokeFailed) as caught:
        smoke.open_test_listener(slots.resolve(world.cfg, world.aws), world.aws, world.cfg.release, "green")
    assert str(caught.value) == f"port 8081 got a listener Rodeo did not make ({theirs}): it was left alone"
    assert _listeners(world)[8081] == [theirs]


def test_a_stale_test_listener_is_replaced_by_a_tagged_one(make_world):
    world = make_world(smoke_check=SMOKE)
    stale = _team_listener(world, tags=[{"Key": "rodeo:smoke-check", "Value": "blue"}])  # what a killed run left
    env = slots.resolve(world.cfg, world.aws)
    made = smoke.open_test_listener(env, world.aws, world.cfg.release, "green")
    assert _listeners(world)[8081] == [made] and made != stale
    tags = world.aws.client("elbv2").describe_tags(ResourceArns=[made])["TagDescriptions"][0]["Tags"]
    assert tags == [{"Key": "rodeo:smoke-check", "Value": "green"}]
