"""The live stack's EC2 Auto Scaling: scheduled actions and target tracking run on moto's groups.

Each controller tick, ``Scaler.step`` reads the stack's clock
(``toolkit.local.clock``), asks ``toolkit.local.autoscaler`` what every
group's scheduled actions did since the last tick, and carries it out in
moto: the minimum and maximum set on the group, the desired capacity through
moto's own ``set_desired_capacity`` (what SetDesiredCapacity and
UpdateAutoScalingGroup call), so the group launches instances or terminates
them as it does for a request. A terminated instance's target then drains
for its target group's deregistration delay before the controller stops it
(``toolkit.local.controller``), as an ASG with the target group attached
deregisters before it terminates. A one-time action that ran, and a
recurring one past its end time, leave the group.

Target tracking policies on ``ALBRequestCountPerTarget`` and
``ASGAverageCPUUtilization`` are decided by ``toolkit.local.tracking`` on the
``RequestCountPerTarget`` datapoints the monitor publishes
(``toolkit.local.monitor``) and the groups' ``CPUUtilization`` the controller
publishes from the instances' cgroups (``toolkit.local.cpu``), by this machine's clock, in
periods of ``RODEO_LOCAL_SCALING_PERIOD`` seconds (default 60, AWS's: a
smaller one is a local speed-up for tests and benches), aligned to the clock
as CloudWatch's are: a period counts once it has ended. After a group was
resized by a policy, it is not looked at again for one period, so the newest
period reflects the new capacity (AWS's alarms are evaluated once a period).
An instance warms up for the policy's ``EstimatedInstanceWarmup``, else the
group's ``DefaultCooldown``, counted from its launch.

ELB health checks (``Scaler.replace_unhealthy``, each tick): an instance of a
group with ``HealthCheckType: ELB``, in service past its grace period, that
a target group of its group reports ``unhealthy`` (the controller's answer
from HAProxy's checks) is terminated and replaced, as EC2 Auto Scaling does.

moto's parts this relies on (5.2.6, checked by
``tests/unit/local/test_scaler.py``): ``AutoScalingBackend.scheduled_actions``
(keyed by (group, name): ``toolkit.local.motoserver._scaling_names_per_group``),
``autoscaling_groups``, ``set_desired_capacity(group_name, desired_capacity)``,
and the fields of ``FakeScheduledAction`` and ``FakeAutoScalingGroup`` read
below.
"""

from __future__ import annotations

import logging
import math
import os
from datetime import datetime, timezone
from typing import Callable

from toolkit.local import autoscaler, classic, classicpatches, cpu, health, tracking
from toolkit.local.autoscaler import Scheduled, Sizes
from toolkit.local.motostate import LOCK, autoscaling_regions

PERIOD_ENV = "RODEO_LOCAL_SCALING_PERIOD"
NAMESPACE = "AWS/ApplicationELB"
log = logging.getLogger("rodeo.live")


def tracking_period() -> float:
    """Seconds per target tracking period: ``RODEO_LOCAL_SCALING_PERIOD``, else AWS's 60."""
    try:
        return max(0.5, float(os.environ.get(PERIOD_ENV, tracking.PERIOD)))
    except ValueError:
        return tracking.PERIOD


