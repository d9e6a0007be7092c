"""The live stack's scheduled actions carried out in moto (toolkit.local.scaler), on moto in this process, with a clock of the test's."""

from __future__ import annotations

import inspect
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, FakeScheduledAction

from toolkit.local import clock, cpu
from toolkit.local.alarms import Sample
from toolkit.local.scaler import Scaler

REGION = "us-east-1"
NIGHT = datetime(2026, 12, 5, 21, tzinfo=timezone.utc)  # 22:00 in Berlin
TICK = timedelta(seconds=0.5)


@pytest.fixture
def aws():
    with mock_aws():
        ec2, asg = boto3.client("ec2", REGION), boto3.client("autoscaling", REGION)
        ami = ec2.register_image(Name="scaler", RootDeviceName="/dev/xvda")["ImageId"]
        ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={"ImageId": ami})
        asg.create_auto_scaling_group(
            AutoScalingGroupName="web",
            LaunchTemplate={"LaunchTemplateName": "web"},
            MinSize=2,
            MaxSize=4,
            DesiredCapacity=3,
            AvailabilityZones=[f"{REGION}a"],
        )
        asg.put_scheduled_update_group_action(
            AutoScalingGroupName="web",
            ScheduledActionName="night",
            Recurrence="0 22 * * *",
            TimeZone="Europe/Berlin",
            MinSize=1,
            DesiredCapacity=1,
        )
        yield asg


def group(asg) -> tuple[int, int, int, int]:
    """(min, max, desired, instances in service)."""
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    return g["MinSize"], g["MaxSize"], g["DesiredCapacity"], len(g["Instances"])


def ticks(scaler: Scaler, start: datetime, end: datetime) -> None:
    at = start
    while at <= end:
        scaler.step(at)
        at += TICK


def test_night_scales_in_through_moto_at_its_time_and_not_before(aws):
    scaler = Scaler()
    ticks(scaler, NIGHT - 2 * TICK, NIGHT - TICK)
    assert group(aws) == (2, 4, 3, 3)
    scaler.step(NIGHT)
    assert group(aws) == (1, 4, 1, 1)


def test_the_first_reading_only_starts_the_clock(aws):
    scaler = Scaler()
    scaler.step(NIGHT + TICK)  # a stack started after 22:00 does not run tonight's action
    assert group(aws) == (2, 4, 3, 3)


def test_a_suspended_group_skips_its_action_and_does_not_run_it_late(aws):
    scaler = Scaler()
    scaler.step(NIGHT - TICK)
    aws.suspend_processes(AutoScalingGroupName="web", ScalingProcesses=["ScheduledActions"])
    scaler.step(NIGHT)
    aws.resume_processes(AutoScalingGroupName="web", ScalingProcesses=["ScheduledActions"])
    ticks(scaler, NIGHT + TICK, NIGHT + 4 * TICK)
    assert group(aws) == (2, 4, 3, 3)


def test_a_clock_moved_back_fires_nothing_twice(aws):
    scaler = Scaler()
    scaler.step(NIGHT - TICK)
    scaler.step(NIGHT)
    aws.update_auto_scaling_group(AutoScalingGroupName="web", MinSize=2, DesiredCapacity=3)
    scaler.step(NIGHT - 10 * TICK)
    ticks(scaler, NIGHT - TICK, NIGHT + TICK)
    assert group(aws) == (2, 4, 3, 3)


def test_a_one_time_action_runs_then_leaves_the_group(aws):
    start = NIGHT + timedelta(hours=1)
    aws.put_scheduled_update_group_action(
        AutoScalingGroupName="web", ScheduledActionName="once", StartTime=start, DesiredCapacity=4
    )
    scaler = Scaler()
    scaler.step(start - TICK)
    scaler.step(start)
    assert group(aws) == (2, 4, 4, 4)
    names = [a["ScheduledActionName"] for a in aws.describe_scheduled_actions()["ScheduledUpdateGroupActions"]]
    assert names == ["night"]


def test_the_offset_file_moves_only_the_stacks_clock(tmp_path):
    assert clock.offset(tmp_path) == 0.0
    clock.set_to(tmp_path, NIGHT)
    moved = clock.now(tmp_path)
    assert abs((moved - NIGHT).total_seconds()) < 5
    clock.reset(tmp_path)
    assert clock.offset(tmp_path) == 0.0
    with pytest.raises(ValueError):
        clock.set_to(tmp_path, NIGHT.replace(tzinfo=None))


