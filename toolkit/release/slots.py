"""The two slots in AWS: read their State, and the steps that change them.

A slot is an Auto Scaling group and a target group of the same name (the
``release.slots`` value), both in the listener's weighted ``forward`` action.
Every mutating function here is safe to repeat: asking for the state AWS is
already in is success. Nothing here decides what to do; ``release.planner`` does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import botocore.exceptions

from toolkit.aws import error_code, once_settled
from toolkit.config import Config
from toolkit.errors import ReleaseError
from toolkit.release import classic, userdata
from toolkit.release.planner import SLOTS, SlotState, State

POLL_SECONDS = 2.0


def poll_pauses(first: float = POLL_SECONDS / 8) -> Iterator[float]:
    """Pauses between two polls: short at first, doubling up to ``POLL_SECONDS``.

    What is polled is often ready within a second (a target passing its checks,
    a group already drained): it is seen then, not a whole poll later. A slow
    wait (minutes on AWS) costs three more calls.
    """
    pause = first
    while True:
        yield pause
        pause = min(pause * 2, POLL_SECONDS)


@dataclass(frozen=True)
class Env:
    """The resolved resources of one environment's release."""

    listener_arn: str
    target_groups: dict[str, str]  # slot -> target group ARN
    groups: dict[str, str]  # slot -> Auto Scaling group name
    template: str  # launch template name
    action: dict = field(default_factory=dict, hash=False)  # the listener's forward action, as found
    classic: str = ""  # the Classic ELB's name (release.load_balancer_type: classic): no listener ARN, no target groups


def template_name(config: Config) -> str:
    """The launch template Rodeo owns for ``config.app``."""
    return f"rodeo-{config.app}"


def resolve(config: Config, aws: Any) -> Env:
    """Find the listener and target groups; ReleaseError naming whatever is absent."""
    rel = release_of(config)
    if rel.load_balancer_type == "classic":
        classic.describe(config, aws, rel.load_balancer, rel.listener_port, _infra_hint(config))
        return Env("", {}, {s: rel.slots[s] for s in SLOTS}, template_name(config), classic=rel.load_balancer)
    elbv2 = aws.client("elbv2")
    try:
        lb = elbv2.describe_load_balancers(Names=[rel.load_balancer])["LoadBalancers"][0]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "LoadBalancerNotFound":
            raise
        raise ReleaseError(
            f"load balancer {rel.load_balancer!r} does not exist in {config.region}", _infra_hint(config)
        ) from None
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    listener = next((listener for listener in listeners if listener["Port"] == rel.listener_port), None)
    if listener is None:
        ports = ", ".join(str(listener["Port"]) for listener in listeners) or "none"
        raise ReleaseError(
            f"load balancer {rel.load_balancer!r} has no listener on port {rel.listener_port} (ports: {ports})",
            _infra_hint(config),
        )
    arns = target_groups(config, aws)
    action = next((a for a in listener["DefaultActions"] if a["Type"] == "forward"), None)
    forwarded = {t["TargetGroupArn"] for t in (action or {}).get("ForwardConfig", {}).get("TargetGroups", [])}
    if action and action.get("TargetGroupArn"):
        forwarded.add(action["TargetGroupArn"])
    absent = [rel.slots[s] for s in SLOTS if arns[s] not in forwarded]
    if absent:
        raise ReleaseError(
            f"listener {rel.load_balancer}:{rel.listener_port} does not forward to {', '.join(absent)}",
            "give its default action a weighted forward to both slot target groups (blue 100, green 0)",
        )
    return Env(listener["ListenerArn"], arns, {s: rel.slots[s] for s in SLOTS}, template_name(config), action)


