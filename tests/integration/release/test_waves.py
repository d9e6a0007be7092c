"""A release in waves (``release.regions``) against a moto server: one region after another, each behind its gates."""

from __future__ import annotations

import base64
import dataclasses
import json
import time

import pytest

from tests.integration.release.conftest import World, make_config
from toolkit import configchange, regions
from toolkit.errors import ConfigError, ImageError, ReleaseError
from toolkit.release import history, ledger, setup, slots, waves
from toolkit.release import status as release_status
from toolkit.ui import Silent

EAST, WEST, EU = "us-east-1", "us-west-2", "eu-west-1"


class Waves:
    """A seeded environment released in waves over ``names``: its home World and each region's config and clients."""

    def __init__(self, moto_stack, project, names, **changes):
        st, url = moto_stack
        cfg = make_config(project, regions=tuple(names), **changes)
        cfg = dataclasses.replace(cfg, copy_to_regions=tuple(n for n in names if n != EAST))
        self.home = World(cfg, url, st).seed()
        self.cfg, self.aws = cfg, self.home.aws
        self.regional = {}
        for here, env in regions.each(cfg, self.aws):  # World.seed seeded every region (toolkit.local.seed)
            self.regional[here.region] = (here, env, slots.resolve(here, env))
        for name in self.regional:
            self._wait_serving(name)

    def _wait_serving(self, name):
        deadline = time.monotonic() + 30
        while self.state(name).active.healthy < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert self.state(name).active.healthy == 2, self.state(name)

    def state(self, name):
        _, env, resolved = self.regional[name]
        return slots.read(resolved, env)

    def ami(self, copies=None):
        """A verified AMI in the home region and its copies (same lineage tags) in ``copies``: {region: id}."""
        home = self.home.ami()
        tags = self.aws.client("ec2").describe_images(ImageIds=[home])["Images"][0]["Tags"]
        tags += [{"Key": "rodeo:inputs-hash", "Value": f"sha256:{home}"}]
        self.aws.client("ec2").create_tags(Resources=[home], Tags=tags)
        out = {EAST: home}
        for region in copies if copies is not None else [r for r in self.regional if r != EAST]:
            ec2 = self.aws.client("ec2", region)
            copy = ec2.register_image(
                Name=f"{home}-copy", Architecture="x86_64", RootDeviceName="/dev/xvda", VirtualizationType="hvm"
            )["ImageId"]
            ec2.create_tags(Resources=[copy], Tags=tags)
            out[region] = copy
        return out

    def user_data(self, name):
        """The user data of the launch template version ``name``'s active slot is pinned to."""
        here, env, _ = self.regional[name]
        version = self.state(name).active.version
        data = env.client("ec2").describe_launch_template_versions(
            LaunchTemplateName=f"rodeo-{here.app}", Versions=[str(version)]
        )["LaunchTemplateVersions"][0]["LaunchTemplateData"]["UserData"]
        return json.loads(base64.b64decode(data))["rodeo"]


def test_each_region_is_released_in_turn_and_the_result_says_what_each_runs(moto_stack, project):
    world = Waves(moto_stack, project, [EAST, WEST])
    amis = world.ami()
    order = []

    def weight_changed_in(region):
        def changed(model, **kwargs):
            if model.name == "ModifyListener":
                order.append(region)

        return changed

    for region in (EAST, WEST):
        world.aws.client("elbv2", region).meta.events.register("before-call", weight_changed_in(region))
    result = waves.release(world.cfg, world.aws, ami=amis[EAST], reporter=world.home.reporter)
    assert order == [EAST] * 3 + [WEST] * 3
    assert result.outcome == "released" and result.ami == amis[EAST]
    assert [(w.region, w.outcome, w.ami, w.serving) for w in result.waves] == [
        (EAST, "released", amis[EAST], amis[EAST]),
        (WEST, "released", amis[WEST], amis[WEST]),
    ]
    for region in (EAST, WEST):
        here, env, _ = world.regional[region]
        assert ledger.recent(here, env, 1)[0]["outcome"] == "released"
    assert "config_region" not in world.user_data(EAST) and world.user_data(WEST)["config_region"] == EAST
    lines = result.lines()
    assert lines[0].startswith(f"released {amis[EAST]} in 2 region(s)")
    assert [line.split()[:3] for line in lines[1:]] == [[EAST, "v1", "released"], [WEST, "v1", "released"]]
    shown = release_status.everywhere(world.cfg, world.aws)
    assert {region: there["ami"] for region, there in shown["regions"].items()} == amis
    assert [line for line in release_status.lines(world.cfg, shown) if not line.startswith(" ")] == [
        f"{EAST}:",
        f"{WEST}:",
    ]
    # A config change is a release in waves too: every region takes the new config version of region: (us-east-1).
    changed = configchange.set_vars(world.cfg, world.aws, {"GREETING": "hi"}, reporter=world.home.reporter)
    assert changed.outcome == "released" and changed.version == 1
    assert [(w.region, w.outcome, w.serving, w.serving_config) for w in changed.release.waves] == [
        (EAST, "released", amis[EAST], 1),
        (WEST, "released", amis[WEST], 1),
    ]
    assert world.user_data(WEST)["config_parameters"] == world.user_data(EAST)["config_parameters"]
    assert world.aws.client("ssm", WEST).describe_parameters()["Parameters"] == []
    again = setup.ensure_everywhere(world.cfg, world.aws)
    assert [(region, done["created"]) for region, done in again] == [(EAST, []), (WEST, [])]
    assert all(f"load balancer {world.cfg.app}" in done["found"] for _, done in again)