LABEL = "app/web/0123/targetgroup/web-blue/4567"
ACCOUNT = "123456789012"  # moto's default account: the monitor's index keys each metric by account and region
METRIC = (
    ACCOUNT,
    REGION,
    "AWS/ApplicationELB",
    "RequestCountPerTarget",
    frozenset({("LoadBalancer", "app/web/0123"), ("TargetGroup", "targetgroup/web-blue/4567")}),
)
PERIOD = 2.0
# A period's end a day on: moto launches instances by the real clock, and a test may run long after this module
# was imported (a minute on was in the past by then in the full suite: every instance still warming).
WALL = (time.time() // 2 + 43_200) * 2.0


def track(asg, disable_scale_in: bool = False) -> None:
    asg.put_scaling_policy(
        AutoScalingGroupName="web",
        PolicyName="rodeo-requests",
        PolicyType="TargetTrackingScaling",
        EstimatedInstanceWarmup=0,
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ALBRequestCountPerTarget",
                "ResourceLabel": LABEL,
            },
            "TargetValue": 100.0,
            "DisableScaleIn": disable_scale_in,
        },
    )


def load(per_period: list[float], end: float = WALL) -> dict:
    """The monitor's index with one datapoint per period (oldest first), the last period ending at ``end``."""
    n = len(per_period)
    return {METRIC: [Sample(end - (n - 1 - i) * PERIOD - 0.1, v) for i, v in enumerate(per_period)]}


def test_a_period_counts_once_it_has_ended(aws):
    track(aws)
    scaler = Scaler(period=PERIOD)
    scaler.step(NIGHT - TICK, WALL + PERIOD - 0.5, load([50.0] * 12 + [250.0] * 3, end=WALL + PERIOD))
    assert group(aws) == (2, 4, 3, 3)  # the third high period has not ended
    scaler.step(NIGHT - TICK, WALL + PERIOD, load([50.0] * 12 + [250.0] * 3, end=WALL + PERIOD))
    assert group(aws) == (2, 4, 4, 4)


def test_target_tracking_scales_out_in_proportion_up_to_the_maximum(aws):
    track(aws)
    scaler = Scaler(period=PERIOD)
    scaler.step(NIGHT - TICK, WALL, load([50.0] * 12 + [250.0] * 2))  # two periods high: no alarm yet
    assert group(aws) == (2, 4, 3, 3)
    scaler.step(NIGHT - TICK, WALL, load([50.0] * 12 + [250.0] * 3))
    assert group(aws) == (2, 4, 4, 4)  # ceil(3 x 250 / 100) = 8, capped at the maximum


def test_target_tracking_scales_in_after_fifteen_low_periods_to_no_less_than_the_minimum(aws):
    track(aws)
    scaler = Scaler(period=PERIOD)
    scaler.step(NIGHT - TICK, WALL, load([20.0] * 15))
    assert group(aws) == (2, 4, 2, 2)  # ceil(3 x 20 / 100) = 1, the minimum is 2


def test_target_tracking_waits_while_alarm_notification_is_suspended_or_scale_in_is_disabled(aws):
    aws.suspend_processes(AutoScalingGroupName="web", ScalingProcesses=["AlarmNotification"])
    track(aws)
    scaler = Scaler(period=PERIOD)
    scaler.step(NIGHT - TICK, WALL, load([50.0] * 12 + [250.0] * 3))
    assert group(aws) == (2, 4, 3, 3)
    aws.resume_processes(AutoScalingGroupName="web", ScalingProcesses=["AlarmNotification"])
    track(aws, disable_scale_in=True)
    scaler.step(NIGHT - TICK, WALL, load([20.0] * 15))
    assert group(aws) == (2, 4, 3, 3)


def test_a_group_a_policy_resized_is_looked_at_again_after_one_period(aws):
    track(aws)
    scaler = Scaler(period=PERIOD)
    aws.update_auto_scaling_group(AutoScalingGroupName="web", MaxSize=10)
    scaler.step(NIGHT - TICK, WALL, load([50.0] * 12 + [150.0] * 3))
    assert group(aws)[2] == 5  # ceil(3 x 150 / 100)
    scaler.step(NIGHT - TICK, WALL + PERIOD / 2, load([50.0] * 12 + [150.0] * 3))  # no new period yet
    assert group(aws)[2] == 5
    scaler.step(NIGHT - TICK, WALL + PERIOD, load([50.0] * 11 + [150.0] * 4, end=WALL + PERIOD))
    assert group(aws)[2] == 8  # ceil(5 x 150 / 100)


def test_moto_still_has_what_the_scaler_reads_and_calls():
    assert list(inspect.signature(AutoScalingBackend.set_desired_capacity).parameters) == [
        "self",
        "group_name",
        "desired_capacity",
    ]
    action = inspect.signature(FakeScheduledAction.__init__).parameters
    assert {"desired_capacity", "max_size", "min_size", "start_time", "end_time", "recurrence", "time_zone"} <= set(
        action
    )
    assert isinstance(FakeAutoScalingGroup.suspended_processes, property)
    assert list(inspect.signature(AutoScalingBackend.terminate_instance).parameters) == [
        "self",
        "instance_id",
        "should_decrement",
    ]