def target_groups(config: Config, aws: Any) -> dict[str, str]:
    """Slot -> target group ARN; ReleaseError naming every absent target group."""
    rel = release_of(config)
    elbv2 = aws.client("elbv2")
    found = {}
    for slot in SLOTS:
        try:
            found[slot] = elbv2.describe_target_groups(Names=[rel.slots[slot]])["TargetGroups"][0]["TargetGroupArn"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "TargetGroupNotFound":
                raise
    absent = [rel.slots[s] for s in SLOTS if s not in found]
    if absent:
        raise ReleaseError(f"target group(s) {', '.join(absent)} do not exist in {config.region}", _infra_hint(config))
    return found


def read(env: Env, aws: Any) -> State:
    """The State of both slots: weights, capacity, health and pinned AMI (and config version)."""
    weights = slot_weights(env, aws)
    groups = _groups(env, aws)
    versions = _versions(env, aws, [g["LaunchTemplate"]["Version"] for g in groups.values() if g.get("LaunchTemplate")])
    latest = versions.get("$Latest")
    slots = {}
    for slot in SLOTS:
        group = groups[slot]
        pinned = versions.get(group.get("LaunchTemplate", {}).get("Version", ""))
        in_service = _in_service(group)
        slots[slot] = SlotState(
            name=slot,
            weight=weights[slot],
            desired=group["DesiredCapacity"],
            instances=len(in_service),
            healthy=len(healthy_targets(env, aws, slot) & in_service),
            ami=pinned[1] if pinned else None,
            version=pinned[0] if pinned else None,
            drain_seconds=_drain_seconds(env, aws, slot),
            min_size=group["MinSize"],
            max_size=group["MaxSize"],
            config=pinned[2] if pinned else 0,
        )
    return State(
        slots["blue"],
        slots["green"],
        latest[0] if latest else None,
        latest[1] if latest else None,
        latest[2] if latest else 0,
    )


def health(env: Env, aws: Any, of: tuple[str, ...] = SLOTS) -> dict[str, tuple[int, int]]:
    """Slot -> (healthy, in service) now, for the slots ``of`` (default both); the cheap read the gates repeat."""
    groups = _groups(env, aws)
    out = {}
    for slot in of:
        in_service = _in_service(groups[slot])
        out[slot] = (len(healthy_targets(env, aws, slot) & in_service), len(in_service))
    return out


def slot_weights(env: Env, aws: Any) -> dict[str, int]:
    """Slot -> the share of traffic it is given (behind a Classic ELB: ``classic.weights``)."""
    if env.classic:
        return classic.weights(aws, env.groups, env.classic)
    weights = listener_weights(env, aws)
    return {slot: weights.get(env.target_groups[slot], 0) for slot in SLOTS}


def listener_weights(env: Env, aws: Any) -> dict[str, int]:
    """Target group ARN -> weight in the listener's forward action."""
    listener = aws.client("elbv2").describe_listeners(ListenerArns=[env.listener_arn])["Listeners"][0]
    action = next((a for a in listener["DefaultActions"] if a["Type"] == "forward"), {})
    groups = action.get("ForwardConfig", {}).get("TargetGroups")
    if groups:
        return {t["TargetGroupArn"]: int(t.get("Weight", 1)) for t in groups}
    return {action["TargetGroupArn"]: 100} if action.get("TargetGroupArn") else {}


def healthy_targets(env: Env, aws: Any, slot: str) -> set[str]:
    """Ids of the targets the slot's target group reports healthy.

    Behind a Classic ELB: the instances it reports InService once the slot's
    group is attached; before, the group's InService instances (EC2's checks:
    the ELB checks only what it was given)."""
    if env.classic:
        ids = set(instance_ids(env, aws, slot))
        attached = classic.states(aws, env.groups, env.classic)[slot] in classic.ATTACHED
        return classic.in_service(aws, env.classic, ids) if attached else ids
    described = aws.client("elbv2").describe_target_health(TargetGroupArn=env.target_groups[slot])[
        "TargetHealthDescriptions"
    ]
    return {d["Target"]["Id"] for d in described if d["TargetHealth"]["State"] == "healthy"}


def instance_ids(env: Env, aws: Any, slot: str) -> list[str]:
    """The slot's InService instance ids."""
    return sorted(_in_service(_groups(env, aws)[slot]))


def stickiness_seconds(env: Env) -> int:
    """How long the listener's forward action pins a client to the target group it chose (its target group stickiness); 0: off.

    Such a client keeps going to that group whatever the weights, even 0,
    until the duration ends: a group scaled to 0 before then answers it 503.
    https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html#forward-actions
    """
    config = env.action.get("ForwardConfig", {}).get("TargetGroupStickinessConfig") or {}
    return int(config.get("DurationSeconds") or 0) if config.get("Enabled") else 0


def set_weights(env: Env, aws: Any, weights: dict[str, int]) -> None:
    """Set both slots' weights in ONE modify_listener call, keeping the listener's other actions.

    ModifyListener replaces the whole action list, so the list sent is the
    listener's own as it is now (an ``authenticate-oidc``/``authenticate-cognito``
    before the forward, each with its Order) with only the forward's weights
    changed (its stickiness kept).
    """
    if env.classic:
        classic.set_weights(aws, env.groups, env.classic, weights)
        return
    elbv2 = aws.client("elbv2")
    actions = elbv2.describe_listeners(ListenerArns=[env.listener_arn])["Listeners"][0]["DefaultActions"]
    elbv2.modify_listener(
        ListenerArn=env.listener_arn, DefaultActions=weighted_actions(actions, env.target_groups, weights)
    )


def weighted_actions(actions: list[dict], target_groups: dict[str, str], weights: dict[str, int]) -> list[dict]:
    """The listener's ``actions`` for ModifyListener with the forward's weights set to ``weights`` (slot -> weight).

    Other actions are kept as they are, in their order; an OIDC action keeps
    its client secret (``UseExistingClientSecret``: DescribeListeners never
    returns it). A list without a forward gets one.
    """
    forward_config = {"TargetGroups": [{"TargetGroupArn": target_groups[s], "Weight": int(weights[s])} for s in SLOTS]}
    out, forwarded = [], False
    for action in actions:
        if action["Type"] == "forward" and not forwarded:
            forwarded = True
            stickiness = action.get("ForwardConfig", {}).get("TargetGroupStickinessConfig")
            forward = {
                "Type": "forward",
                "ForwardConfig": dict(
                    forward_config, **({"TargetGroupStickinessConfig": stickiness} if stickiness else {})
                ),
            }
            out.append(dict(forward, **({"Order": action["Order"]} if "Order" in action else {})))
        elif action["Type"] == "authenticate-oidc":
            config = {k: v for k, v in action["AuthenticateOidcConfig"].items() if k != "ClientSecret"}
            out.append(dict(action, AuthenticateOidcConfig=dict(config, UseExistingClientSecret=True)))
        else:
            out.append(action)
    return out if forwarded else out + [{"Type": "forward", "ForwardConfig": forward_config}]


def ensure_version(
    env: Env,
    aws: Any,
    ami: str,
    reuse: int | None,
    user_data: str | None = None,
    profile: str | None = None,
    instance_type: str | None = None,
    security_groups: tuple[str, ...] = (),
) -> int:
    """The launch template version to pin: ``reuse``, or a new one with ``ami``, ``user_data`` (base64), the
    instance ``profile`` (by name; none: the newest version's), ``instance_type`` and ``security_groups``
    (rodeo.yml's now: a new version copies the newest one, so a changed type or group must be given;
    no groups: the newest version's) and IMDSv2 required."""
    if reuse is not None:
        return reuse
    data = launch_data(ami, user_data, profile, instance_type, security_groups)
    created = once_settled(
        lambda: aws.client("ec2").create_launch_template_version(  # a group made a moment ago may not be found yet
            LaunchTemplateName=env.template,
            SourceVersion="$Latest",
            VersionDescription=f"rodeo release of {ami}",
            LaunchTemplateData=data,
        )
    )
    return int(created["LaunchTemplateVersion"]["VersionNumber"])


def launch_data(
    ami: str,
    user_data: str | None = None,
    profile: str | None = None,
    instance_type: str | None = None,
    security_groups: tuple[str, ...] = (),
) -> dict:
    """``LaunchTemplateData`` of the app's instances: ``ami`` with IMDSv2 required, and whichever of the rest is given."""
    data: dict = {"ImageId": ami, "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"}}
    if user_data:
        data["UserData"] = user_data
    if profile:
        data["IamInstanceProfile"] = {"Name": profile}
    if instance_type:
        data["InstanceType"] = instance_type
    if security_groups:
        data["SecurityGroupIds"] = list(security_groups)
    return data