def test_a_wave_failing_its_gates_is_rolled_back_and_the_regions_after_it_are_not_touched(moto_stack, project):
    world = Waves(moto_stack, project, [EAST, WEST, EU])
    before = {region: world.state(region).active.ami for region in world.regional}
    amis = world.ami()
    ec2 = world.aws.client("ec2", WEST)

    def stop_new_instances(http_response, parsed, model, **kwargs):
        group = world.aws.client("autoscaling", WEST).describe_auto_scaling_groups(
            AutoScalingGroupNames=[f"{world.cfg.app}-green"]
        )["AutoScalingGroups"][0]
        ids = [i["InstanceId"] for i in group["Instances"]]
        if ids:
            ec2.stop_instances(InstanceIds=ids)

    world.aws.client("autoscaling", WEST).meta.events.register(
        "after-call.autoscaling.UpdateAutoScalingGroup", stop_new_instances
    )
    with pytest.raises(ReleaseError) as caught:
        waves.release(world.cfg, world.aws, ami=amis[EAST], reporter=world.home.reporter)
    err = caught.value
    assert err.message.startswith(f"the release in waves stopped in {WEST} (wave 2/3): ")
    assert err.hint.startswith(f"{EAST} serves the new AMI; the regions after {WEST} were not touched.")
    assert [(w.region, w.outcome, w.serving) for w in err.result.waves] == [
        (EAST, "released", amis[EAST]),
        (WEST, "rolled_back", before[WEST]),
        (EU, "not_started", before[EU]),
    ]
    assert world.state(WEST).weights == {"blue": 100, "green": 0} and world.state(WEST).green.desired == 0
    assert world.state(EU).green.desired == 0 and ledger.recent(world.regional[EU][0], world.regional[EU][1]) == []
    assert world.home.state().weights == {"blue": 0, "green": 100}
    back = waves.rollback(world.cfg, world.aws, reporter=world.home.reporter)
    assert [(w.region, w.outcome, w.serving) for w in back.waves] == [
        (EAST, "restored", before[EAST]),
        (WEST, "untouched", before[WEST]),  # its release failed before any weight moved: nothing to undo
        (EU, "untouched", before[EU]),
    ]
    assert back.lines()[0].startswith("rolled back in 1 region(s)")
    assert ledger.recent(world.regional[EU][0], world.regional[EU][1]) == []
    with pytest.raises(ConfigError, match="each region numbers its own releases"):
        waves.rollback(world.cfg, world.aws, to=1)
    with pytest.raises(ConfigError, match="--region ap-south-1: not a region this environment releases in"):
        waves.rollback(world.cfg, world.aws, region="ap-south-1")
    west = history.read(*regions.one(world.cfg, world.aws, WEST))
    assert [(e["number"], e["outcome"]) for e in west.to_dict()["releases"]] == [(1, "rolled_back")]


