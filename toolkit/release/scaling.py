"""Scaling by clock and load: ``scaling:`` of rodeo.yml on the slot group that holds traffic.

Each schedule becomes a scheduled action and each target becomes a target
tracking policy named ``rodeo-<name>`` on whichever slot group holds traffic:
the group names differ between releases, the action and policy names never
do. Only names starting with ``rodeo-`` are Rodeo's: anything else on a group
is left alone.

During a release the processes that act on a group by themselves
(``PROCESSES``) are suspended on both groups, so a schedule or a policy does
not resize a slot the release is sizing, and are resumed on every way out.
The group's ``rodeo:suspended`` tag says which ones a Rodeo release
suspended and since when (written before suspending, deleted after
resuming), so a run after a ``kill -9`` resumes exactly those, and never a
process a person suspended. AWS skips a scheduled action whose time passes
while ``ScheduledActions`` is suspended; on resuming, the latest one that
was skipped is applied (``catch_up``), as AWS would have done.

Facts (``read``) -> the AWS calls to make (``converge``, ``suspend_calls``,
``resume_calls``: pure) -> ``run``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import botocore.exceptions

from toolkit import cron
from toolkit.config import Config, Scaling
from toolkit.errors import ReleaseError
from toolkit.release.planner import SLOTS

PREFIX = "rodeo-"
# AlarmNotification: target tracking acts through CloudWatch alarms. ScheduledActions: the schedules.
# AZRebalance is left running: it launches before it terminates and keeps the group's size, so it
# does not fight a release; each process suspended is one more that must come back.
PROCESSES = ("AlarmNotification", "ScheduledActions")
TAG = "rodeo:suspended"
METRIC_TYPES = {"cpu": "ASGAverageCPUUtilization", "requests_per_target": "ALBRequestCountPerTarget"}
BATCH = 50  # AWS's limit per batch call


class ScalingFailed(ReleaseError):
    """AWS refused a change of a group's scaling configuration."""


@dataclass(frozen=True)
class Action:
    """A recurring scheduled action, as AWS holds it or as rodeo.yml wants it."""

    name: str
    recurrence: str | None
    time_zone: str | None = None
    min: int | None = None
    max: int | None = None
    desired: int | None = None

    def sizes(self) -> dict[str, int]:
        """The sizes it sets, by AWS's parameter names."""
        given = {"MinSize": self.min, "MaxSize": self.max, "DesiredCapacity": self.desired}
        return {k: v for k, v in given.items() if v is not None}


@dataclass(frozen=True)
class Policy:
    """A target tracking policy on a predefined metric."""

    name: str
    metric: str | None  # PredefinedMetricType
    target: float | None
    label: str | None = None  # ResourceLabel (ALBRequestCountPerTarget only)


@dataclass(frozen=True)
class Group:
    """One slot group's scaling as AWS holds it now."""

    slot: str
    name: str
    actions: tuple[Action, ...] = ()
    policies: tuple[Policy, ...] = ()
    suspended: tuple[str, ...] = ()  # every suspended process, whoever suspended it
    ours: tuple[str, ...] = ()  # the processes a Rodeo release suspended (the tag)
    since: str | None = None  # when it did (ISO 8601, UTC)
    tagged: bool = False

    def rodeo_names(self) -> list[str]:
        """Rodeo's scheduled actions and policies on the group."""
        return sorted(x.name for x in (*self.actions, *self.policies) if x.name.startswith(PREFIX))

    def to_dict(self) -> dict:
        """Plain data for ``invoke status --json``."""
        return {
            "group": self.name,
            "schedules": [a.name for a in self.actions],
            "policies": [p.name for p in self.policies],
            "suspended": list(self.suspended),
            "suspended_by_rodeo": [p for p in self.ours if p in self.suspended],
            "suspended_since": self.since,
        }


@dataclass(frozen=True)
class Call:
    """One AWS Auto Scaling call to make: its operation, arguments, and what it does in words."""

    op: str
    args: dict
    what: str

    def to_dict(self) -> dict:
        return asdict(self)


# --- the wanted configuration (pure) -------------------------------------------------