def desired_of(env: Env, aws: Any, slot: str) -> int:
    """A slot's group's desired capacity now."""
    groups = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[env.groups[slot]])
    return groups["AutoScalingGroups"][0]["DesiredCapacity"]


def set_capacity(
    env: Env,
    aws: Any,
    slot: str,
    desired: int,
    minimum: int = 0,
    maximum: int | None = None,
    version: int | None = None,
) -> None:
    """Set a slot's group size (and, when given, its pinned launch template version)."""
    args: dict = {"AutoScalingGroupName": env.groups[slot], "MinSize": minimum, "DesiredCapacity": desired}
    if maximum is not None:
        args["MaxSize"] = max(maximum, desired)
    if version is not None:
        args["LaunchTemplate"] = {"LaunchTemplateName": env.template, "Version": str(version)}
    once_settled(
        lambda: aws.client("autoscaling").update_auto_scaling_group(**args)
    )  # a version made a moment ago may be refused


def wait_in_service(
    env: Env,
    aws: Any,
    slot: str,
    count: int,
    timeout: float,
    progress: Callable[[int, int], None] = lambda n, total: None,
    watch: Callable[[list[str]], None] = lambda ids: None,
) -> bool:
    """Wait until the slot has exactly ``count`` InService instances, all healthy in its target group.

    Polls the group and its target health (``poll_pauses``; no waiter
    exists for the group, and elbv2's ``target_in_service`` waiter would block
    the whole timeout); while some are not healthy yet, ``watch(ids)`` runs
    with the InService ids: it may raise to stop waiting (the release's crash
    check). False on timeout.
    """
    deadline = time.monotonic() + timeout
    seen, pauses = -1, poll_pauses()
    while True:
        ids = instance_ids(env, aws, slot)
        if len(ids) == count:
            if count == 0:
                return True
            healthy = len(healthy_targets(env, aws, slot) & set(ids))
            if healthy != seen:
                progress(healthy, count)
                seen = healthy
            if healthy == count:
                return True
        watch(ids)
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(next(pauses), max(deadline - time.monotonic(), 0.05)))