def test_an_action_with_a_start_time_the_scaler_cannot_read_is_left_alone_and_the_others_run(aws):
    from moto.autoscaling.models import autoscaling_backends

    aws.put_scheduled_update_group_action(
        AutoScalingGroupName="web", ScheduledActionName="broken", StartTime=NIGHT + timedelta(days=1), DesiredCapacity=4
    )
    backend = autoscaling_backends["123456789012"][REGION]
    broken = next(a for a in backend.scheduled_actions.values() if a.scheduled_action_name == "broken")
    broken.start_time = "not a time"  # moto keeps the request's text as it came
    scaler = Scaler()
    scaler.step(NIGHT - TICK)
    scaler.step(NIGHT)
    assert group(aws) == (1, 4, 1, 1)
    assert broken in backend.scheduled_actions.values()


CPU_GROUP = (ACCOUNT, REGION, cpu.NAMESPACE, cpu.METRIC, frozenset({("AutoScalingGroupName", "web")}))


def track_cpu(asg, target: float = 50.0) -> None:
    asg.put_scaling_policy(
        AutoScalingGroupName="web",
        PolicyName="rodeo-cpu",
        PolicyType="TargetTrackingScaling",
        EstimatedInstanceWarmup=0,
        TargetTrackingConfiguration={
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
            "TargetValue": target,
        },
    )


def cpu_load(per_period: list[list[float]], end: float = WALL) -> dict:
    """The group's CPUUtilization with several datapoints per period (oldest period first): each period's Average counts."""
    n = len(per_period)
    return {
        CPU_GROUP: [
            Sample(end - (n - 1 - i) * PERIOD - 0.1 - j * 0.01, v)
            for i, values in enumerate(per_period)
            for j, v in enumerate(values)
        ]
    }


def test_cpu_target_tracking_reads_each_periods_average_of_the_groups_cpu(aws):
    track_cpu(aws)
    scaler = Scaler(period=PERIOD)
    # Three periods whose Sums are over 50 but whose Averages are not: no alarm.
    scaler.step(NIGHT - TICK, WALL, cpu_load([[40.0]] * 12 + [[40.0, 45.0]] * 3))
    assert group(aws) == (2, 4, 3, 3)
    # Averages of 70 for three periods: ceil(3 x 70 / 50) = 5, capped at the maximum.
    scaler.step(NIGHT - TICK, WALL, cpu_load([[40.0]] * 12 + [[60.0, 80.0]] * 3))
    assert group(aws) == (2, 4, 4, 4)


def test_cpu_target_tracking_scales_in_after_fifteen_low_periods(aws):
    track_cpu(aws)
    scaler = Scaler(period=PERIOD)
    scaler.step(NIGHT - TICK, WALL, cpu_load([[30.0]] * 15))
    assert group(aws) == (2, 4, 2, 2)  # ceil(3 x 30 / 50) = 2: under 0.9 x 50 for fifteen periods


def test_the_cpu_meter_finds_each_instances_group_and_its_types_vcpus(aws):
    from toolkit.local.motostate import groups_of_instances, vcpus_of

    ids = [i["InstanceId"] for i in aws.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]]
    assert {i: g for i, g in groups_of_instances().items() if i in ids} == {i: "web" for i in ids} and len(ids) == 3
    assert (vcpus_of("t3.micro"), vcpus_of("c5.4xlarge"), vcpus_of("no-such-type")) == (2, 16, 1)


def target_group() -> str:
    vpc = boto3.client("ec2", REGION).describe_vpcs()["Vpcs"][0]["VpcId"]
    elbv2 = boto3.client("elbv2", REGION)
    return elbv2.create_target_group(Name="web", Protocol="HTTP", Port=8080, VpcId=vpc)["TargetGroups"][0][
        "TargetGroupArn"
    ]


def elb_checked(asg, grace: int) -> str:
    """The group checked on ELB health after ``grace`` seconds, with a target group attached; its ARN."""
    arn = target_group()
    asg.update_auto_scaling_group(AutoScalingGroupName="web", HealthCheckType="ELB", HealthCheckGracePeriod=grace)
    asg.attach_load_balancer_target_groups(AutoScalingGroupName="web", TargetGroupARNs=[arn])
    return arn


def in_service(asg) -> list[str]:
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["web"])["AutoScalingGroups"][0]
    return sorted(i["InstanceId"] for i in g["Instances"])


