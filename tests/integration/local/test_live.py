"""The live local stack for real: the sample app image booted by an ASG, behind HAProxy.

One stack and one set of instances for the whole module (the tests run in
order and build on each other): blue runs the sample app, green the same app
with its version set to "green", so every answer says which slot served it.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import math
import subprocess
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from tests.integration.local.conftest import CACHE, host_pid_of_container, in_instance, leftovers
from tests.support.load import Load
from toolkit import procs
from toolkit.aws import once_settled
from toolkit.local import clock, seed, stack
from toolkit.local.controller import POLL
from toolkit.local.environment import LocalEnvironment

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REGION = "us-east-1"
CHECK = {
    "HealthCheckPath": "/health",
    "HealthCheckIntervalSeconds": 5,
    "HealthCheckTimeoutSeconds": 2,
    "HealthyThresholdCount": 2,
    "UnhealthyThresholdCount": 2,
}
# Green's healthy threshold is AWS's highest: a new target is healthy at its first passed check all the same (AWS's
# ALB guide), where HAProxy's rise alone would take GREEN_THRESHOLD checks, 45 s after the first one passed.
GREEN_THRESHOLD = 10
DRAIN_SECONDS = 3
USER_DATA = "#!/bin/sh\necho configured by user data\n"
ROLE = "live-instance"  # the instances' profile and role: may read one parameter, nothing else
ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": "arn:aws:ssm:*:*:parameter/live/*"}],
}


class Live:
    """The module's stack: clients, the load balancer's resources, helpers to read them."""

    def __init__(self, st: stack.Stack, url: str, layers: dict, folder: Path) -> None:
        self.st = st
        aws = LocalEnvironment(region=REGION, endpoint=url)
        self.ec2, self.elb, self.asg = aws.client("ec2"), aws.client("elbv2"), aws.client("autoscaling")
        iam = aws.client("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName=ROLE, PolicyName=ROLE, PolicyDocument=json.dumps(ROLE_POLICY))
        iam.create_instance_profile(InstanceProfileName=ROLE)
        iam.add_role_to_instance_profile(InstanceProfileName=ROLE, RoleName=ROLE)
        self.blue = json.loads((layers["app"] / "opt/web/config.json").read_text())["version"]
        green = folder / "green-layer" / "opt/web"
        green.mkdir(parents=True)
        (green / "config.json").write_text(json.dumps({"version": "green", "port": 8080}))
        self.amis = {
            "blue": self._ami("live-app", [layers["rootfs"], layers["base"], layers["app"]]),
            "green": self._ami(
                "live-app-green", [layers["rootfs"], layers["base"], layers["app"], folder / "green-layer"]
            ),
        }
        vpc = self.ec2.describe_vpcs(Filters=[{"Name": "tag:rodeo:seed", "Values": ["local"]}])["Vpcs"][0]["VpcId"]
        # The seeded network: the load balancer in the public subnets, instances in the private ones with the group admitting it.
        self.subnets = list(seed.PRIVATE_SUBNETS)
        lb = self.elb.create_load_balancer(
            Name="live",
            Subnets=seed.public_subnets(self.ec2, vpc),
            SecurityGroups=[seed.load_balancer_group(self.ec2, vpc)],
            Type="application",
            Scheme="internal",
        )["LoadBalancers"][0]
        self.tgs = {}
        for slot in ("blue", "green"):
            check = dict(CHECK, HealthyThresholdCount=GREEN_THRESHOLD) if slot == "green" else CHECK
            self.tgs[slot] = self.elb.create_target_group(
                Name=f"live-{slot}", Protocol="HTTP", Port=8080, VpcId=vpc, **check
            )["TargetGroups"][0]["TargetGroupArn"]
            self.elb.modify_target_group_attributes(
                TargetGroupArn=self.tgs[slot],
                Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(DRAIN_SECONDS)}],
            )
        self.listener = self.elb.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80, DefaultActions=[self.forward(100, 0)]
        )["Listeners"][0]["ListenerArn"]

    def _ami(self, name: str, layers: list[Path]) -> str:
        ami = self.ec2.register_image(Name=name, Architecture="x86_64", RootDeviceName="/dev/xvda")["ImageId"]
        self.st.store.add(ami, layers)
        return ami

    def forward(self, blue: int, green: int, sticky_seconds: int = 0) -> dict:
        groups = [
            {"TargetGroupArn": self.tgs["blue"], "Weight": blue},
            {"TargetGroupArn": self.tgs["green"], "Weight": green},
        ]
        stickiness = {"Enabled": True, "DurationSeconds": sticky_seconds} if sticky_seconds else {"Enabled": False}
        return {"Type": "forward", "ForwardConfig": {"TargetGroups": groups, "TargetGroupStickinessConfig": stickiness}}

    def group(self, slot: str, desired: int) -> None:
        name = f"live-{slot}"
        if not self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]:
            self.ec2.create_launch_template(
                LaunchTemplateName=name,
                LaunchTemplateData={
                    "ImageId": self.amis[slot],
                    "InstanceType": "t3.micro",
                    "IamInstanceProfile": {"Name": ROLE},
                    "SecurityGroupIds": [seed.INSTANCE_SG],
                    "UserData": base64.b64encode(USER_DATA.encode()).decode(),
                },
            )
            once_settled(
                lambda: self.asg.create_auto_scaling_group(  # a version just made is refused at first, as on AWS
                    AutoScalingGroupName=name,
                    LaunchTemplate={"LaunchTemplateName": name, "Version": "1"},
                    MinSize=0,
                    MaxSize=4,
                    DesiredCapacity=desired,
                    VPCZoneIdentifier=",".join(self.subnets),
                    TargetGroupARNs=[self.tgs[slot]],
                )
            )
        else:
            self.asg.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, DesiredCapacity=desired)

    def instances(self, slot: str) -> list[str]:
        group = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[f"live-{slot}"])["AutoScalingGroups"][0]
        return sorted(i["InstanceId"] for i in group["Instances"])

    def states(self, ids: list[str]) -> dict[str, str]:
        found = self.ec2.describe_instances(InstanceIds=ids)["Reservations"]
        return {i["InstanceId"]: i["State"]["Name"] for r in found for i in r["Instances"]}

    def health(self, slot: str) -> dict[str, tuple]:
        described = self.elb.describe_target_health(TargetGroupArn=self.tgs[slot])["TargetHealthDescriptions"]
        return {d["Target"]["Id"]: (d["TargetHealth"]["State"], d["TargetHealth"].get("Reason")) for d in described}

    def wait_health(self, slot: str, want, timeout: float = 60.0) -> list[dict]:
        """Poll target health until ``want(health)``; return every distinct answer seen (bounded)."""
        seen: list[dict] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.health(slot)
            if not seen or seen[-1] != now:
                seen.append(now)
            if want(now):
                return seen
            time.sleep(0.5)
        raise AssertionError(f"{slot}: no wanted health in {timeout}s; seen {seen}")

    @property
    def url(self) -> str:
        return stack.status(self.st)["load_balancer_url"]


def get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def versions(url: str, count: int) -> dict[str, int]:
    """Which version answered each of ``count`` requests to /health ("error" for anything but 200)."""
    counts: dict[str, int] = {}
    for _ in range(count):
        status, body = get(f"{url}/health")
        key = json.loads(body)["version"] if status == 200 else "error"
        counts[key] = counts.get(key, 0) + 1
    return counts


def systemd_cgroups(instance_id: str) -> set[str]:
    """The cgroup paths of the instance's systemd in the hierarchies that track it, from its own folder's name on."""
    lines = Path(f"/proc/{host_pid_of_container(instance_id)}/cgroup").read_text().splitlines()
    paths = [line.split(":", 2)[2] for line in lines if line.startswith("0::") or ":name=systemd:" in line]
    return {path[path.rindex("/rodeo-") :] if "/rodeo-" in path else path for path in paths}


def containers(ids: list[str]) -> list[str]:
    return [i for i in ids if any(c.startswith("systemd-nspawn") and f"-M {i}" in c for _, c, _ in procs.processes())]


@pytest.fixture(scope="module")
def live(layers, tmp_path_factory):
    folder = tmp_path_factory.mktemp("live")
    st = stack.Stack(state_dir=folder / "state", cache_dir=CACHE, live=True)
    url = stack.up(st, REGION)
    try:
        yield Live(st, url, layers, folder)
    finally:
        stack.down(st)


def test_scale_up_boots_instances_that_pass_their_checks(live):
    live.group("blue", 2)
    ids = live.instances("blue")
    assert len(ids) == 2
    assert set(live.states(ids).values()) <= {"pending", "running"}
    seen = live.wait_health("blue", lambda h: len(h) == 2 and all(s == "healthy" for s, _ in h.values()), timeout=90)
    assert all(s == "initial" for s, _ in seen[0].values()), seen
    assert live.states(ids) == {i: "running" for i in ids}
    assert containers(ids) == ids
    # Each in cgroups of its own (toolkit.local.cgroups): side by side they shared systemd's, and a unit one finished
    # while the other started it failed there.
    own = {i: {f"/{live.st.run_dir.name}-{i}/payload/init.scope"} for i in ids}
    assert {i: systemd_cgroups(i) for i in ids} == own
    # The sealed image made its own host keys at boot: sshd runs.
    assert in_instance(ids[0], "systemctl", "is-active", "ssh").stdout.strip() == "active"


def test_load_balancer_answers_from_the_app(live):
    assert live.url.startswith("http://127.0.0.1:")
    assert stack.status(live.st)["load_balancers"] == {"live": {"80": live.url}}
    status, body = get(live.url + "/")
    assert status == 200 and "Hello from Rodeo" in body
    assert versions(live.url, 20) == {live.blue: 20}


def test_weights_shift_the_share_of_requests_without_dropping_any(live):
    asked = time.monotonic()
    live.group("green", 1)
    live.wait_health("green", lambda h: len(h) == 1 and all(s == "healthy" for s, _ in h.values()), timeout=90)
    # One passed check made it healthy: GREEN_THRESHOLD of them are (GREEN_THRESHOLD - 1) intervals after the first.
    assert time.monotonic() - asked < (GREEN_THRESHOLD - 1) * CHECK["HealthCheckIntervalSeconds"]
    assert versions(live.url, 30) == {live.blue: 30}
    failures: list = []
    stop = threading.Event()

    def load() -> None:  # bounded: at most 2,000 requests or until told to stop
        for _ in range(2000):
            if stop.is_set():
                return
            status, body = get(live.url + "/health")
            if status != 200:
                failures.append((status, body[:100]))

    loader = threading.Thread(target=load)
    loader.start()
    try:
        live.elb.modify_listener(ListenerArn=live.listener, DefaultActions=[live.forward(50, 50)])
        time.sleep(1.0)
        split = versions(live.url, 200)
        live.elb.modify_listener(ListenerArn=live.listener, DefaultActions=[live.forward(100, 0)])
        time.sleep(1.0)
        after = versions(live.url, 50)
    finally:
        stop.set()
        loader.join(30)
    assert set(split) == {live.blue, "green"}, split
    assert 60 <= split["green"] <= 140, split
    assert after == {live.blue: 50}
    assert failures == []


def pinned_versions(opener, url: str, count: int) -> dict[str, int]:
    """Like ``versions``, through ``opener`` (a client keeping its cookies)."""
    counts: dict[str, int] = {}
    for _ in range(count):
        with opener.open(f"{url}/health", timeout=5) as resp:
            key = json.loads(resp.read())["version"]
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_a_client_pinned_by_target_group_stickiness_keeps_its_slot_when_the_weights_change(live):
    jar = http.cookiejar.CookieJar()
    pinned = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    live.elb.modify_listener(ListenerArn=live.listener, DefaultActions=[live.forward(0, 100, sticky_seconds=60)])
    try:
        deadline = time.monotonic() + 10  # a new stickiness setting reloads HAProxy
        while not any(c.name == "AWSALBTG" for c in jar) and time.monotonic() < deadline:
            pinned_versions(pinned, live.url, 1)
            time.sleep(0.2)
        assert [c.name for c in jar] == ["AWSALBTG"]
        assert pinned_versions(pinned, live.url, 5) == {"green": 5}
        live.elb.modify_listener(ListenerArn=live.listener, DefaultActions=[live.forward(100, 0, sticky_seconds=60)])
        deadline = time.monotonic() + 5
        while versions(live.url, 1) != {live.blue: 1} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert versions(live.url, 20) == {live.blue: 20}  # a new client follows the weights
        assert pinned_versions(pinned, live.url, 20) == {"green": 20}  # a pinned one keeps its group, at weight 0
    finally:
        live.elb.modify_listener(ListenerArn=live.listener, DefaultActions=[live.forward(100, 0)])


def test_a_stopped_app_turns_its_target_unhealthy_and_gets_no_requests(live):
    victim, other = live.instances("blue")
    assert in_instance(victim, "systemctl", "stop", "web").returncode == 0
    try:
        live.wait_health(
            "blue",
            lambda h: h[victim] == ("unhealthy", "Target.FailedHealthChecks") and h[other][0] == "healthy",
            timeout=40,
        )
        assert versions(live.url, 20) == {live.blue: 20}
    finally:
        in_instance(victim, "systemctl", "start", "web")
    live.wait_health("blue", lambda h: all(s == "healthy" for s, _ in h.values()), timeout=40)


def test_a_deregistered_target_is_draining_and_gets_no_request_once_deregister_targets_answers(live):
    """AWS's load balancer stops at once, not a poll of the stack's controller later; registered again, it serves."""
    victim, other = live.instances("blue")
    path = f"/after-deregister-{time.time_ns()}"
    live.elb.deregister_targets(TargetGroupArn=live.tgs["blue"], Targets=[{"Id": victim}])
    try:
        assert live.health("blue")[victim] == ("draining", "Target.DeregistrationInProgress")
        assert [get(live.url + path)[0] for _ in range(20)] == [404] * 20
    finally:
        live.elb.register_targets(TargetGroupArn=live.tgs["blue"], Targets=[{"Id": victim}])

    def served() -> dict[str, int] | None:  # an app logs a request once it has answered it: until the 20 are logged
        found = {iid: sum(path in line for line in app_log(iid)) for iid in (victim, other)}
        return found if sum(found.values()) >= 20 else None

    assert wait_for(served, 10) == {victim: 0, other: 20}
    live.wait_health("blue", lambda h: h == {victim: ("healthy", None), other: ("healthy", None)}, timeout=40)


def test_scale_in_drains_then_removes_the_instance(live):
    (gone,) = live.instances("green")
    folder = live.st.live_dir / "instances" / gone
    assert folder.is_dir()
    live.group("green", 0)
    seen = live.wait_health("green", lambda h: h == {}, timeout=DRAIN_SECONDS + 20)
    assert any(h.get(gone, ("",))[0] == "draining" for h in seen), seen
    deadline = time.monotonic() + 60  # power-off under load takes a while; the state follows it
    while (
        containers([gone]) or folder.exists() or live.states([gone]) != {gone: "terminated"}
    ) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert containers([gone]) == [] and not folder.exists()
    assert live.states([gone]) == {gone: "terminated"}
    assert procs.mounts((str(folder),)) == []


def next_local(after: datetime, zone: str, hour: int) -> datetime:
    """The first ``hour``:00:01 in ``zone`` after ``after`` (one second past a schedule at ``hour``:00)."""
    local = after.astimezone(ZoneInfo(zone))
    when = local.replace(hour=hour, minute=0, second=1, microsecond=0)
    return when if when > local else when + timedelta(days=1)


def test_a_schedule_scales_the_serving_group_in_at_night_and_out_in_the_morning_without_a_failed_request(live):
    """Scheduled actions on the live stack's clock (issue 24, item 1): at "night" the group drains one instance and
    stops it, in the "morning" it boots one back, under steady load, and no request fails."""
    zone, name = "Europe/Berlin", "live-blue"
    live.group("blue", 2)  # from the tests before: 2 instances, healthy, holding every request
    live.wait_health("blue", lambda h: len(h) == 2 and all(s == "healthy" for s, _ in h.values()))
    actions = [
        {"ScheduledActionName": "night", "Recurrence": "0 22 * * *", "MinSize": 1, "DesiredCapacity": 1},
        {"ScheduledActionName": "morning", "Recurrence": "0 7 * * *", "MinSize": 2},  # desired follows the minimum
    ]
    live.asg.batch_put_scheduled_update_group_action(
        AutoScalingGroupName=name, ScheduledUpdateGroupActions=[dict(a, TimeZone=zone) for a in actions]
    )
    before = live.instances("blue")
    night = next_local(clock.now(live.st.live_dir), zone, 22)
    try:
        with Load(live.url, rate=40, workers=4, max_seconds=120, max_requests=4800) as load:
            time.sleep(1.0)
            clock.set_to(live.st.live_dir, night)
            (kept,) = wait_for(lambda: live.instances("blue") if len(live.instances("blue")) == 1 else None, 10)
            (gone,) = set(before) - {kept}
            alive_while_draining = []
            deadline = time.monotonic() + DRAIN_SECONDS + 30
            while True:  # the target drains while its instance runs, then leaves; then the instance stops
                health = live.health("blue")
                if health.get(gone, ("",))[0] == "draining":
                    alive_while_draining.append(containers([gone]) == [gone])
                if health == {kept: ("healthy", None)} and not containers([gone]):
                    break
                assert time.monotonic() < deadline, (health, containers([gone]))
                time.sleep(0.2)
            assert alive_while_draining and all(alive_while_draining), alive_while_draining
            assert wait_for(lambda: live.states([gone]) == {gone: "terminated"}, 30)
            assert sizes(live, name) == (1, 4, 1, 1)
            clock.set_to(live.st.live_dir, next_local(night, zone, 7))
            wait_for(lambda: len(live.instances("blue")) == 2, 10)
            added = (set(live.instances("blue")) - {kept}).pop()
            live.wait_health("blue", lambda h: h == {kept: ("healthy", None), added: ("healthy", None)}, timeout=90)
            assert sizes(live, name) == (2, 4, 2, 2)
            assert containers(sorted([kept, added])) == sorted([kept, added])
            time.sleep(1.0)
    finally:
        clock.reset(live.st.live_dir)
        live.asg.batch_delete_scheduled_action(AutoScalingGroupName=name, ScheduledActionNames=["night", "morning"])
    summary = load.summary()
    print(f"night and morning under load: {summary}, {load.now():.1f}s")
    assert summary["requests"] >= 40 * 10, summary  # the load ran through both
    assert summary["failed"] == 0, (summary, load.failed()[:5])


def sizes(live: Live, name: str) -> tuple[int, int, int, int]:
    """(min, max, desired, instances) of an Auto Scaling group."""
    group = live.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return group["MinSize"], group["MaxSize"], group["DesiredCapacity"], len(group["Instances"])


def wait_for(answer, timeout: float):
    """Poll ``answer()`` every 0.2 s until it is truthy, and return it; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = answer()
        if found:
            return found
        assert time.monotonic() < deadline, f"nothing after {timeout}s"
        time.sleep(0.2)