def wanted(scaling: Scaling | None, label: str | None) -> tuple[tuple[Action, ...], tuple[Policy, ...]]:
    """The actions and policies rodeo.yml asks for on a slot whose load balancer/target group label is ``label``."""
    if scaling is None:
        return (), ()
    actions = tuple(
        Action(PREFIX + s.name, cron.parse(s.cron).text, s.time_zone or scaling.time_zone, s.min, s.max, s.desired)
        for s in scaling.schedules
    )
    policies = tuple(
        Policy(
            PREFIX + t.name,
            METRIC_TYPES[t.metric],
            float(t.target),
            label if t.metric == "requests_per_target" else None,
        )
        for t in scaling.target_tracking
    )
    return actions, policies


def resource_label(listener_arn: str, target_group_arn: str) -> str:
    """``app/<lb-name>/<lb-id>/targetgroup/<tg-name>/<tg-id>``: what ALBRequestCountPerTarget counts."""
    lb = "/".join(listener_arn.split(":listener/", 1)[1].split("/")[:3])
    return f"{lb}/{target_group_arn.rsplit(':', 1)[1]}"


def _label(env: Any, slot: str) -> str:
    """The slot's ``resource_label``; none behind a Classic ELB (rodeo.yml cannot track requests there: ``config``)."""
    return "" if env.classic else resource_label(env.listener_arn, env.target_groups[slot])


def converge(group: Group, actions: tuple[Action, ...], policies: tuple[Policy, ...]) -> list[Call]:
    """The calls that make Rodeo's part of ``group`` exactly ``actions`` and ``policies`` (deletes first).

    An action or policy already as wanted gets no call; the names of others
    than Rodeo's are never touched.
    """
    name = group.name
    have_actions = {a.name: a for a in group.actions if a.name.startswith(PREFIX)}
    have_policies = {p.name: p for p in group.policies if p.name.startswith(PREFIX)}
    drop_actions = sorted(set(have_actions) - {a.name for a in actions})
    drop_policies = sorted(set(have_policies) - {p.name for p in policies})
    put_actions = [a for a in actions if _normal(have_actions.get(a.name)) != a]
    put_policies = [p for p in policies if have_policies.get(p.name) != p]
    calls = []
    for chunk in _chunks(drop_actions):
        calls.append(
            Call(
                "batch_delete_scheduled_action",
                {"AutoScalingGroupName": name, "ScheduledActionNames": chunk},
                f"remove scheduled action(s) {', '.join(chunk)} from {name}",
            )
        )
    calls += [
        Call("delete_policy", {"AutoScalingGroupName": name, "PolicyName": p}, f"remove policy {p} from {name}")
        for p in drop_policies
    ]
    for chunk in _chunks(put_actions):
        calls.append(
            Call(
                "batch_put_scheduled_update_group_action",
                {
                    "AutoScalingGroupName": name,
                    "ScheduledUpdateGroupActions": [
                        {
                            "ScheduledActionName": a.name,
                            "Recurrence": a.recurrence,
                            "TimeZone": a.time_zone,
                            **a.sizes(),
                        }
                        for a in chunk
                    ],
                },
                f"put scheduled action(s) {', '.join(a.name for a in chunk)} on {name}",
            )
        )
    for p in put_policies:
        spec = {"PredefinedMetricType": p.metric, **({"ResourceLabel": p.label} if p.label else {})}
        calls.append(
            Call(
                "put_scaling_policy",
                {
                    "AutoScalingGroupName": name,
                    "PolicyName": p.name,
                    "PolicyType": "TargetTrackingScaling",
                    "TargetTrackingConfiguration": {"PredefinedMetricSpecification": spec, "TargetValue": p.target},
                },
                f"put policy {p.name} on {name} ({p.metric} at {p.target:g})",
            )
        )
    return calls


def _normal(action: Action | None) -> Action | None:
    """``action`` with its recurrence as ``cron.parse`` writes it (None when absent or unreadable)."""
    if action is None or action.recurrence is None:
        return None
    try:
        return Action(
            action.name,
            cron.parse(action.recurrence).text,
            action.time_zone or "Etc/UTC",
            action.min,
            action.max,
            action.desired,
        )
    except cron.CronError:
        return None


def _chunks(items: list) -> list[list]:
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


# --- suspending and resuming (pure) ----------------------------------------------------


