"""Scaling by clock and load against a moto server: the config follows the traffic, and what a release suspends comes back on every way out.

The ways out: success, a gate's rollback, Ctrl-C (a KeyboardInterrupt at a
call, as SIGINT raises it), and kill -9 (a botocore hook after which every
call fails, as in test_crash) followed by ``release`` or by ``rollback``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from tests.integration.release.conftest import World, make_config
from tests.support.hooks import MUTATING, HookedAws
from toolkit import lock
from toolkit.config import Scaling, Schedule, TargetTracking
from toolkit.errors import ReleaseError
from toolkit.release import rollout, scaling, setup, slots
from toolkit.release import status as release_status
from toolkit.ui import Reporter

SCALING = Scaling(
    time_zone="Europe/Berlin",
    schedules=(
        Schedule("night", "0 22 * * *", min=2, max=4, desired=2),
        Schedule("peak", "0 9 * * MON-FRI", min=2, max=6, desired=4),
    ),
    target_tracking=(TargetTracking("cpu", "cpu", 50), TargetTracking("requests", "requests_per_target", 1000)),
)
NAMES = ["rodeo-cpu", "rodeo-night", "rodeo-peak", "rodeo-requests"]
BOTH = ["AlarmNotification", "ScheduledActions"]
# Scaling's changes count as writes too (a kill can land after any of them).
WRITES = (*MUTATING, "Suspend", "Resume", "Batch")


class Killed(Exception):
    """The simulated kill -9: from here on every call fails, so no ``finally`` can reach AWS."""


class Run(HookedAws):
    """Clients that log every write (operation, its parameters) and can die, or get Ctrl-C, after one."""

    HOOKS = (("before-parameter-build", "_log"), ("before-call", "_before"), ("after-call", "_after"))

    def __init__(self, world: World, stop_at=None, stop_with: type[BaseException] = Killed):
        super().__init__(region=world.aws.region, endpoint=world.aws.endpoint)
        self.stop_at, self.stop_with, self.dead = stop_at, stop_with, False
        self.log: list[tuple[str, dict]] = []

    def _log(self, model, params, **kwargs):
        if model.name.startswith(WRITES):
            self.log.append((model.name, dict(params)))

    def _before(self, model, **kwargs):
        if self.dead:
            raise Killed(f"process is gone ({model.name})")

    def _after(self, model, **kwargs):
        if model.name.startswith(WRITES) and self.stop_at and self.stop_at(self.log):
            self.stop_at = None
            self.dead = self.stop_with is Killed
            raise self.stop_with(f"stopped after {model.name}")

    def index(self, op: str, **params) -> int:
        """Where the first ``op`` whose parameters include ``params`` is in the log (ValueError when absent)."""
        return next(
            i
            for i, (name, args) in enumerate(self.log)
            if name == op and all(args.get(k) == v for k, v in params.items())
        )


def after(op: str, nth: int = 1, **params):
    """A stop point: right after the ``nth`` call of ``op`` with ``params``."""
    return lambda log: (
        sum(1 for name, args in log if name == op and all(args.get(k) == v for k, v in params.items())) == nth
    )


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    """moto answers at once: poll the groups every 0.2 s instead of every 2 s (same steps, less waiting)."""
    monkeypatch.setattr(slots, "POLL_SECONDS", 0.2)


@pytest.fixture
def scaled(moto_stack, project):
    """A seeded environment whose rodeo.yml has ``SCALING`` (``invoke setup`` put it on blue, the live slot)."""
    st, url = moto_stack

    def make(config=SCALING, **release):
        cfg = dataclasses.replace(make_config(project, **release), scaling=config)
        return World(cfg, url, st).seed()

    return make


def groups(world):
    return scaling.read(world.env, world.observer)


def settled(world, live: str):
    """Rodeo's scaling on ``live`` only, its names as ever, nothing suspended, no mark, lock free."""
    found = groups(world)
    idle = "blue" if live == "green" else "green"
    assert found[live].rodeo_names() == NAMES and found[idle].rodeo_names() == []
    requests = next(p for p in found[live].policies if p.name == "rodeo-requests")
    assert requests.label.endswith(world.env.target_groups[live].rsplit(":", 1)[1])
    assert [(g.suspended, g.tagged) for g in found.values()] == [((), False), ((), False)]
    assert lock.holder(world.cfg, world.aws) is None