def test_a_lock_of_region_taken_over_between_waves_stops_the_next_wave(moto_stack, project):
    world = Waves(moto_stack, project, [EAST, WEST])
    amis = world.ami()
    table = world.aws.client("dynamodb")

    class TakenBetweenWaves(Silent):
        def info(self, message: str) -> None:
            if message.startswith("wave 2/2"):  # as --break-lock from another host would
                item = {"pk": {"S": f"{world.cfg.env}#lock"}, "sk": {"S": "lock"}, "token": {"S": "theirs"}}
                table.put_item(TableName=f"rodeo-{world.cfg.app}", Item={**item, "by": {"S": "ci@elsewhere"}})
            super().info(message)

    with pytest.raises(ReleaseError) as caught:
        waves.release(world.cfg, world.aws, ami=amis[EAST], reporter=TakenBetweenWaves())
    assert caught.value.message.startswith(
        f"the release in waves stopped in {WEST} (wave 2/2): this run lost the lock, now held by ci@elsewhere"
    )
    assert [(w.region, w.outcome) for w in caught.value.result.waves] == [(EAST, "released"), (WEST, "failed")]
    assert (
        world.state(WEST).green.desired == 0 and ledger.recent(world.regional[WEST][0], world.regional[WEST][1]) == []
    )


def test_an_ami_without_a_copy_in_a_region_is_named_before_any_traffic_moves(moto_stack, project):
    world = Waves(moto_stack, project, [EAST, WEST])
    before = {region: world.state(region) for region in world.regional}
    amis = world.ami(copies=[])
    with pytest.raises(ImageError) as caught:
        waves.release(world.cfg, world.aws, ami=amis[EAST], reporter=world.home.reporter)
    assert caught.value.message == (
        f"{amis[EAST]} has no verified copy in {WEST} (same rodeo:inputs-hash and rodeo:built-at)"
    )
    assert "copy_to_regions" in caught.value.hint
    assert {region: world.state(region) for region in world.regional} == before


def test_a_region_missing_its_listener_is_named_before_any_traffic_moves(moto_stack, project):
    world = Waves(moto_stack, project, [EAST, WEST])
    elbv2 = world.aws.client("elbv2", WEST)
    lb = elbv2.describe_load_balancers(Names=[world.cfg.app])["LoadBalancers"][0]["LoadBalancerArn"]
    for listener in elbv2.describe_listeners(LoadBalancerArn=lb)["Listeners"]:
        elbv2.delete_listener(ListenerArn=listener["ListenerArn"])
    before = world.home.state()
    amis = world.ami()
    with pytest.raises(ReleaseError) as caught:
        waves.release(world.cfg, world.aws, ami=amis[EAST], reporter=world.home.reporter)
    assert caught.value.message.startswith(f"{WEST}: ") and "listener" in caught.value.message
    assert caught.value.hint.endswith("(no region was released)")
    assert world.home.state() == before


def test_one_box_is_the_first_regions_first_step_only(moto_stack, project):
    world = Waves(moto_stack, project, [EAST, WEST], one_box=True)
    amis = world.ami()
    result = waves.release(world.cfg, world.aws, ami=amis[EAST], plan_only=True, reporter=world.home.reporter)
    assert result.outcome == "planned"
    counts = [[(s["new_weight"], s["new_instances"]) for s in w.release.plan["steps"]] for w in result.waves]
    assert counts == [[(10, 1), (50, 2), (100, 2)], [(10, 2), (50, 2), (100, 2)]]


class Crash(BaseException):
    """Unwinds a release the way a kill would leave it: nothing catches it."""


def test_a_rerun_after_a_stop_in_the_second_wave_leaves_the_first_as_is_and_finishes_the_second(moto_stack, project):
    world = Waves(moto_stack, project, [EAST, WEST])
    amis = world.ami()
    moved = []

    def crash_at_the_second_waves_first_weight(model, **kwargs):
        if model.name == "ModifyListener":
            moved.append(WEST)
            if len(moved) == 1:
                raise Crash()

    world.aws.client("elbv2", WEST).meta.events.register("after-call", crash_at_the_second_waves_first_weight)
    with pytest.raises(Crash):
        waves.release(world.cfg, world.aws, ami=amis[EAST], reporter=world.home.reporter)
    assert world.state(WEST).weights == {"blue": 90, "green": 10}  # stopped at its 10% step
    result = waves.release(world.cfg, world.aws, ami=amis[EAST], reporter=world.home.reporter)
    assert [(w.region, w.outcome, w.serving) for w in result.waves] == [
        (EAST, "unchanged", amis[EAST]),
        (WEST, "released", amis[WEST]),
    ]
    assert result.waves[1].release.steps == [10, 50, 100] and moved == [WEST] * 4