def suspend_calls(group: Group, since: str) -> list[Call]:
    """Tag the group, then suspend the PROCESSES that are not suspended yet.

    A process someone else suspended stays as it is and is not added to the
    tag (so it is never resumed by Rodeo). A tag left by an earlier run keeps
    its processes. ``since`` is when the suspension began: now, or when a
    killed release suspended either group (``earliest``), so that resuming
    catches up a schedule skipped while the other slot held the traffic.
    """
    fresh = [p for p in PROCESSES if p not in group.suspended]
    ours = sorted(set(group.ours) | set(fresh))
    if not fresh and group.tagged:
        return []
    value = f"{','.join(ours)} since {since}"
    calls = [
        Call(
            "create_or_update_tags",
            {
                "Tags": [
                    {
                        "ResourceId": group.name,
                        "ResourceType": "auto-scaling-group",
                        "Key": TAG,
                        "Value": value,
                        "PropagateAtLaunch": False,
                    }
                ]
            },
            f"mark {group.name}: {value}",
        )
    ]
    if fresh:
        calls.append(
            Call(
                "suspend_processes",
                {"AutoScalingGroupName": group.name, "ScalingProcesses": fresh},
                f"suspend {', '.join(fresh)} on {group.name}",
            )
        )
    return calls


def resume_calls(group: Group, now: datetime) -> list[Call]:
    """Resume what a Rodeo release suspended on ``group`` (catching up a skipped schedule first), then drop the tag."""
    ours = [p for p in group.ours if p in group.suspended]
    calls = []
    if "ScheduledActions" in ours and _when(group.since):
        due = catch_up(group.actions, _when(group.since), now)
        if due is not None:
            action, at = due
            calls.append(
                Call(
                    "update_auto_scaling_group",
                    {"AutoScalingGroupName": group.name, **action.sizes()},
                    f"apply {action.name} on {group.name} ({_sizes(action)}): it was due at {at:%Y-%m-%d %H:%M}Z while suspended",
                )
            )
    if ours:
        calls.append(
            Call(
                "resume_processes",
                {"AutoScalingGroupName": group.name, "ScalingProcesses": ours},
                f"resume {', '.join(ours)} on {group.name}",
            )
        )
    if group.tagged:
        calls.append(
            Call(
                "delete_tags",
                {"Tags": [{"ResourceId": group.name, "ResourceType": "auto-scaling-group", "Key": TAG}]},
                f"unmark {group.name}",
            )
        )
    return calls


def earliest(groups: Any, now: datetime) -> datetime:
    """When the oldest suspension by a Rodeo release of any of ``groups`` began; ``now`` when none is left."""
    return min((w for g in groups if (w := _when(g.since)) is not None), default=now)


def _when(stamp: str | None) -> datetime | None:
    try:
        when = datetime.fromisoformat(stamp) if stamp else None
    except ValueError:  # a tag edited by hand: resume without catching up
        return None
    return when if when is not None and when.tzinfo is not None else None


def catch_up(actions: tuple[Action, ...], since: datetime, now: datetime) -> tuple[Action, datetime] | None:
    """The recurring action that fired last in ``(since, now]``, and when; None when none did."""
    due = []
    for action in actions:
        try:
            parsed = cron.parse(action.recurrence) if action.recurrence else None
            at = parsed and cron.last_fire(parsed, action.time_zone or "Etc/UTC", since, now)
        except (cron.CronError, ValueError, KeyError):  # not an expression or zone Rodeo reads: AWS's own business
            continue
        if at:
            due.append((at, action))
    if not due:
        return None
    at, action = max(due, key=lambda d: d[0])
    return action, at


def _sizes(action: Action) -> str:
    return ", ".join(
        f"{k} {v}" for k, v in (("min", action.min), ("desired", action.desired), ("max", action.max)) if v is not None
    )


def describe(scaling: Scaling | None, plan: Any) -> list[str]:
    """What a release Plan does with the scaling of rodeo.yml, as lines for --plan."""
    if scaling is None:
        return []
    names = ", ".join(PREFIX + x.name for x in (*scaling.schedules, *scaling.target_tracking)) or "none"
    if plan.outcome == "unchanged":
        return [f"  scaling: {names} kept on {plan.new_slot}, none on {plan.old_slot}"]
    return [
        f"  scaling: {', '.join(PROCESSES)} suspended on both groups until the end (resumed on every way out)",
        f"  scaling: {names} onto {plan.new_slot} before its first weight, off {plan.old_slot} once it is drained",
    ]


# --- facts and execution ----------------------------------------------------------------