def test_setup_puts_scaling_on_the_live_slot_and_a_release_moves_it(scaled):
    world = scaled()
    settled(world, "blue")
    assert setup.ensure(world.cfg, world.aws)["scaled"] == []  # a second setup changes nothing
    run = Run(world)
    result = rollout.release(world.cfg, run, ami=world.ami(), reporter=world.reporter)
    assert result.outcome == "released"
    settled(world, "green")
    blue, green = world.env.groups["blue"], world.env.groups["green"]
    first_weight = next(
        i
        for i, (op, args) in enumerate(run.log)
        if op == "ModifyListener"
        and any(
            t["Weight"] > 0 and t["TargetGroupArn"] == world.env.target_groups["green"]
            for t in args["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]
        )
    )
    assert run.index("SuspendProcesses", AutoScalingGroupName=blue) < run.index(
        "UpdateAutoScalingGroup", AutoScalingGroupName=green
    )
    assert run.index("CreateOrUpdateTags") < run.index("SuspendProcesses")
    assert run.index("BatchPutScheduledUpdateGroupAction", AutoScalingGroupName=green) < first_weight
    assert run.index("PutScalingPolicy", AutoScalingGroupName=green) < first_weight
    drained = run.index("UpdateAutoScalingGroup", AutoScalingGroupName=blue, DesiredCapacity=0)
    assert (
        drained
        < run.index("BatchDeleteScheduledAction", AutoScalingGroupName=blue)
        < run.index("ResumeProcesses")
        < run.index("DeleteTags")
    )
    assert run.index("DeletePolicy", AutoScalingGroupName=blue) > drained


@pytest.mark.parametrize(
    "had_it", [True, False], ids=["old slot had the scaling", "scaling added to rodeo.yml since setup"]
)
def test_a_gate_rollback_leaves_the_scaling_on_the_old_slot(scaled, had_it):
    world = scaled(alarmed=True)
    if not had_it:
        scaling.remove(world.env, world.aws, "blue", None)
    cw = world.aws.client("cloudwatch")

    def fire(log):
        if [op for op, _ in log].count("ModifyListener") == 1:
            cw.set_alarm_state(AlarmName=f"{world.cfg.app}-5xx", StateValue="ALARM", StateReason="test: 5xx spike")
        return False

    with pytest.raises(ReleaseError) as caught:
        rollout.release(world.cfg, Run(world, stop_at=fire), ami=world.ami(), reporter=world.reporter)
    assert caught.value.result.outcome == "rolled_back" and caught.value.result.steps == [10]
    assert world.state().weights == {"blue": 100, "green": 0}
    settled(world, "blue")


def test_ctrl_c_resumes_and_a_rerun_finishes(scaled):
    world = scaled()
    ami = world.ami()
    interrupted = Run(world, stop_at=after("ModifyListener", 2), stop_with=KeyboardInterrupt)  # at 50%
    with pytest.raises(KeyboardInterrupt):
        rollout.release(world.cfg, interrupted, ami=ami, reporter=world.reporter)
    assert world.state().weights == {"blue": 50, "green": 50}
    found = groups(world)
    assert [(g.suspended, g.tagged) for g in found.values()] == [((), False), ((), False)]
    assert found["blue"].rodeo_names() == NAMES == found["green"].rodeo_names()  # both hold traffic
    assert lock.holder(world.cfg, world.aws) is None
    assert rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter).outcome == "released"
    settled(world, "green")


