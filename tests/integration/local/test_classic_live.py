"""A release by rotation behind a Classic ELB on the live local stack, under load, as AWS runs it.

One stack, two Auto Scaling groups of one instance each (booted together):
slot A (the sample app, every page 1.5 s slow) is attached to the ELB from
its start and serves; under a bounded loopback load, slot B is attached,
its instance goes OutOfService (registration in progress) to InService,
then A is detached: its in-flight slow pages finish while it drains, and
not one request fails.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.integration.local.conftest import CACHE, leftovers
from tests.support import livebuilds
from tests.support.load import Load
from toolkit import config
from toolkit.aws import once_settled
from toolkit.local import seed, stack
from toolkit.local.controller import POLL
from toolkit.local.environment import LocalEnvironment
from toolkit.release import rollout, slots
from toolkit.ui import Silent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[3]
ELB = "seed-web"
SLOW_MS = 1500  # slot A's pages: a request is in flight for 1.5 s
DRAIN_SECONDS = 5  # ConnectionDraining's timeout: longer than A's pages
CHECK = {"Target": "HTTP:8080/health", "Interval": 5, "Timeout": 2, "HealthyThreshold": 2, "UnhealthyThreshold": 2}
REGISTERING = ("OutOfService", "ELB", "Instance registration is still in progress.")
IN_SERVICE = ("InService", "N/A", "N/A")
BOOT_SECONDS = 90  # as test_live's: a busy machine's boots take that long


class Rotation:
    """The module's stack: its clients, the Classic ELB and the two slots' groups."""

    def __init__(self, st: stack.Stack, url: str, layers: dict, folder) -> None:
        self.st, self.layers = st, layers
        aws = LocalEnvironment(region=REGION, endpoint=url)
        self.ec2, self.elb, self.asg = aws.client("ec2"), aws.client("elb"), aws.client("autoscaling")
        self.cloudwatch = aws.client("cloudwatch")
        vpc = self.ec2.describe_vpcs(Filters=[{"Name": "tag:rodeo:seed", "Values": ["local"]}])["Vpcs"][0]["VpcId"]
        self.elb.create_load_balancer(
            LoadBalancerName=ELB,
            Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP", "InstancePort": 8080}],
            Subnets=seed.public_subnets(self.ec2, vpc),
            SecurityGroups=[seed.load_balancer_group(self.ec2, vpc)],
            Scheme="internal",
        )
        self.elb.configure_health_check(LoadBalancerName=ELB, HealthCheck=CHECK)
        draining = {"ConnectionDraining": {"Enabled": True, "Timeout": DRAIN_SECONDS}}
        self.elb.modify_load_balancer_attributes(LoadBalancerName=ELB, LoadBalancerAttributes=draining)
        self.amis = {
            "a": livebuilds.build(st, self.ec2, layers, folder, "a", fault="slow", slow_ms=SLOW_MS),
            "b": livebuilds.build(st, self.ec2, layers, folder, "b"),
        }

    def group(self, slot: str, **kwargs) -> str:
        """Slot ``slot``'s group of one instance; its instance's id."""
        name = f"slot-{slot}"
        self.ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={
                "ImageId": self.amis[slot],
                "InstanceType": "t3.micro",
                "SecurityGroupIds": [seed.INSTANCE_SG],
            },
        )
        once_settled(
            lambda: self.asg.create_auto_scaling_group(
                AutoScalingGroupName=name,
                LaunchTemplate={"LaunchTemplateName": name, "Version": "1"},
                MinSize=0,
                MaxSize=1,
                DesiredCapacity=1,
                VPCZoneIdentifier=",".join(seed.PRIVATE_SUBNETS),
                **kwargs,
            )
        )
        (instance,) = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0][
            "Instances"
        ]
        return instance["InstanceId"]

    def health(self, iid: str) -> tuple:
        (found,) = self.elb.describe_instance_health(LoadBalancerName=ELB, Instances=[{"InstanceId": iid}])[
            "InstanceStates"
        ]
        return found["State"], found["ReasonCode"], found["Description"]

    def attached(self, slot: str) -> list[tuple[str, str]]:
        found = self.asg.describe_load_balancers(AutoScalingGroupName=f"slot-{slot}")["LoadBalancers"]
        return [(lb["LoadBalancerName"], lb["State"]) for lb in found]

    def requests_counted(self) -> int:
        """The Sum of the ELB's ``AWS/ELB`` RequestCount over the last 10 minutes."""
        now = datetime.now(timezone.utc)
        found = self.cloudwatch.get_metric_statistics(
            Namespace="AWS/ELB",
            MetricName="RequestCount",
            Dimensions=[{"Name": "LoadBalancerName", "Value": ELB}],
            StartTime=now - timedelta(minutes=10),
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        return int(sum(d["Sum"] for d in found))

    def state(self, iid: str) -> str:
        return self.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


def until(read, done, timeout: float, every: float = 0.25) -> list:
    """Poll ``read()`` until ``done(value)``; every distinct value seen, in order (AssertionError at the deadline)."""
    seen: list = []
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if not seen or seen[-1] != value:
            seen.append(value)
        if done(value):
            return seen
        assert time.monotonic() < deadline, f"not done in {timeout}s: {seen}"
        time.sleep(every)


def distinct(values: list) -> list:
    """``values`` without repeats in a row."""
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


@pytest.fixture(scope="module")
def rotation(layers, tmp_path_factory):
    folder = tmp_path_factory.mktemp("classic")
    st = stack.Stack(state_dir=folder / "state", cache_dir=CACHE, live=True)
    url = stack.up(st, REGION)
    try:
        yield Rotation(st, url, layers, folder)
    finally:
        stack.down(st)


def test_a_rotation_behind_a_classic_elb_fails_no_request(rotation):
    r = rotation
    a = r.group("a", LoadBalancerNames=[ELB])
    b = r.group("b")  # booted beside A's, attached later
    assert r.attached("a") == [(ELB, "InService")]  # attached when the group was made: InService at once (AWS)
    until(lambda: r.health(a), lambda h: h == IN_SERVICE, BOOT_SECONDS)
    url = stack.listener_urls(r.st, ELB)[80]
    assert stack.status(r.st)["load_balancers"] == {ELB: {"80": url}}
    until(lambda: r.state(b), lambda s: s == "running", BOOT_SECONDS)
    assert r.health(b) == ("OutOfService", "ELB", "Instance is not currently registered with the LoadBalancer.")

    with Load(url, rate=20, workers=8, path="/", max_seconds=120, max_requests=2400) as load:
        until(lambda: {s.version for s in load.samples}, lambda v: "a" in v, 10)
        r.asg.attach_load_balancers(AutoScalingGroupName="slot-b", LoadBalancerNames=[ELB])
        attaching = [r.attached("b")]
        b_health = until(lambda: r.health(b), lambda h: h == IN_SERVICE, 60)
        attaching.append(r.attached("b"))
        until(lambda: {s.version for s in load.samples[-20:]}, lambda v: "b" in v, 10)
        detached = load.now()
        r.asg.detach_load_balancers(AutoScalingGroupName="slot-a", LoadBalancerNames=[ELB])
        removing = until(lambda: (r.attached("a"), r.health(a)), lambda found: found[0] == [], DRAIN_SECONDS + 15)
        gone = load.now()
        until(lambda: load.now(), lambda now: now > gone + 2, 5)  # B alone serves a while
    samples = list(load.samples)

    assert load.failed() == [], load.summary()
    assert b_health[0] == REGISTERING and b_health[-1] == IN_SERVICE, b_health
    assert set(b_health) <= {REGISTERING, IN_SERVICE}, b_health
    assert attaching == [[(ELB, "Adding")], [(ELB, "Added")]]  # HealthCheckType EC2: Added, never InService
    # Two calls each poll (not one snapshot): each answer's own sequence, in order.
    assert distinct([found for found, _ in removing]) == [[(ELB, "Removing")], []], removing
    assert distinct([health for _, health in removing]) == [
        ("InService", "N/A", "Instance deregistration currently in progress."),
        ("OutOfService", "ELB", "Instance is not currently registered with the LoadBalancer."),
    ], removing
    assert gone - detached < DRAIN_SECONDS  # deregistered once its in-flight pages were answered, before the timeout
    # A's slow pages in flight when it was detached finished, answered by A, while it drained.
    in_flight = [s for s in samples if s.version == "a" and s.at < detached < s.at + s.seconds]
    assert in_flight and all(s.ok and s.seconds < SLOW_MS / 1000 + DRAIN_SECONDS for s in in_flight), in_flight
    # No new request went to A once the drain began (the controller acts within a poll of the detach).
    late = [s for s in samples if s.version == "a" and s.at > detached + 4 * POLL]
    assert late == [], late
    assert {s.version for s in samples if s.at > gone} == {"b"}
    # HAProxy's counts are the ELB's AWS/ELB metrics: every request the load sent, counted once.
    until(r.requests_counted, lambda n: n >= len(samples), 10)
    assert r.requests_counted() == len(samples)
    # The old slot is scaled to 0 after the rotation: its instance is not the ELB's, nothing to drain.
    r.asg.update_auto_scaling_group(AutoScalingGroupName="slot-a", MinSize=0, DesiredCapacity=0)
    until(lambda: r.state(a), lambda s: s == "terminated", 60)
    assert r.elb.describe_instance_health(LoadBalancerName=ELB)["InstanceStates"] == [
        {"InstanceId": b, "State": "InService", "ReasonCode": "N/A", "Description": "N/A"}
    ]


def test_a_release_behind_a_classic_elb_rotates_and_fails_no_request(rotation, tmp_path):
    """``invoke release``'s engine behind the seeded Classic ELB (``release.load_balancer_type: classic``), under load:
    green joins (its instances InService before blue leaves), blue drains and scales in, not one request fails."""
    r = rotation
    root = livebuilds.project(tmp_path / "project", ROOT, pause=2)
    cfg = livebuilds.behind_classic(config.load("local", root))
    stack.up(r.st, REGION, seeders=(seed.seed_release(cfg),))  # the ELB "web", blue attached and serving
    aws = LocalEnvironment(region=REGION, endpoint=stack.endpoint(r.st), stack=r.st)
    env = slots.resolve(cfg, aws)
    assert env.classic == "web" and slots.read(env, aws).weights == {"blue": 100, "green": 0}
    ami = livebuilds.build(r.st, r.ec2, r.layers, tmp_path, "c")
    url = stack.listener_urls(r.st, "web")[80]
    with Load(url, rate=20, workers=8, path="/", max_seconds=180, max_requests=3600) as load:
        until(lambda: len(load.samples), lambda n: n >= 20, 10)
        result = rollout.release(cfg, aws, ami=ami, reporter=Silent())
        done = load.now()
        until(lambda: load.now(), lambda now: now > done + 2, 5)  # green alone serves a while
    samples = list(load.samples)
    assert load.failed() == [], load.summary()
    assert result.outcome == "released" and result.steps == [50, 100] and result.active_slot == "green"
    after = slots.read(env, aws)
    assert after.weights == {"blue": 0, "green": 100}
    assert (after.green.ami, after.green.healthy, after.blue.desired, after.blue.instances) == (ami, 2, 0, 0)
    green = set(slots.instance_ids(env, aws, "green"))
    health = r.elb.describe_instance_health(LoadBalancerName="web")["InstanceStates"]
    assert {h["InstanceId"]: h["State"] for h in health} == dict.fromkeys(green, "InService")
    assert {s.version for s in samples if s.at > done} == {"c"}


def test_down_leaves_nothing(rotation):
    assert stack.down(rotation.st)
    assert leftovers(rotation.st) == {"processes": [], "mounts": [], "netns": [], "cgroups": []}
