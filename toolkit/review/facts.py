"""What exists in AWS for a review app, read once into values the plan decides from.

``gather`` reads one review app: its target group, its rule on the parent's
listener (found by its host, or by the target group it forwards to) and the
priorities the listener's other rules hold, its launch template's newest
version, its Auto Scaling group with each instance's launch (the
``rodeo:review-version`` tag the group propagates: the template version it
was pinned to when the instance started), its config overrides in SSM and its
record. ``existing`` finds every review app of the environment: by record,
by group tag and by rule host, so one a killed ``up`` left half made is found too.
Only reads happen here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from toolkit.aws import error_code
from toolkit.config import Config
from toolkit.review import record
from toolkit.review.names import NAME_RE, Names

VERSION_TAG = "rodeo:review-version"  # on the group (propagated at launch): the launch template version it runs
OWNER_TAG = "rodeo:review-of"  # <app>/<env>, on every resource of a review app
NAME_TAG = "rodeo:review"  # the review app's name


@dataclass(frozen=True)
class RuleFact:
    """The review app's listener rule."""

    arn: str
    priority: int
    hosts: tuple[str, ...]
    target_groups: tuple[str, ...]  # ARNs it forwards to


@dataclass(frozen=True)
class TemplateFact:
    """The newest version of the review app's launch template."""

    version: int
    ami: str | None
    user_data: str | None
    instance_type: str | None


@dataclass(frozen=True)
class InstanceFact:
    """An instance of the review app's group."""

    id: str
    version: str  # the launch template version it was launched from ("": unknown)
    in_service: bool
    healthy: bool


@dataclass(frozen=True)
class GroupFact:
    """The review app's Auto Scaling group."""

    version: str  # the launch template version it is pinned to
    desired: int
    tag_version: str  # its rodeo:review-version tag now
    instances: tuple[InstanceFact, ...] = ()
    created: str = ""


@dataclass(frozen=True)
class Facts:
    """Everything of one review app that exists now (None, empty: absent)."""

    names: Names
    listener: str
    target_group: str | None = None
    rule: RuleFact | None = None
    taken: frozenset[int] = frozenset()  # priorities of the listener's other rules
    template: TemplateFact | None = None
    group: GroupFact | None = None
    overrides: dict[str, tuple[str, int]] = field(default_factory=dict, hash=False)  # key -> (value, version)
    record: record.Record | None = None

    @property
    def exists(self) -> bool:
        """True when any part of it exists."""
        parts = (self.target_group, self.rule, self.template, self.group, self.record)
        return any(p is not None for p in parts) or bool(self.overrides)


def gather(config: Config, aws: Any, names: Names, listener: str) -> Facts:
    """Read review app ``names`` (its rule on ``listener``, the parent's listener ARN)."""
    tg = _target_group(aws, names)
    rule, taken = _rules(aws, names, listener, tg)
    return Facts(
        names=names,
        listener=listener,
        target_group=tg,
        rule=rule,
        taken=taken,
        template=_template(aws, names),
        group=group_of(aws, names, tg),
        overrides=_overrides(aws, names),
        record=record.get(config, aws, names.name),
    )