def test_changed_health_settings_apply_and_a_wrong_code_is_a_mismatch(live):
    # A new matcher reloads HAProxy (servers and their health kept), then checks fail on the code.
    ids = live.instances("blue")
    live.elb.modify_target_group(TargetGroupArn=live.tgs["blue"], Matcher={"HttpCode": "201-204"})
    try:
        live.wait_health(
            "blue", lambda h: set(h.values()) == {("unhealthy", "Target.ResponseCodeMismatch")}, timeout=40
        )
    finally:
        live.elb.modify_target_group(TargetGroupArn=live.tgs["blue"], Matcher={"HttpCode": "200"})
    live.wait_health("blue", lambda h: sorted(h) == ids and all(s == "healthy" for s, _ in h.values()), timeout=40)
    assert versions(live.url, 10) == {live.blue: 10}


def alarm_state(cw, name: str) -> str:
    return cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]


def wait_alarm(cw, name: str, want: str, timeout: float) -> list[str]:
    """Poll ``name`` until it is ``want``; return the states seen (bounded)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = alarm_state(cw, name)
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == want:
            return seen
        time.sleep(0.5)
    raise AssertionError(f"{name}: not {want} after {timeout}s; seen {seen}")


def poll(read, want, timeout: float):
    """``read()`` until it returns ``want`` or ``timeout`` seconds pass; the last value read."""
    deadline = time.monotonic() + timeout
    while (got := read()) != want and time.monotonic() < deadline:
        time.sleep(0.25)
    return got


def lb_sum(cw, metric: str, dims: list[dict], since) -> float:
    """The Sum of an ALB metric since ``since`` (all of it: one period spanning the whole time)."""
    points = cw.get_metric_statistics(
        Namespace="AWS/ApplicationELB",
        MetricName=metric,
        Dimensions=dims,
        StartTime=since,
        EndTime=datetime.now(timezone.utc) + timedelta(minutes=5),
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(p["Sum"] for p in points)


def restart_web(instance_id: str, before: str) -> None:
    """Run ``before`` in the instance, restart web, and wait (bounded) until it answers inside."""
    ready = "for i in $(seq 100); do python3 -c 'import urllib.request as u; u.urlopen(\"http://127.0.0.1:8080/health\", timeout=1)' 2>/dev/null && exit 0; sleep 0.1; done; exit 1"
    done = in_instance(
        instance_id, "sh", "-c", f"{before} && systemctl daemon-reload && systemctl restart web && {ready}"
    )
    assert done.returncode == 0, done.stderr


def test_real_5xx_drive_the_seeded_alarm_to_alarm_and_back_to_ok(live):
    aws = LocalEnvironment(region=REGION, endpoint=stack.endpoint(live.st))
    cw = aws.client("cloudwatch")
    lb_arn = live.elb.describe_load_balancers(Names=["live"])["LoadBalancers"][0]["LoadBalancerArn"]
    seed._alarms(
        aws, SimpleNamespace(alarms=("live-5xx",)), lb_arn
    )  # the seeded alarm: Sum of target 5xx on the LB, 10 s
    lb_dims = [{"Name": "LoadBalancer", "Value": lb_arn.split(":loadbalancer/")[1]}]
    tg_dims = lb_dims + [{"Name": "TargetGroup", "Value": live.tgs["blue"].split(":")[-1]}]
    victim, _ = live.instances("blue")
    assert wait_alarm(cw, "live-5xx", "OK", timeout=5)
    time.sleep(1.5)  # counts of earlier tests are published before ``since``
    since = datetime.now(timezone.utc)
    fault = "mkdir -p /etc/systemd/system/web.service.d && printf '[Service]\\nEnvironment=WEBAPP_FAULT=root\\n' > /etc/systemd/system/web.service.d/fault.conf"
    restart_web(victim, fault)
    try:
        codes = [get(live.url + "/")[0] for _ in range(20)]  # bounded: 20 requests, 5 s timeout each
        assert codes.count(500) >= 3 and set(codes) <= {200, 500}, codes
        seen = wait_alarm(cw, "live-5xx", "ALARM", timeout=10)
        assert seen[0] == "OK", seen
        alarm = cw.describe_alarms(AlarmNames=["live-5xx"])["MetricAlarms"][0]
        assert alarm["StateReason"].startswith("Threshold Crossed")
        sums = [
            ("RequestCount", lb_dims),
            ("HTTPCode_Target_5XX_Count", lb_dims),
            ("HTTPCode_Target_5XX_Count", tg_dims),
            ("HTTPCode_ELB_5XX_Count", lb_dims),
            ("RequestCount", tg_dims),
        ]
        want = [20, codes.count(500), codes.count(500), 0, 20]
        # Counts reach CloudWatch at the stack's next tick (0.5 s): poll until they match (a count over is never matched).
        assert poll(lambda: [lb_sum(cw, metric, dims, since) for metric, dims in sums], want, timeout=10) == want
    finally:
        restart_web(victim, "rm -f /etc/systemd/system/web.service.d/fault.conf")
    codes = [get(live.url + "/")[0] for _ in range(10)]
    assert codes == [200] * 10, codes
    # No 5xx for a whole period: back to OK (period 10 s, a tick every 0.5 s).
    seen = wait_alarm(cw, "live-5xx", "OK", timeout=seed.ALARM_PERIOD + 5)
    assert seen[0] == "ALARM", seen
    live.wait_health("blue", lambda h: all(s == "healthy" for s, _ in h.values()), timeout=40)


def test_an_alarm_set_by_hand_holds_for_one_period(live):
    aws = LocalEnvironment(region=REGION, endpoint=stack.endpoint(live.st))
    cw = aws.client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName="live-custom",
        Namespace="Rodeo/Test",
        MetricName="Errors",
        Statistic="Sum",
        Period=10,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )
    cw.set_alarm_state(AlarmName="live-custom", StateValue="ALARM", StateReason="test")
    set_at = cw.describe_alarms(AlarmNames=["live-custom"])["MetricAlarms"][0]["StateUpdatedTimestamp"]
    assert wait_alarm(cw, "live-custom", "OK", timeout=15) == ["ALARM", "OK"]
    ok_at = cw.describe_alarms(AlarmNames=["live-custom"])["MetricAlarms"][0]["StateUpdatedTimestamp"]
    assert ok_at - set_at >= timedelta(seconds=10)  # as on AWS: until the next evaluation, one period (10 s) later
    cw.put_metric_data(
        Namespace="Rodeo/Test", MetricData=[{"MetricName": "Errors", "Value": 1}]
    )  # anyone's data counts
    wait_alarm(cw, "live-custom", "ALARM", timeout=5)


# Run inside an instance: the role's name from IMDSv2, then botocore's own credential chain (the metadata service)
# against the endpoint in its environment: who it is, and what its role may not do.
CALLER = """
import json, os, urllib.request
import botocore.exceptions, botocore.session
def call(method, url, headers):
    with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers), timeout=5) as resp:
        return resp.read().decode()