class Scaler:
    """The stack clock's last reading, the failures reported already, and when a policy last resized each group."""

    def __init__(self, period: float | None = None) -> None:
        self.last: datetime | None = None
        self.reported: set[tuple] = set()
        self.period = tracking_period() if period is None else period
        self.resized: dict[tuple, float] = {}  # (backend id, group) -> when a policy last resized it (epoch)

    def step(self, now: datetime, wall: float | None = None, samples: dict | None = None) -> None:
        """Run every group's scheduled actions due in (last reading, ``now``] (the stack's clock; the first reading
        only starts it), then its target tracking policies on ``samples`` (the monitor's datapoints) at ``wall``."""
        self._schedules(now)
        if wall is not None and samples is not None:
            with LOCK:
                for backend in autoscaling_regions():
                    self._track(backend, wall, samples)

    def replace_unhealthy(
        self,
        wall: float,
        health_of: Callable[[str, str], tuple | None],
        classic_health_of: Callable[[str, str], tuple | None] | None = None,
    ) -> list[str]:
        """Terminate and replace every instance ``to_replace`` names, in every group; their ids.

        moto's TerminateInstanceInAutoScalingGroup without decrementing: the
        group launches the replacement (in the zone with the fewest), and the
        controller drains the old target for its deregistration delay before
        the instance stops, as an ASG attached to its target group does.
        """
        replaced = []
        with LOCK:
            for backend in autoscaling_regions():
                for group in list(backend.autoscaling_groups.values()):
                    for iid in to_replace(group, wall, health_of, classic_health_of):
                        log.info("%s: %s is unhealthy in its load balancer: terminated and replaced", group.name, iid)
                        backend.terminate_instance(iid, should_decrement=False)
                        replaced.append(iid)
        return replaced

    def _schedules(self, now: datetime) -> None:
        since, self.last = self.last, now
        if since is None or now <= since:  # a clock moved back fires nothing until it passes times not yet seen
            if since is not None and now < since:
                self.last = since
            return
        with LOCK:  # reads and changes moto's groups between two requests
            for backend in autoscaling_regions():
                self._run(backend, since, now)

    def _run(self, backend, since: datetime, now: datetime) -> None:
        by_group: dict[str, list] = {}
        for key, action in list(backend.scheduled_actions.items()):
            try:
                read = scheduled_of(action)
            except ValueError as exc:  # a time moto took and AWS would have refused: say so once, leave it
                self._warn(action.auto_scaling_group_name, action.scheduled_action_name, now, str(exc))
                continue
            by_group.setdefault(action.auto_scaling_group_name, []).append((key, read))
        for name, found in by_group.items():
            group = backend.autoscaling_groups.get(name)
            if group is None:
                continue
            actions = [a for _, a in found]
            outcome = autoscaler.run(sizes_of(group), actions, since, now, suspended(group))
            self._say(name, outcome)
            apply(backend, group, outcome.sizes)
            for key, action in found:
                if action.name in outcome.finished:
                    backend.scheduled_actions.pop(key, None)

    def _track(self, backend, wall: float, samples: dict) -> None:
        by_group: dict[str, list] = {}
        for policy in list(backend.policies.values()):
            tracker = tracker_of(policy)
            if tracker is not None:
                by_group.setdefault(policy.auto_scaling_group_name, []).append(tracker)
        for name, trackers in by_group.items():
            group = backend.autoscaling_groups.get(name)
            key = (id(backend), name)
            if group is None or paused(group) or wall - self.resized.get(key, float("-inf")) < self.period:
                continue
            desired = int(group.desired_capacity or 0)
            end = math.floor(wall / self.period) * self.period  # the last whole period, aligned to the clock
            wants = []
            for tracker in trackers:
                window = metric(samples, tracker, end - tracking.LOW_PERIODS * self.period, backend)
                values = tracking.periods(window, end, self.period, tracking.LOW_PERIODS, average=tracker.averaged)
                warmed, warming = warm_counts(group, wall, tracker.warmup)
                wants.append(tracking.want(tracker, values, desired, warmed, warming))
            new = tracking.decide(wants, desired, int(group.min_size or 0), int(group.max_size or 0))
            if new is not None:
                log.info("target tracking of %s: desired %d -> %d (%s)", name, desired, new, wants)
                backend.set_desired_capacity(name, new)
                self.resized[key] = wall

    def _say(self, group: str, outcome: autoscaler.Outcome) -> None:
        for at, action in outcome.ran:
            log.info("scheduled action %s of %s (due %s) ran: %s", action, group, at.isoformat(), outcome.sizes)
        for at, action in outcome.skipped:
            log.info("scheduled action %s of %s (due %s) skipped: ScheduledActions is suspended", action, group, at)
        for at, action, why in outcome.failed:
            self._warn(group, action, at, why)

    def _warn(self, group: str, action: str, at: datetime, why: str) -> None:
        if (group, action, why) not in self.reported:
            self.reported.add((group, action, why))
            log.warning("scheduled action %s of %s (due %s) failed: %s", action, group, at.isoformat(), why)