def read(
    env: Any, aws: Any, slots: tuple[str, ...] = SLOTS, processes: bool = True, configured: bool = True
) -> dict[str, Group]:
    """Slot -> its group's scaling as AWS holds it now.

    ``processes``: the suspended processes and Rodeo's tag (one call for all
    groups); ``configured``: the scheduled actions and policies (two calls a
    group). What is not asked for is left empty.
    """
    asg = aws.client("autoscaling")
    found = {}
    if processes:
        pages = asg.get_paginator("describe_auto_scaling_groups").paginate(
            AutoScalingGroupNames=[env.groups[s] for s in slots]
        )
        found = {g["AutoScalingGroupName"]: g for page in pages for g in page["AutoScalingGroups"]}
        absent = [env.groups[s] for s in slots if env.groups[s] not in found]
        if absent:
            raise ReleaseError(
                f"Auto Scaling group(s) {', '.join(absent)} do not exist", "create them with 'invoke setup --env ENV'"
            )
    out = {}
    for slot in slots:
        name = env.groups[slot]
        group = found.get(name, {})
        tag = next((t["Value"] for t in group.get("Tags", []) if t["Key"] == TAG), None)
        ours, _, since = (tag or "").partition(" since ")
        out[slot] = Group(
            slot=slot,
            name=name,
            actions=_actions(asg, name) if configured else (),
            policies=_policies(asg, name) if configured else (),
            suspended=tuple(sorted(p["ProcessName"] for p in group.get("SuspendedProcesses", []))),
            ours=tuple(p for p in ours.split(",") if p),
            since=since or None,
            tagged=tag is not None,
        )
    return out


def _actions(asg: Any, name: str) -> tuple[Action, ...]:
    pages = asg.get_paginator("describe_scheduled_actions").paginate(AutoScalingGroupName=name)
    return tuple(
        Action(
            a["ScheduledActionName"],
            a.get("Recurrence"),
            a.get("TimeZone"),
            a.get("MinSize"),
            a.get("MaxSize"),
            a.get("DesiredCapacity"),
        )
        for page in pages
        for a in page["ScheduledUpdateGroupActions"]
    )


def _policies(asg: Any, name: str) -> tuple[Policy, ...]:
    return tuple(
        _policy(p)
        for page in asg.get_paginator("describe_policies").paginate(AutoScalingGroupName=name)
        for p in page["ScalingPolicies"]
    )


def _policy(found: dict) -> Policy:
    config = found.get("TargetTrackingConfiguration") or {}
    spec = config.get("PredefinedMetricSpecification") or {}
    target = config.get("TargetValue")
    return Policy(
        found["PolicyName"],
        spec.get("PredefinedMetricType"),
        float(target) if target is not None else None,
        spec.get("ResourceLabel"),
    )


def run(aws: Any, calls: list[Call]) -> None:
    """Make ``calls`` in order; removing what is already gone is success, any other refusal ScalingFailed."""
    client = aws.client("autoscaling")
    for call in calls:
        try:
            answer = getattr(client, call.op)(**call.args)
        except botocore.exceptions.ClientError as exc:
            if call.op == "delete_policy" and "not found" in str(exc).lower():
                continue
            message = exc.response.get("Error", {}).get("Message") or str(exc)
            raise ScalingFailed(
                f"AWS refused to {call.what}: {message}",
                "fix scaling: in rodeo.yml (see the message), then run the command again",
            ) from exc
        failed = [
            f
            for f in answer.get("FailedScheduledUpdateGroupActions", []) + answer.get("FailedScheduledActions", [])
            if not (call.op.startswith("batch_delete") and "not found" in f.get("ErrorMessage", "").lower())
        ]
        if failed:
            reasons = "; ".join(
                f"{f['ScheduledActionName']}: {f.get('ErrorMessage') or f.get('ErrorCode')}" for f in failed
            )
            raise ScalingFailed(
                f"AWS refused to {call.what}: {reasons}",
                "fix scaling: in rodeo.yml (see the message), then run the command again",
            )


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# --- what the release, setup and status call ----------------------------------------------


def apply(
    config: Config, env: Any, aws: Any, slot: str, reporter: Any = None, before: Callable[[], None] = lambda: None
) -> list[str]:
    """Give ``slot``'s group exactly the scaling of rodeo.yml (none when it has no ``scaling:``); what changed, in words.

    ``before()`` runs before any change (the release checks its lock there).
    """
    group = read(env, aws, (slot,), processes=False)[slot]
    label = _label(env, slot)
    return _run(
        aws,
        converge(group, *wanted(config.scaling, label)),
        reporter,
        f"scaling of {slot} ({group.name}) as in rodeo.yml",
        before,
    )