def wait_drained(env: Env, aws: Any, slot: str, timeout: float) -> bool:
    """Wait until the slot's group has no instances and none of them is still leaving the load balancer."""
    deadline, pauses = time.monotonic() + timeout, poll_pauses()
    while _groups(env, aws)[slot]["Instances"] or _draining(env, aws, slot):
        if time.monotonic() >= deadline:
            return False
        time.sleep(next(pauses))
    return True


def _draining(env: Env, aws: Any, slot: str) -> bool:
    """Whether a target of the slot's target group is draining (behind a Classic ELB: its group is ``Removing``)."""
    if env.classic:
        return classic.states(aws, env.groups, env.classic)[slot] == "Removing"
    described = aws.client("elbv2").describe_target_health(TargetGroupArn=env.target_groups[slot])
    return any(d["TargetHealth"]["State"] == "draining" for d in described["TargetHealthDescriptions"])


def _groups(env: Env, aws: Any) -> dict[str, dict]:
    names = [env.groups[s] for s in SLOTS]
    found = {}
    for page in (
        aws.client("autoscaling").get_paginator("describe_auto_scaling_groups").paginate(AutoScalingGroupNames=names)
    ):
        for group in page["AutoScalingGroups"]:
            found[group["AutoScalingGroupName"]] = group
    absent = [n for n in names if n not in found]
    if absent:
        raise ReleaseError(
            f"Auto Scaling group(s) {', '.join(absent)} do not exist", "create them with 'invoke setup --env ENV'"
        )
    return {s: found[env.groups[s]] for s in SLOTS}


def _in_service(group: dict) -> set[str]:
    return {i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] == "InService"}


def _versions(env: Env, aws: Any, wanted: list[str]) -> dict[str, tuple[int, str | None, int]]:
    """Version label ("3", "$Latest") -> (number, AMI, config version of its user data)."""
    labels = sorted(set(wanted) | {"$Latest"})
    try:
        found = aws.client("ec2").describe_launch_template_versions(LaunchTemplateName=env.template, Versions=labels)[
            "LaunchTemplateVersions"
        ]
    except botocore.exceptions.ClientError as exc:
        if "NotFound" not in error_code(exc):
            raise
        raise ReleaseError(
            f"launch template {env.template!r} does not exist", "create it with 'invoke setup --env ENV'"
        ) from None
    by_number = {
        str(v["VersionNumber"]): (
            int(v["VersionNumber"]),
            v["LaunchTemplateData"].get("ImageId"),
            _config_of(v["LaunchTemplateData"]),
        )
        for v in found
    }
    out = dict(by_number)
    if by_number:
        out["$Latest"] = by_number[max(by_number, key=int)]
    return out


def _config_of(data: dict) -> int:
    """The config version a launch template version's user data names (0: none, or not Rodeo's)."""
    doc = userdata.decode(data.get("UserData"))
    try:
        return int((doc or {}).get("rodeo", {}).get("config_version") or 0)
    except (TypeError, ValueError):
        return 0


def wait_detached(env: Env, aws: Any, slot: str, timeout: float) -> bool:
    """Until the slot's instances have left the load balancer, so that scaling in cuts no request; False on timeout.

    Only a Classic ELB's detached group waits (``classic``); a target group
    stays attached and drains each instance the group terminates.
    """
    return not env.classic or classic.wait_detached(aws, env.groups, env.classic, slot, timeout, poll_pauses())


def _drain_seconds(env: Env, aws: Any, slot: str) -> int:
    if env.classic:
        return classic.drain_seconds(aws, env.classic)
    attrs = aws.client("elbv2").describe_target_group_attributes(TargetGroupArn=env.target_groups[slot])["Attributes"]
    return int(next((a["Value"] for a in attrs if a["Key"] == "deregistration_delay.timeout_seconds"), 300))


def release_of(config: Config) -> Any:
    if config.release is None:
        raise ReleaseError(
            f"{config.path}: no 'release:' section",
            "add one: inventories/local/rodeo.yml has a release: section to start from",
        )
    return config.release


def _infra_hint(config: Config) -> str:
    return (
        f"create it with your infrastructure code (Rodeo owns only the launch template, slot groups and weights) or fix release: in rodeo.yml; "
        f"on the local stack, 'invoke local.up --env {config.env}' creates it"
    )