# Where a kill -9 lands: right after the release suspended blue, at 50%, and after blue was scaled to 0 (before its scaling went).
KILLS = {
    "after suspending": lambda w: after("SuspendProcesses"),
    "at 50%": lambda w: after("ModifyListener", 2),
    "drained, scaling not yet removed": lambda w: after(
        "UpdateAutoScalingGroup", AutoScalingGroupName=w.env.groups["blue"], DesiredCapacity=0
    ),
}


def _kill(world, point: str) -> str:
    ami = world.ami()
    killed = Run(
        world, stop_at=KILLS[point](world) if point in KILLS else after("SuspendProcesses", AutoScalingGroupName=point)
    )
    with pytest.raises(Killed):
        rollout.release(world.cfg, killed, ami=ami, reporter=world.reporter)
    assert killed.dead
    assert any(g.ours and g.suspended for g in groups(world).values())  # left suspended: nothing could resume them
    return ami


@pytest.mark.parametrize("point", list(KILLS))
def test_kill_then_release_resumes(scaled, point):
    world = scaled()
    ami = _kill(world, point)
    result = rollout.release(world.cfg, world.aws, ami=ami, break_lock=True, reporter=world.reporter)
    assert result.outcome in ("released", "unchanged")
    assert world.state().weights == {"blue": 0, "green": 100}
    settled(world, "green")


@pytest.mark.parametrize("point", list(KILLS))
def test_kill_then_rollback_resumes(scaled, point):
    world = scaled()
    base = world.state().blue.ami
    _kill(world, point)
    rollout.rollback(world.cfg, world.aws, break_lock=True, reporter=world.reporter)
    after_ = world.state()
    assert after_.weights == {"blue": 100, "green": 0} and after_.blue.ami == base
    settled(world, "blue")


def test_a_schedule_skipped_while_suspended_is_applied_on_resuming(scaled):
    night = Scaling(schedules=(Schedule("night", "0 22 * * *", min=2, max=5, desired=3),))
    world = scaled(night)
    ami = _kill(world, "after suspending")
    blue = world.env.groups["blue"]
    day_ago = (datetime.now(timezone.utc) - timedelta(hours=25)).isoformat(timespec="seconds")
    world.aws.client("autoscaling").create_or_update_tags(
        Tags=[
            {
                "ResourceId": blue,
                "ResourceType": "auto-scaling-group",
                "Key": scaling.TAG,
                "Value": f"AlarmNotification,ScheduledActions since {day_ago}",
                "PropagateAtLaunch": False,
            }
        ]
    )
    rollout.release(world.cfg, world.aws, ami=ami, break_lock=True, reporter=world.reporter)
    green = world.aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[world.env.groups["green"]]
    )["AutoScalingGroups"][0]
    assert (green["MinSize"], green["DesiredCapacity"], green["MaxSize"]) == (
        2,
        3,
        5,
    )  # 22:00 UTC passed within the day
    assert [(g.suspended, g.tagged) for g in groups(world).values()] == [((), False), ((), False)]


def test_a_release_at_peak_starts_the_new_slot_at_the_live_size(scaled):
    world = scaled(None, health_timeout_seconds=10)
    world.aws.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName=world.env.groups["blue"], MinSize=2, MaxSize=6, DesiredCapacity=5
    )
    ami = world.ami()
    planned = rollout.release(world.cfg, world.aws, ami=ami, plan_only=True, reporter=world.reporter)
    assert planned.plan["capacity"] == {"min": 2, "max": 6, "desired": 5}
    assert any("blue runs 5 now" in n for n in planned.plan["notes"])
    result = rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    assert result.outcome == "released"
    after_ = world.state()
    assert (after_.green.desired, after_.green.healthy, after_.green.min_size, after_.green.max_size) == (5, 5, 2, 6)