def test_an_instance_its_target_group_finds_unhealthy_is_replaced_after_the_grace_period(aws):
    tg = elb_checked(aws, grace=60)
    first = in_service(aws)
    sick = first[0]

    def health(arn: str, iid: str):
        return ("unhealthy", "Target.Timeout", "") if (arn, iid) == (tg, sick) else ("healthy", "", "")

    scaler = Scaler()
    assert scaler.replace_unhealthy(time.time() + 30, health) == []  # within its grace period
    assert scaler.replace_unhealthy(time.time() + 61, health) == [sick]
    after = in_service(aws)
    assert len(after) == 3 and sick not in after and set(first) - {sick} <= set(after)  # terminated, and replaced
    assert scaler.replace_unhealthy(time.time() + 61, health) == []


@pytest.mark.parametrize("state", ["initial", "draining", "unused", "healthy"])
def test_a_target_not_unhealthy_keeps_its_instance(aws, state):
    elb_checked(aws, grace=0)
    assert Scaler().replace_unhealthy(time.time(), lambda arn, iid: (state, "", "")) == []


def test_no_instance_is_replaced_for_its_health_without_elb_checks_or_while_health_processes_are_suspended(aws):
    unhealthy = lambda arn, iid: ("unhealthy", "Target.Timeout", "")  # noqa: E731
    aws.attach_load_balancer_target_groups(AutoScalingGroupName="web", TargetGroupARNs=[target_group()])
    assert Scaler().replace_unhealthy(time.time(), unhealthy) == []  # HealthCheckType EC2
    aws.update_auto_scaling_group(AutoScalingGroupName="web", HealthCheckType="ELB", HealthCheckGracePeriod=0)
    for process in ("HealthCheck", "ReplaceUnhealthy"):
        aws.suspend_processes(AutoScalingGroupName="web", ScalingProcesses=[process])
        assert Scaler().replace_unhealthy(time.time(), unhealthy) == []
        aws.resume_processes(AutoScalingGroupName="web", ScalingProcesses=[process])
    assert len(Scaler().replace_unhealthy(time.time(), unhealthy)) == 3


def classic_group(names: list[str], ids: list[str], launched: float) -> SimpleNamespace:
    """A stand-in for moto's group: ELB checked, no grace, its instances launched at ``launched``."""
    stamp = datetime.fromtimestamp(launched, timezone.utc)
    states = [SimpleNamespace(instance=SimpleNamespace(id=i, launch_time=stamp)) for i in ids]
    return SimpleNamespace(
        name="web",
        health_check_type="ELB",
        suspended_processes=[],
        health_check_grace_period=60,
        active_instances=lambda: states,
        target_group_arns=[],
        load_balancer_names=names,
        account_id="123456789012",
        region=REGION,
        autoscaling_backend=object(),
    )


ELB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/seed"
FAILED = (
    "OutOfService",
    "Instance",
    "Instance has failed at least the UnhealthyThreshold number of health checks consecutively.",
)


@pytest.mark.parametrize(
    "sick_answer, replaced",
    [
        (FAILED, True),
        (("OutOfService", "ELB", "Instance registration is still in progress."), True),  # past the grace: out is out
        (("InService", "N/A", "Instance deregistration currently in progress."), False),
        (("OutOfService", "ELB", "Instance is not currently registered with the LoadBalancer."), False),
        (("InService", "N/A", "N/A"), False),
        (None, False),  # an instance the stack does not serve
    ],
)
def test_an_instance_its_classic_elb_reports_out_of_service_is_replaced_after_the_grace_period(sick_answer, replaced):
    from toolkit.local.scaler import to_replace

    now = time.time()
    group = classic_group(["seed"], ["i-sick", "i-well"], now - 61)
    answers = {(ELB, "i-sick"): sick_answer, (ELB, "i-well"): ("InService", "N/A", "N/A")}
    health = lambda arn, iid: answers.get((arn, iid))  # noqa: E731
    assert to_replace(group, now, lambda arn, iid: None, health) == (["i-sick"] if replaced else [])
    assert to_replace(group, now - 30, lambda arn, iid: None, health) == []  # within its grace period


def test_a_classic_elb_attached_later_replaces_nothing_until_one_of_the_groups_instances_passed(monkeypatch):
    """AWS: "When the load balancer is in the InService state, Amazon EC2 Auto Scaling can terminate and replace"."""
    from toolkit.local import classicpatches
    from toolkit.local.scaler import to_replace

    now = time.time()
    group = classic_group(["seed"], ["i-sick", "i-new"], now - 61)
    monkeypatch.setitem(classicpatches._VIA_ATTACH, (id(group.autoscaling_backend), "web", "seed"), True)
    answers = {
        (ELB, "i-sick"): FAILED,
        (ELB, "i-new"): ("OutOfService", "ELB", "Instance registration is still in progress."),
    }
    assert to_replace(group, now, lambda arn, iid: None, lambda arn, iid: answers.get((arn, iid))) == []  # Added
    answers[(ELB, "i-new")] = ("InService", "N/A", "N/A")
    assert to_replace(group, now, lambda arn, iid: None, lambda arn, iid: answers.get((arn, iid))) == ["i-sick"]