def _target_group(aws: Any, names: Names) -> str | None:
    try:
        found = aws.client("elbv2").describe_target_groups(Names=[names.target_group])["TargetGroups"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "TargetGroupNotFound":
            raise
        return None
    return found[0]["TargetGroupArn"] if found else None


def listener_rules(aws: Any, listener: str) -> list[RuleFact]:
    """Every rule of ``listener`` but its default one."""
    out = []
    pages = aws.client("elbv2").get_paginator("describe_rules").paginate(ListenerArn=listener)
    for rule in (r for page in pages for r in page["Rules"] if not r.get("IsDefault")):
        hosts = tuple(
            v
            for c in rule.get("Conditions", [])
            if c.get("Field") == "host-header"
            for v in (c.get("HostHeaderConfig") or {}).get("Values") or c.get("Values") or []
        )
        groups: list[str] = []
        for action in rule.get("Actions", []):
            if action.get("Type") == "forward":
                groups += [t["TargetGroupArn"] for t in (action.get("ForwardConfig") or {}).get("TargetGroups", [])]
                groups += [action["TargetGroupArn"]] if action.get("TargetGroupArn") else []
        out.append(RuleFact(rule["RuleArn"], int(rule["Priority"]), hosts, tuple(dict.fromkeys(groups))))
    return out


def _rules(aws: Any, names: Names, listener: str, tg: str | None) -> tuple[RuleFact | None, frozenset[int]]:
    rules = listener_rules(aws, listener)
    own = next((r for r in rules if names.host in r.hosts or (tg and tg in r.target_groups)), None)
    return own, frozenset(r.priority for r in rules if r is not own)


def _template(aws: Any, names: Names) -> TemplateFact | None:
    try:
        found = aws.client("ec2").describe_launch_template_versions(
            LaunchTemplateName=names.group, Versions=["$Latest"]
        )["LaunchTemplateVersions"]
    except botocore.exceptions.ClientError as exc:
        if "NotFound" not in error_code(exc):
            raise
        return None
    if not found:
        return None
    data = found[0]["LaunchTemplateData"]
    return TemplateFact(
        int(found[0]["VersionNumber"]), data.get("ImageId"), data.get("UserData"), data.get("InstanceType")
    )


def group_of(aws: Any, names: Names, tg: str | None) -> GroupFact | None:
    """The review app's group now, each instance with its launch and its health in target group ``tg``."""
    groups = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[names.group])[
        "AutoScalingGroups"
    ]
    if not groups:
        return None
    group = groups[0]
    tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
    members = [i for i in group.get("Instances", []) if i["LifecycleState"] not in ("Terminating", "Terminated")]
    launched = _launched_versions(aws, [i["InstanceId"] for i in members])
    healthy = healthy_in(aws, tg)
    return GroupFact(
        version=str((group.get("LaunchTemplate") or {}).get("Version", "")),
        desired=int(group["DesiredCapacity"]),
        tag_version=tags.get(VERSION_TAG, ""),
        instances=tuple(
            InstanceFact(
                i["InstanceId"],
                launched.get(i["InstanceId"], ""),
                i["LifecycleState"] == "InService",
                i["InstanceId"] in healthy,
            )
            for i in members
        ),
        created=str(group.get("CreatedTime", "")),
    )


def _launched_versions(aws: Any, ids: list[str]) -> dict[str, str]:
    """Instance id -> its rodeo:review-version tag (the template version its group ran when it launched)."""
    if not ids:
        return {}
    reservations = aws.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return {
        i["InstanceId"]: next((t["Value"] for t in i.get("Tags", []) if t["Key"] == VERSION_TAG), "")
        for r in reservations
        for i in r["Instances"]
    }


def healthy_in(aws: Any, tg: str | None) -> set[str]:
    """The ids of the targets target group ``tg`` calls healthy (none without one)."""
    if tg is None:
        return set()
    described = aws.client("elbv2").describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return {d["Target"]["Id"] for d in described if d["TargetHealth"]["State"] == "healthy"}


def _overrides(aws: Any, names: Names) -> dict[str, tuple[str, int]]:
    pages = aws.client("ssm").get_paginator("get_parameters_by_path").paginate(Path=names.parameter_path)
    return {p["Name"].rsplit("/", 1)[-1]: (p["Value"], int(p["Version"])) for page in pages for p in page["Parameters"]}


@dataclass(frozen=True)
class Found:
    """A review app found in the environment, and which of its parts were found by listing."""

    name: str
    record: record.Record | None = None
    group_created: str = ""  # its group's creation time ("" when no group)
    has_group: bool = False
    has_rule: bool = False


def existing(config: Config, aws: Any, listener: str, domain: str) -> list[Found]:
    """Every review app of the environment: by record, by its group's tag, by its rule's host; by name."""
    records = {r.name: r for r in record.every(config, aws)}
    owner = f"{config.app}/{config.env}"
    groups: dict[str, str] = {}
    pages = (
        aws.client("autoscaling")
        .get_paginator("describe_auto_scaling_groups")
        .paginate(Filters=[{"Name": f"tag:{OWNER_TAG}", "Values": [owner]}])
    )
    for group in (g for page in pages for g in page["AutoScalingGroups"]):
        name = next((t["Value"] for t in group.get("Tags", []) if t["Key"] == NAME_TAG), None)
        if name:
            groups[name] = str(group.get("CreatedTime", ""))
    suffix = f".{domain}"
    hosts = [h for r in listener_rules(aws, listener) for h in r.hosts if h.endswith(suffix)]
    ruled = {h[: -len(suffix)] for h in hosts if NAME_RE.match(h[: -len(suffix)])}
    return [
        Found(name, records.get(name), groups.get(name, ""), name in groups, name in ruled)
        for name in sorted(set(records) | set(groups) | ruled)
    ]