def test_status_shows_scaling_and_who_suspended_what(scaled, capsys):
    world = scaled()
    asg = world.aws.client("autoscaling")
    asg.suspend_processes(
        AutoScalingGroupName=world.env.groups["green"], ScalingProcesses=["ScheduledActions"]
    )  # a person's
    ami = _kill(world, world.env.groups["green"])  # after suspending on both groups
    info = release_status.status(world.cfg, world.aws)
    green = info["slots"]["green"]["scaling"]
    assert green["suspended"] == BOTH and green["suspended_by_rodeo"] == ["AlarmNotification"]
    assert (
        info["slots"]["blue"]["scaling"]["schedules"] == ["rodeo-night", "rodeo-peak"]
        and not info["slots"]["blue"]["scaling"]["differs"]
    )
    text = "\n".join(release_status.lines(world.cfg, dict(info, lock=None)))
    assert "scaling: rodeo-night, rodeo-peak (scheduled); rodeo-cpu, rodeo-requests (target tracking)" in text
    assert (
        "SUSPENDED AlarmNotification, ScheduledActions since" in text
        and "by a Rodeo release that did not finish" in text
    )
    assert (
        f"SUSPENDED ScheduledActions, not by Rodeo (Rodeo leaves them): when done, 'aws autoscaling resume-processes --auto-scaling-group-name {world.env.groups['green']}"
        in text
    )

    rollout.release(world.cfg, world.aws, ami=ami, break_lock=True, reporter=Reporter(stderr=True))
    found = groups(world)
    assert (
        found["green"].suspended == ("ScheduledActions",) and not found["green"].tagged
    )  # the person's, left as it was
    assert found["blue"].suspended == () and found["green"].rodeo_names() == NAMES
    assert "suspended by someone else: left as it is" in capsys.readouterr().err


class Replacing(HookedAws):
    """Clients with which Auto Scaling replaces a green instance (as after a failed EC2 check) just before the first gate at 10%."""

    HOOKS = (("after-call", "_after"), ("before-call", "_before"))

    def __init__(self, world: World):
        super().__init__(region=world.aws.region, endpoint=world.aws.endpoint)
        self.world, self.weighted, self.seen = world, False, None

    def _after(self, model, **kwargs):
        self.weighted = self.weighted or model.name == "ModifyListener"

    def _before(self, model, **kwargs):
        if not self.weighted or self.seen is not None or model.name != "DescribeAutoScalingGroups":
            return
        asg, elbv2, green = (
            self.world.observer.client("autoscaling"),
            self.world.observer.client("elbv2"),
            self.world.env.groups["green"],
        )
        old, kept = [
            i["InstanceId"]
            for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=[green])["AutoScalingGroups"][0][
                "Instances"
            ]
        ]
        asg.terminate_instance_in_auto_scaling_group(InstanceId=old, ShouldDecrementDesiredCapacity=False)
        health = elbv2.describe_target_health(TargetGroupArn=self.world.env.target_groups["green"])[
            "TargetHealthDescriptions"
        ]
        by_id = {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in health}
        new = [i for i in by_id if i not in (old, kept)]
        self.seen = {"replaced": by_id[old], "kept": by_id[kept], "replacement": [by_id[i] for i in new]}


def test_an_instance_replaced_mid_release_is_initial_and_the_gate_rolls_back(scaled):
    """The replacement is not healthy yet: green, holding weight, has 1 healthy of 2, fewer than capacity.min, so the gate rolls back."""
    world = scaled(None)
    run = Replacing(world)
    with pytest.raises(ReleaseError) as caught:
        rollout.release(world.cfg, run, ami=world.ami(), reporter=world.reporter)
    assert run.seen == {"replaced": "unused", "kept": "healthy", "replacement": ["initial"]}
    result = caught.value.result
    assert (result.outcome, result.steps, result.reason) == (
        "rolled_back",
        [10],
        "green has 1 healthy of 2 instance(s), fewer than 2 (while watching)",
    )
    after_ = world.state()
    assert (after_.weights, after_.blue.healthy, after_.green.desired) == ({"blue": 100, "green": 0}, 2, 0)