def remove(env: Any, aws: Any, slot: str, reporter: Any = None, before: Callable[[], None] = lambda: None) -> list[str]:
    """Take Rodeo's scheduled actions and policies off ``slot``'s group; what changed. ``before()`` runs before any change."""
    group = read(env, aws, (slot,), processes=False)[slot]
    return _run(aws, converge(group, (), ()), reporter, f"scaling of {slot} ({group.name}) removed", before)


def suspend(config: Config, env: Any, aws: Any, reporter: Any, before: Callable[[], None] = lambda: None) -> None:
    """Suspend PROCESSES on both groups for a release, when anything on them could act (else no call at all)."""
    groups = read(env, aws)
    if config.scaling is None and not any(g.actions or g.policies for g in groups.values()):
        return
    for group in groups.values():
        theirs = [p for p in PROCESSES if p in group.suspended and p not in group.ours]
        if theirs:
            reporter.warn(
                f"{', '.join(theirs)} on {group.name} was suspended by someone else: left as it is, and not resumed by this release"
            )
    since = earliest(groups.values(), now_utc()).isoformat(timespec="seconds")
    _run(
        aws,
        [c for g in groups.values() for c in suspend_calls(g, since)],
        reporter,
        "scaling processes suspended for the release",
        before,
    )


def resume(env: Any, aws: Any, reporter: Any, before: Callable[[], None] = lambda: None) -> None:
    """Resume what a Rodeo release suspended on either group (this run's or a killed one's); ``before()`` runs first when there is any."""
    asg = aws.client("autoscaling")
    groups = read(env, aws, configured=False).values()
    # Only a group whose ScheduledActions Rodeo resumes needs its schedules (to catch one up).
    groups = [
        dataclasses.replace(g, actions=_actions(asg, g.name))
        if "ScheduledActions" in g.ours and "ScheduledActions" in g.suspended
        else g
        for g in groups
    ]
    calls = [c for g in groups for c in resume_calls(g, now_utc())]
    _run(aws, calls, reporter, "scaling processes resumed", before)


def _run(aws: Any, calls: list[Call], reporter: Any, label: str, before: Callable[[], None]) -> list[str]:
    if not calls:
        return []
    before()
    if reporter is None:
        run(aws, calls)
    else:
        with reporter.step(label) as line:
            run(aws, calls)
            line["result"] = "; ".join(c.what for c in calls)
    return [c.what for c in calls]


def slot_status(config: Config, env: Any, group: Group, holds_traffic: bool) -> dict:
    """``group.to_dict()``, plus ``differs``: the slot holds traffic and its scaling is not rodeo.yml's."""
    label = _label(env, group.slot)
    return dict(group.to_dict(), differs=holds_traffic and bool(converge(group, *wanted(config.scaling, label))))


def status_lines(info: dict, release_running: bool) -> list[str]:
    """A slot's scaling for ``invoke status``: what is on it, and loudly any suspended process and what to do."""
    parts = [f"{', '.join(info['schedules'])} (scheduled)"] if info["schedules"] else []
    parts += [f"{', '.join(info['policies'])} (target tracking)"] if info["policies"] else []
    out = [f"        scaling: {'; '.join(parts) or 'none'}"]
    if info.get("differs"):
        out.append("        ! scaling differs from rodeo.yml: 'invoke setup' applies it")
    ours, group = info["suspended_by_rodeo"], info["group"]
    if ours:
        why = (
            "by the release holding the lock; if that run died, the next 'invoke release' or 'invoke rollback' resumes them"
            if release_running
            else "by a Rodeo release that did not finish: the next 'invoke release' or 'invoke rollback' resumes them"
        )
        out.append(f"        ! SUSPENDED {', '.join(ours)} since {info['suspended_since']} {why}")
    theirs = [p for p in info["suspended"] if p not in ours]
    if theirs:
        out.append(
            f"        ! SUSPENDED {', '.join(theirs)}, not by Rodeo (Rodeo leaves them): when done, "
            f"'aws autoscaling resume-processes --auto-scaling-group-name {group} --scaling-processes {' '.join(theirs)}'"
        )
    return out