token = {"X-aws-ec2-metadata-token": call("PUT", "http://169.254.169.254/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})}
base = "http://169.254.169.254/latest/meta-data/"
region = call("GET", base + "placement/region", token)
role = call("GET", base + "iam/security-credentials/", token).split()[0]
session = botocore.session.get_session()
endpoint = os.environ["AWS_ENDPOINT_URL"]
arn = session.create_client("sts", region_name=region, endpoint_url=endpoint).get_caller_identity()["Arn"]
params = session.create_client("ssm", region_name=region, endpoint_url=endpoint).get_parameters(Names=["/live/x"])["InvalidParameters"]
try:
    session.create_client("ec2", region_name=region, endpoint_url=endpoint).describe_instances()
    refused = None
except botocore.exceptions.ClientError as exc:
    refused = exc.response["Error"]["Code"]
print(json.dumps({"region": region, "role": role, "arn": arn, "params": params, "refused": refused}))
"""


def test_an_instance_finds_its_metadata_and_the_aws_endpoint(live):
    iid = live.instances("blue")[0]
    token = in_instance(
        iid,
        "curl",
        "-sf",
        "-X",
        "PUT",
        "-H",
        "X-aws-ec2-metadata-token-ttl-seconds: 60",
        "http://169.254.169.254/latest/api/token",
    )
    assert token.returncode == 0 and len(token.stdout) > 20, token.stderr
    asked = in_instance(
        iid,
        "curl",
        "-sf",
        "-H",
        f"X-aws-ec2-metadata-token: {token.stdout}",
        "http://169.254.169.254/latest/meta-data/instance-id",
    )
    assert asked.stdout == iid
    user_data = in_instance(
        iid, "curl", "-sf", "-H", f"X-aws-ec2-metadata-token: {token.stdout}", "http://169.254.169.254/latest/user-data"
    )
    assert user_data.stdout == USER_DATA
    refused = in_instance(
        iid,
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "X-aws-ec2-metadata-token: forged",
        "http://169.254.169.254/latest/meta-data/instance-id",
    )
    assert refused.stdout == "401"
    # Services get the endpoint from the stack's systemd drop-in; login shells from profile.d.
    web_pid = in_instance(iid, "systemctl", "show", "-p", "MainPID", "--value", "web").stdout.strip()
    environ = in_instance(iid, "cat", f"/proc/{web_pid}/environ").stdout.split("\0")
    endpoint = next(e.split("=", 1)[1] for e in environ if e.startswith("AWS_ENDPOINT_URL="))
    assert endpoint.startswith("http://127.0.0.1:")
    moto_api = in_instance(iid, "curl", "-sf", "-o", "/dev/null", "-w", "%{http_code}", endpoint + "/moto-api/")
    assert moto_api.stdout == "200"
    done = in_instance(iid, "env", f"AWS_ENDPOINT_URL={endpoint}", "python3", "-c", CALLER)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found == {
        "region": REGION,
        "role": ROLE,
        "arn": f"arn:aws:sts::123456789012:assumed-role/{ROLE}/{iid}",
        "params": ["/live/x"],
        "refused": "UnauthorizedOperation",
    }  # its role's rights, and only those


def app_log(iid: str) -> list[str]:
    """The lines the app inside ``iid`` has logged."""
    return in_instance(iid, "journalctl", "-u", "web", "-o", "cat").stdout.splitlines()


def requests_served(iid: str) -> int:
    """How many requests (health checks included) the app inside ``iid`` has logged."""
    return sum(1 for line in app_log(iid) if '"GET ' in line)


def test_an_instance_whose_groups_do_not_admit_the_load_balancer_times_out_and_gets_no_request(live):
    vpc = live.ec2.describe_vpcs(Filters=seed.SEEDED)["Vpcs"][0]["VpcId"]
    default = live.ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]["GroupId"]
    (iid,) = [
        i["InstanceId"]
        for i in live.ec2.run_instances(
            ImageId=live.amis["blue"], MinCount=1, MaxCount=1, SubnetId=live.subnets[0], SecurityGroupIds=[default]
        )["Instances"]
    ]
    live.elb.register_targets(TargetGroupArn=live.tgs["blue"], Targets=[{"Id": iid}])
    opened = [
        {
            "IpProtocol": "tcp",
            "FromPort": 8080,
            "ToPort": 8080,
            "UserIdGroupPairs": [{"GroupId": seed.load_balancer_group(live.ec2, vpc)}],
        }
    ]
    authorized = False
    try:
        seen = live.wait_health("blue", lambda h: h.get(iid) == ("unhealthy", "Target.Timeout"), timeout=90)
        assert [h[iid][0] for h in seen if iid in h and h[iid][0] == "healthy"] == [], seen
        assert versions(live.url, 20) == {live.blue: 20}
        assert in_instance(iid, "systemctl", "is-active", "web").stdout.strip() == "active"
        assert requests_served(iid) == 0  # not a health check, not a request
        # The group opened to the load balancer's: the stack reads the rule again and the target turns healthy.
        live.ec2.authorize_security_group_ingress(GroupId=default, IpPermissions=opened)
        authorized = True
        live.wait_health("blue", lambda h: h.get(iid, ("",))[0] == "healthy", timeout=40)
        assert requests_served(iid) > 0
    finally:
        live.elb.deregister_targets(TargetGroupArn=live.tgs["blue"], Targets=[{"Id": iid}])
        live.ec2.terminate_instances(InstanceIds=[iid])
        if authorized:
            live.ec2.revoke_security_group_ingress(GroupId=default, IpPermissions=opened)
    live.wait_health("blue", lambda h: iid not in h, timeout=DRAIN_SECONDS + 20)


def aws_call(iid: str, service: str) -> subprocess.CompletedProcess:
    """A request signed for ``service`` to the AWS endpoint inside ``iid``, given up after 3 s (curl's 28: timed out)."""
    auth = f"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261205/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    return in_instance(
        iid, "curl", "-s", "-o", "/dev/null", "-m", "3", "-w", "%{http_code}", "-H", auth, "http://127.0.0.1:4566/"
    )


def test_an_instance_reaches_aws_only_through_a_nat_gateway_or_a_vpc_endpoint(live):
    vpc = live.ec2.describe_vpcs(Filters=seed.SEEDED)["Vpcs"][0]["VpcId"]
    zone = live.ec2.describe_subnets(SubnetIds=[live.subnets[0]])["Subnets"][0]["AvailabilityZone"]
    # A private subnet without a route out: the VPC's main route table has only the local route.
    bare = live.ec2.create_subnet(VpcId=vpc, CidrBlock="10.80.240.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
    (iid,) = [
        i["InstanceId"]
        for i in live.ec2.run_instances(
            ImageId=live.amis["blue"], MinCount=1, MaxCount=1, SubnetId=bare, SecurityGroupIds=[seed.INSTANCE_SG]
        )["Instances"]
    ]
    endpoint = None
    try:
        deadline = time.monotonic() + 90
        while live.states([iid])[iid] != "running":
            assert time.monotonic() < deadline, live.states([iid])
            time.sleep(0.5)
        seeded = live.instances("blue")[0]  # the seeded shape: a private subnet with a NAT gateway
        assert aws_call(seeded, "ssm").returncode == 0
        assert aws_call(iid, "ssm").returncode == 28  # no route: the connection hangs, as on AWS
        assert (
            in_instance(
                iid, "curl", "-s", "-o", "/dev/null", "-m", "3", "http://169.254.169.254/latest/meta-data/"
            ).returncode
            == 0
        )
        endpoint = live.ec2.create_vpc_endpoint(
            VpcId=vpc,
            ServiceName=f"com.amazonaws.{REGION}.ssm",
            VpcEndpointType="Interface",
            SubnetIds=[bare],
            PrivateDnsEnabled=True,
        )["VpcEndpoint"]["VpcEndpointId"]
        deadline = time.monotonic() + 10  # the stack reads the endpoint at its next poll
        while (called := aws_call(iid, "ssm")).returncode != 0 and time.monotonic() < deadline:
            pass
        assert called.returncode == 0, called
        assert aws_call(iid, "logs").returncode == 28  # only the endpoint's service
    finally:
        live.ec2.terminate_instances(InstanceIds=[iid])
        if endpoint:
            live.ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])


def zones_of(live: Live, ids: list[str]) -> dict[str, str]:
    found = live.ec2.describe_instances(InstanceIds=ids)["Reservations"]
    return {i["InstanceId"]: i["Placement"]["AvailabilityZone"] for r in found for i in r["Instances"]}


def test_a_lost_zone_is_replaced_in_the_other_and_only_requests_before_the_checks_notice_fail(live):
    """A group over two zones, one instance in each; one zone goes dark under load (its instance frozen: running
    to EC2, answering nothing). The load balancer's checks time out, the group (ELB health checks) replaces it in
    the zone still up, and requests fail only while it fails over, no more than the checks' bound."""
    live.elb.modify_listener(ListenerArn=live.listener, DefaultActions=[live.forward(100, 0)])
    live.group("blue", 2)
    live.asg.update_auto_scaling_group(
        AutoScalingGroupName="live-blue", HealthCheckType="ELB", HealthCheckGracePeriod=0
    )
    live.wait_health("blue", lambda h: len(h) == 2 and all(s == "healthy" for s, _ in h.values()), timeout=90)
    before = zones_of(live, live.instances("blue"))
    assert len(set(before.values())) == 2, before  # one a zone
    dead, lost = sorted(before.items())[0]
    rate, workers = 40, 8
    # Sent to it after it froze (at the stack's next tick) and before its second failed check took it out: the local
    # load balancer (HAProxy) starts a server's next check an interval after the last one ended, and gives a check
    # up after its timeout. Half of the requests go to it then; each hangs until the load's timeout.
    noticed = POLL + 2 * (CHECK["HealthCheckIntervalSeconds"] + CHECK["HealthCheckTimeoutSeconds"])
    with Load(live.url, rate=rate, workers=workers, max_seconds=180) as load:
        time.sleep(2)
        froze = time.time()
        assert stack.fail_zone(live.st, REGION, lost) == {lost}  # invoke local.fail-zone
        try:
            deadline = time.monotonic() + 120  # its checks (12 s), a boot and two passing checks (about 20 s)
            while time.monotonic() < deadline:
                ids = live.instances("blue")
                health = live.health("blue")
                if dead not in ids and len(ids) == 2 and all(health.get(i, ("",))[0] == "healthy" for i in ids):
                    break
                time.sleep(0.5)
            back = time.time()
            time.sleep(2)
        finally:
            assert stack.fail_zone(live.st, REGION, lost, back=True) == set()
    after = zones_of(live, live.instances("blue"))
    assert dead not in after and len(after) == 2 and set(after.values()) == {z for z in before.values() if z != lost}
    failed = [s for s in load.samples if s.status != 200]
    bound = math.ceil(rate * 0.5 * noticed) + workers
    assert len(failed) <= bound, (len(failed), bound, failed[:5])
    # Failures only while the zone was failing over: from a request still being answered when it froze until the
    # group was whole again. Most come before the checks notice (froze + noticed); bench/failover.py prints how
    # many come after, when the dead target is removed after its deregistration delay (a short burst of 503s,
    # seen in 2 of 4 runs there, cause not found yet).
    assert all(froze - 1 <= s.wall <= back for s in failed), [(s.wall - froze, s.status) for s in failed][:10]
    assert [s for s in load.samples if s.wall >= back and s.status != 200] == []
    assert live.states([dead]) == {dead: "terminated"} or live.states([dead]) == {dead: "shutting-down"}


def test_an_image_that_cannot_boot_says_why(live, tmp_path):
    empty = tmp_path / "empty-layer"
    empty.mkdir()
    ami = live._ami("not-an-os", [empty])
    iid = live.ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=live.subnets[0])["Instances"][0][
        "InstanceId"
    ]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        inst = live.ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        if inst["State"]["Name"] == "terminated":
            break
        time.sleep(0.5)
    assert inst["State"]["Name"] == "terminated"
    assert inst["StateReason"]["Code"] == "Server.InternalError"
    assert "did not boot" in inst["StateReason"]["Message"]


def test_down_leaves_nothing(live):
    assert leftovers(live.st)["processes"]
    assert stack.down(live.st)
    assert leftovers(live.st) == {"processes": [], "mounts": [], "netns": [], "cgroups": []}
    assert not live.st.live_dir.exists() and not live.st.run_dir.exists()