def scheduled_of(action) -> Scheduled:
    """A moto ``FakeScheduledAction`` as ``toolkit.local.autoscaler`` reads it."""
    return Scheduled(
        name=action.scheduled_action_name,
        recurrence=action.recurrence or None,
        time_zone=action.time_zone or None,
        start=moment(action.start_time),
        end=moment(action.end_time),
        min=action.min_size,
        max=action.max_size,
        desired=action.desired_capacity,
    )


def moment(stamp) -> datetime | None:
    """A StartTime or EndTime as moto keeps it (the request's ISO 8601 text, UTC) as an aware datetime."""
    if not stamp:
        return None
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def sizes_of(group) -> Sizes:
    return Sizes(int(group.min_size or 0), int(group.max_size or 0), int(group.desired_capacity or 0))


HEALTH_PROCESSES = ("HealthCheck", "ReplaceUnhealthy")  # either suspended: no instance is replaced for its health


def to_replace(
    group,
    wall: float,
    health_of: Callable[[str, str], tuple | None],
    classic_health_of: Callable[[str, str], tuple | None] | None = None,
) -> list[str]:
    """The InService instances of ``group`` EC2 Auto Scaling's ELB health check replaces now.

    With ``HealthCheckType: ELB``, an instance in service for its group's
    ``HealthCheckGracePeriod`` or longer that a target group of the group
    reports ``unhealthy`` is terminated, then replaced
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/health-check-grace-period.html);
    not while ``HealthCheck`` or ``ReplaceUnhealthy`` is suspended. ``health_of(target group ARN, instance id)``
    is the live stack's answer (``Controller.health_of``). A target that is still ``initial``, ``draining``
    or ``unused`` (its group takes no traffic) is not unhealthy. Likewise an instance a Classic ELB of the group
    reports ``OutOfService`` (``classic_health_of(ELB ARN, instance id)``), unless it is deregistering or not
    registered, once the ELB's attachment is ``InService`` (made with the group, or one of its instances passed):
    "When the load balancer is in the InService state, Amazon EC2 Auto Scaling can terminate and replace any
    instances that are reported as unhealthy" (autoscaling DescribeLoadBalancers).
    """
    if (group.health_check_type or "EC2") != "ELB":
        return []
    if any(p["ProcessName"] in HEALTH_PROCESSES for p in group.suspended_processes):
        return []
    grace = float(group.health_check_grace_period or 0)
    active = [state.instance for state in group.active_instances()]
    elbs = _counted_elbs(group, [i.id for i in active], classic_health_of)
    found = []
    for instance in active:
        if wall - launched_at(instance) < grace:
            continue
        answers = [health_of(arn, instance.id) for arn in group.target_group_arns or []]
        failed = [classic_health_of(arn, instance.id) for arn in elbs] if classic_health_of else []
        if any(answer is not None and answer[0] == "unhealthy" for answer in answers) or any(
            answer is not None and answer[0] == "OutOfService" and answer not in NOT_FAILED for answer in failed
        ):
            found.append(instance.id)
    return found


NOT_FAILED = (health.DEREGISTERING, health.NOT_REGISTERED)  # OutOfService, but not for the instance's health


def _counted_elbs(group, ids: list[str], classic_health_of) -> list[str]:
    """The ARNs of the group's Classic ELBs whose attachment is InService (their health checks replace instances)."""
    if classic_health_of is None:
        return []
    found = []
    for name in list(group.load_balancer_names or []):
        arn = classic.arn_of(group.account_id, group.region, name)
        passed = any((classic_health_of(arn, iid) or ("",))[0] == "InService" for iid in ids)
        if classicpatches.made_with_group(group.autoscaling_backend, group.name, name) or passed:
            found.append(arn)
    return found


