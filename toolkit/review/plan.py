"""What ``review.up`` and ``review.down`` do, decided from the facts alone: pure, printed by ``--plan``.

``plan_up`` makes whatever is missing and changes whatever differs, in an
order that is safe to stop at any step (a rerun gathers the facts again and
plans the rest): config overrides, target group, listener rule, launch
template version, then the group. A group that runs another template version
gets the new one beside the old (one more instance), waits until it is
healthy, and only then lets the old one go, so a review app that served keeps
serving while it is updated. ``plan_down`` removes each part that exists,
the rule first (no request reaches a group being deleted) and the target
group only after the group is gone. ``idle`` picks the review apps
``review.prune`` removes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from toolkit.release import userdata
from toolkit.review.facts import Facts, Found
from toolkit.review.names import Names, priority_for


@dataclass(frozen=True)
class Want:
    """What ``review.up`` asks for."""

    ami: str | None  # None: the AMI the bake will make (a --plan before the bake)
    instance_type: str
    parent_config: int  # the parent's config version whose vars it takes
    parent_refs: tuple[str, ...] = ()  # that version's parameters, "<name>:<version>"
    overrides: dict[str, str] = field(default_factory=dict, hash=False)  # --set KEY=VALUE given now


@dataclass(frozen=True)
class Step:
    """One change: ``action`` names the function of ``toolkit.review.steps`` that makes it."""

    action: str
    line: str
    args: dict = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Plan:
    """The steps of an ``up`` or a ``down`` of one review app, and what it comes to."""

    name: str
    outcome: str  # up: created, updated, unchanged; down: removed, absent
    steps: tuple[Step, ...] = ()
    version: int | None = None  # up: the launch template version its group runs
    refs: tuple[str, ...] = ()  # up: the config parameters its instances load

    def lines(self) -> list[str]:
        return [step.line for step in self.steps]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "steps": [{"action": s.action, "line": s.line} for s in self.steps],
        }


def config_key(ref: str) -> str:
    """``/rodeo/web/prod/GREETING:3`` -> ``GREETING``."""
    return ref.rsplit(":", 1)[0].rsplit("/", 1)[-1]


def merged_refs(parent: tuple[str, ...], names: Names, versions: dict[str, int]) -> tuple[str, ...]:
    """The parent's config parameters with each overridden key's own parameter in its place, by key."""
    refs = {config_key(r): r for r in parent}
    refs.update({key: f"{names.parameter_path}{key}:{version}" for key, version in versions.items()})
    return tuple(refs[key] for key in sorted(refs))


def user_data(names: Names, parent_config: int, refs: tuple[str, ...]) -> str:
    """The launch template's user data: the parent's app and environment, the review app, its config parameters."""
    doc = {
        "rodeo": {
            "app": names.app,
            "env": names.env,
            "review": names.name,
            "config_version": parent_config,
            "config_parameters": list(refs),
        }
    }
    return userdata.encode(doc)


def plan_up(facts: Facts, want: Want) -> Plan:
    """What makes review app ``facts.names`` run ``want``."""
    names = facts.names
    config_steps, versions = _config_steps(facts, want)
    refs = merged_refs(want.parent_refs, names, versions)
    template_steps, version = _template_steps(facts, want, user_data(names, want.parent_config, refs))
    steps = (
        config_steps
        + _network_steps(facts)
        + template_steps
        + _group_steps(facts, str(version))
        + [Step("record", f"record {names.name}: its ref, AMI and deploy time")]
    )
    changed = len(steps) > 1
    outcome = "created" if facts.record is None else "updated" if changed else "unchanged"
    return Plan(names.name, outcome, tuple(steps), version, refs)


def _config_steps(facts: Facts, want: Want) -> tuple[list[Step], dict[str, int]]:
    """Overrides to write (a value differs from its parameter's), and every override's parameter version then.

    A key set by an earlier ``up`` stays overridden. SSM numbers a parameter's
    versions 1, 2, ...: the version a write makes is the next one.
    """
    versions = {key: version for key, (_, version) in facts.overrides.items()}
    steps = []
    for key, value in sorted(want.overrides.items()):
        held = facts.overrides.get(key)
        if held is not None and held[0] == value:
            continue
        versions[key] = held[1] + 1 if held else 1
        what = "a new value" if held else "its own value over the parent's"
        steps.append(
            Step("put_parameter", f"config var {key}: {what} ({facts.names.parameter_path}{key})", {"key": key})
        )
    return steps, versions


def _network_steps(facts: Facts) -> list[Step]:
    """Its target group, then the rule sending its host there."""
    names = facts.names
    steps = []
    if facts.target_group is None:
        steps.append(Step("create_target_group", f"target group {names.target_group} (the parent's health check)"))
    rule = facts.rule
    if rule is None:
        priority = priority_for(names.name, facts.taken)
        steps.append(
            Step(
                "create_rule",
                f"listener rule {priority}: host {names.host} -> target group {names.target_group}",
                {"priority": priority},
            )
        )
    elif rule.hosts != (names.host,) or facts.target_group is None or rule.target_groups != (facts.target_group,):
        steps.append(
            Step(
                "modify_rule",
                f"listener rule {rule.priority}: host {names.host} -> target group {names.target_group}",
                {"arn": rule.arn},
            )
        )
    return steps


def _template_steps(facts: Facts, want: Want, data: str) -> tuple[list[Step], int]:
    """The launch template version to run (its newest when it already holds ``want``), and the step making it."""
    names, newest = facts.names, facts.template
    ami = want.ami or "the AMI the bake makes"
    if newest is None:
        return [Step("create_template", f"launch template {names.group} v1: {ami}", {"user_data": data})], 1
    why = []
    if want.ami is None or newest.ami != want.ami:
        why.append(f"{ami} (was {newest.ami})")
    if newest.user_data != data:
        why.append("config changed")
    if newest.instance_type != want.instance_type:
        why.append(f"instance type {want.instance_type}")
    if not why:
        return [], newest.version
    line = f"launch template {names.group} v{newest.version + 1}: {', '.join(why)}"
    return [Step("new_template_version", line, {"user_data": data})], newest.version + 1


def _group_steps(facts: Facts, version: str) -> list[Step]:
    """Create the group, or bring it to ``version`` with a new instance beside the old, then let the old ones go."""
    names, group = facts.names, facts.group
    wait = Step("wait_healthy", f"wait for an instance of v{version} healthy in {names.target_group}")
    if group is None:
        line = f"auto scaling group {names.group}: 1 instance of launch template v{version}"
        return [Step("create_group", line, {"version": version}), wait]
    current = [i for i in group.instances if i.version == version]
    stale = [i.id for i in group.instances if i.version != version]
    steps = []
    if group.version != version or group.tag_version != version or not current:
        desired = max(1, len(current)) + len(stale)
        beside = f", {desired} instance(s) until the old ones go" if stale else ""
        steps.append(
            Step(
                "pin_group",
                f"auto scaling group {names.group}: launch template v{version}{beside}",
                {"version": version, "desired": desired},
            )
        )
    if not any(i.in_service and i.healthy for i in current):
        steps.append(wait)
    if stale:
        steps.append(Step("terminate", f"terminate {', '.join(stale)} (an older launch)", {"instances": stale}))
    return steps


def plan_down(facts: Facts) -> Plan:
    """What removes review app ``facts.names``: each part that exists, the rule first."""
    names, steps = facts.names, []
    if facts.rule is not None:
        steps.append(
            Step("delete_rule", f"listener rule {facts.rule.priority} (host {names.host})", {"arn": facts.rule.arn})
        )
    if facts.group is not None:
        count = len(facts.group.instances)
        steps.append(Step("delete_group", f"auto scaling group {names.group} and its {count} instance(s)"))
        steps.append(Step("wait_group_gone", f"wait until {names.group} and its instances are gone"))
    if facts.target_group is not None:
        steps.append(Step("delete_target_group", f"target group {names.target_group}", {"arn": facts.target_group}))
    if facts.template is not None:
        steps.append(Step("delete_template", f"launch template {names.group}"))
    if facts.overrides:
        keys = sorted(facts.overrides)
        steps.append(Step("delete_parameters", f"config overrides {', '.join(keys)}", {"keys": keys}))
    if facts.record is not None:
        steps.append(Step("delete_record", f"record of {names.name}"))
    return Plan(names.name, "removed" if steps else "absent", tuple(steps))


def last_active(found: Found) -> str:
    """When review app ``found`` was last deployed (its record), else made (its group); "" when unknown."""
    if found.record is not None:
        return found.record.deployed_at or found.record.created_at
    return found.group_created


def idle(apps: list[Found], now: datetime, days: int) -> list[Found]:
    """The review apps not deployed for more than ``days`` days before ``now``, and those left half made with no date."""
    cutoff = now - timedelta(days=days)
    out = []
    for app in apps:
        when = last_active(app)
        if not when or _parse(when) < cutoff:
            out.append(app)
    return out


def _parse(when: str) -> datetime:
    found = datetime.fromisoformat(when.replace("Z", "+00:00"))
    return found if found.tzinfo else found.replace(tzinfo=timezone.utc)