def launched_at(instance) -> float:
    """An instance's launch time as epoch seconds (moto keeps a datetime, at times a string)."""
    launched = instance.launch_time
    if isinstance(launched, str):
        launched = datetime.fromisoformat(launched.replace("Z", "+00:00"))
    if launched.tzinfo is None:
        launched = launched.replace(tzinfo=timezone.utc)
    return launched.timestamp()


def suspended(group) -> bool:
    """True while the group's ``ScheduledActions`` process is suspended."""
    return any(p["ProcessName"] == autoscaler.PROCESS for p in group.suspended_processes)


def apply(backend, group, sizes: Sizes) -> None:
    """Give ``group`` these sizes; a new desired capacity through moto's SetDesiredCapacity path (launches, terminations)."""
    group.min_size, group.max_size = sizes.min, sizes.max
    if sizes.desired != int(group.desired_capacity or 0):
        backend.set_desired_capacity(group.name, sizes.desired)


def tracker_of(policy) -> tracking.Tracker | None:
    """A moto target tracking policy on ``ALBRequestCountPerTarget`` or ``ASGAverageCPUUtilization`` as
    ``toolkit.local.tracking`` reads it, else None."""
    config = getattr(policy, "target_tracking_configuration", None)
    spec = getattr(config, "PredefinedMetricSpecification", None) or {}
    kind = spec.get("PredefinedMetricType")
    if policy.policy_type != "TargetTrackingScaling" or kind not in (tracking.METRIC, tracking.CPU):
        return None
    group = policy.autoscaling_backend.autoscaling_groups.get(policy.auto_scaling_group_name)
    warmup = policy.estimated_instance_warmup
    if warmup is None or warmup == "":
        warmup = group.default_cooldown if group is not None else 300
    return tracking.Tracker(
        name=policy.name,
        target=float(config.TargetValue),
        label=(spec.get("ResourceLabel") or "") if kind == tracking.METRIC else policy.auto_scaling_group_name,
        disable_scale_in=str(getattr(config, "DisableScaleIn", False)).lower() == "true",
        warmup=float(warmup),
        metric=kind,
    )


def metric(samples: dict, tracker: tracking.Tracker, since: float, backend) -> list[tuple[float, float]]:
    """The datapoints after ``since`` a tracker reads, as (epoch, value): the ``RequestCountPerTarget`` of the target
    group its ResourceLabel names, or its group's ``CPUUtilization`` (``toolkit.local.cpu``), in the account and
    region of its Auto Scaling ``backend`` (another region's group of that name is another's); the monitor's index
    (``toolkit.local.monitor.metric_key``) holds a day of them, in the order they came."""
    place = (backend.account_id, backend.region_name)
    if tracker.metric == tracking.CPU:
        key = (*place, cpu.NAMESPACE, cpu.METRIC, frozenset({("AutoScalingGroupName", tracker.label)}))
    else:
        lb, _, tg = tracker.label.partition("/targetgroup/")
        tg_dims = frozenset({("LoadBalancer", lb), ("TargetGroup", f"targetgroup/{tg}")})
        key = (*place, NAMESPACE, "RequestCountPerTarget", tg_dims)
    found = []
    for sample in reversed(samples.get(key, [])):
        if sample.time <= since:
            break
        found.append((sample.time, sample.total / (sample.count or 1) if tracker.averaged else sample.total))
    return found[::-1]


def warm_counts(group, wall: float, warmup: float) -> tuple[int, int]:
    """(instances in service past their warm-up, instances still in it), from their launch times."""
    warmed = warming = 0
    for state in list(group.instance_states):
        if state.lifecycle_state != "InService":
            continue
        if wall - launched_at(state.instance) >= warmup:
            warmed += 1
        else:
            warming += 1
    return warmed, warming


def paused(group) -> bool:
    """True while the group's ``AlarmNotification`` process is suspended (target tracking acts through alarms)."""
    return any(p["ProcessName"] == tracking.PROCESS for p in group.suspended_processes)
