"""The AWS calls that carry a review app's plan out, one function per ``Step.action``; each safe to repeat.

A step finding its work done (a target group of that name, a rule deleted
already, a group gone) is success, so a rerun after a kill converges. Values
a step makes that later ones need (the target group's ARN, the launch
template version, the config overrides' parameter versions) live on ``Run``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import botocore.exceptions

from toolkit.aws import error_code, once_settled
from toolkit.config import Config
from toolkit.errors import ReviewError
from toolkit.release import slots
from toolkit.review import record
from toolkit.review.facts import NAME_TAG, OWNER_TAG, VERSION_TAG, Facts, group_of, healthy_in, listener_rules
from toolkit.review.names import Names, priority_for
from toolkit.review.plan import Step, Want, merged_refs, user_data
from toolkit.ui import Line

POLL_SECONDS = 2.0
DRAIN_SECONDS = 5  # a review app's deregistration delay: nobody waits on its in-flight requests
COPIED_CHECK = (  # what a review app's target group takes from the parent's blue one
    "Protocol",
    "ProtocolVersion",
    "Port",
    "VpcId",
    "HealthCheckProtocol",
    "HealthCheckPort",
    "HealthCheckEnabled",
    "HealthCheckPath",
    "HealthCheckIntervalSeconds",
    "HealthCheckTimeoutSeconds",
    "HealthyThresholdCount",
    "UnhealthyThresholdCount",
    "Matcher",
)


@dataclass
class Run:
    """One ``up`` or ``down`` being carried out."""

    config: Config
    aws: Any
    facts: Facts
    want: Want | None = None
    timeout: float = 600.0
    target_group: str | None = None
    version: int | None = None
    versions: dict[str, int] = field(default_factory=dict)  # config override -> its parameter version
    deployed: record.Record | None = None  # up: the record its last step writes

    def __post_init__(self) -> None:
        self.target_group = self.facts.target_group
        self.version = self.facts.template.version if self.facts.template else None
        self.versions = {key: version for key, (_, version) in self.facts.overrides.items()}

    @property
    def names(self) -> Names:
        return self.facts.names

    def tags(self, **more: str) -> list[dict]:
        """The tags of each of the review app's resources."""
        return [
            {"Key": k, "Value": v} for k, v in {OWNER_TAG: self.names.owner, NAME_TAG: self.names.name, **more}.items()
        ]

    def user_data(self) -> str:
        assert self.want is not None
        refs = merged_refs(self.want.parent_refs, self.names, self.versions)
        return user_data(self.names, self.want.parent_config, refs)

    def launch_data(self) -> dict:
        assert self.want is not None and self.want.ami is not None
        rel = slots.release_of(self.config)
        return slots.launch_data(
            self.want.ami, self.user_data(), rel.instance_profile, self.want.instance_type, rel.security_groups
        )


def run(steps: tuple[Step, ...], state: Run, line: Callable[[str], Any]) -> None:
    """Carry out ``steps`` in order; ``line(text)`` is a context manager for each step's progress line."""
    for step in steps:
        with line(step.line) as shown:
            ACTIONS[step.action](state, step, shown)


# --- up ----------------------------------------------------------------------------------


def put_parameter(state: Run, step: Step, shown: Line) -> None:
    key = step.args["key"]
    assert state.want is not None
    answer = state.aws.client("ssm").put_parameter(
        Name=f"{state.names.parameter_path}{key}",
        Value=state.want.overrides[key],
        Type="String",
        Overwrite=True,
        Tier="Standard",
    )
    state.versions[key] = int(answer["Version"])


def create_target_group(state: Run, step: Step, shown: Line) -> None:
    elbv2 = state.aws.client("elbv2")
    parent = elbv2.describe_target_groups(Names=[slots.release_of(state.config).slots["blue"]])["TargetGroups"][0]
    settings = {k: parent[k] for k in COPIED_CHECK if k in parent}
    try:
        made = elbv2.create_target_group(
            Name=state.names.target_group, TargetType="instance", Tags=state.tags(), **settings
        )["TargetGroups"][0]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "DuplicateTargetGroupName":
            raise
        made = elbv2.describe_target_groups(Names=[state.names.target_group])["TargetGroups"][0]
    state.target_group = made["TargetGroupArn"]
    elbv2.modify_target_group_attributes(
        TargetGroupArn=state.target_group,
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(DRAIN_SECONDS)}],
    )


def _rule_parts(state: Run) -> dict:
    return {
        "Conditions": [{"Field": "host-header", "HostHeaderConfig": {"Values": [state.names.host]}}],
        "Actions": [{"Type": "forward", "TargetGroupArn": state.target_group}],
    }


def create_rule(state: Run, step: Step, shown: Line) -> None:
    elbv2 = state.aws.client("elbv2")
    priority = step.args["priority"]
    for _ in range(3):  # another rule may take the priority meanwhile: choose again
        try:
            elbv2.create_rule(
                ListenerArn=state.facts.listener, Priority=priority, Tags=state.tags(), **_rule_parts(state)
            )
            return
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "PriorityInUse":
                raise
        taken = {r.priority for r in listener_rules(state.aws, state.facts.listener)}
        priority = priority_for(state.names.name, taken)
        shown.note(f"priority taken meanwhile: {priority}")
    raise ReviewError(
        f"listener rule priorities for {state.names.name} were taken three times in a row", "run review.up again"
    )


def modify_rule(state: Run, step: Step, shown: Line) -> None:
    state.aws.client("elbv2").modify_rule(RuleArn=step.args["arn"], **_rule_parts(state))


def create_template(state: Run, step: Step, shown: Line) -> None:
    try:
        state.aws.client("ec2").create_launch_template(
            LaunchTemplateName=state.names.group,
            VersionDescription=f"rodeo review app {state.names.name}",
            LaunchTemplateData=state.launch_data(),
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": state.tags()}],
        )
        state.version = 1
    except botocore.exceptions.ClientError as exc:
        if "AlreadyExists" not in error_code(exc):
            raise
        new_template_version(state, step, shown)  # a killed run made it: its version may hold another AMI


def new_template_version(state: Run, step: Step, shown: Line) -> None:
    made = state.aws.client("ec2").create_launch_template_version(
        LaunchTemplateName=state.names.group,
        VersionDescription=f"rodeo review app {state.names.name}: {state.want.ami if state.want else ''}",
        LaunchTemplateData=state.launch_data(),
    )
    state.version = int(made["LaunchTemplateVersion"]["VersionNumber"])
    shown["result"] = f"v{state.version}"


def _subnets(state: Run) -> str:
    rel = slots.release_of(state.config)
    if rel.subnets:
        return ",".join(rel.subnets)
    lb = state.aws.client("elbv2").describe_load_balancers(Names=[rel.load_balancer])["LoadBalancers"][0]
    return ",".join(z["SubnetId"] for z in lb["AvailabilityZones"])


def create_group(state: Run, step: Step, shown: Line) -> None:
    version = str(state.version)
    tags = [
        dict(t, PropagateAtLaunch=True)
        for t in state.tags(**{"rodeo:app": state.config.app, "rodeo:env": state.config.env, VERSION_TAG: version})
    ]
    try:
        once_settled(  # a template version made a moment ago may be refused
            lambda: state.aws.client("autoscaling").create_auto_scaling_group(
                AutoScalingGroupName=state.names.group,
                LaunchTemplate={"LaunchTemplateName": state.names.group, "Version": version},
                MinSize=0,
                MaxSize=2,
                DesiredCapacity=1,
                VPCZoneIdentifier=_subnets(state),
                TargetGroupARNs=[state.target_group],
                HealthCheckType="ELB",
                HealthCheckGracePeriod=60,
                Tags=tags,
            )
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "AlreadyExists":
            raise
        pin_group(state, Step("pin_group", step.line, {"desired": 1}), shown)  # a killed run made it


def pin_group(state: Run, step: Step, shown: Line) -> None:
    """The group's version tag first (new instances carry it), then its template version and size in one call."""
    asg = state.aws.client("autoscaling")
    version = str(state.version)
    asg.create_or_update_tags(
        Tags=[
            {
                "ResourceId": state.names.group,
                "ResourceType": "auto-scaling-group",
                "Key": VERSION_TAG,
                "Value": version,
                "PropagateAtLaunch": True,
            }
        ]
    )
    once_settled(
        lambda: asg.update_auto_scaling_group(
            AutoScalingGroupName=state.names.group,
            LaunchTemplate={"LaunchTemplateName": state.names.group, "Version": version},
            MinSize=0,
            MaxSize=max(2, step.args["desired"]),
            DesiredCapacity=step.args["desired"],
        )
    )


def wait_healthy(state: Run, step: Step, shown: Line) -> None:
    """Until an InService instance launched from the pinned version is healthy in the target group."""
    deadline, said = time.monotonic() + state.timeout, ""
    while True:
        group = group_of(state.aws, state.names, state.target_group)
        current = [i for i in (group.instances if group else ()) if i.version == str(state.version)]
        if any(i.in_service and i.healthy for i in current):
            shown["result"] = next(i.id for i in current if i.in_service and i.healthy)
            return
        now = f"{len(current)} instance(s) of v{state.version}, none healthy yet"
        if now != said:
            shown.note(now)
            said = now
        if time.monotonic() >= deadline:
            ids = ", ".join(i.id for i in current) or "none launched"
            raise ReviewError(
                f"review app {state.names.name}: no instance of launch template v{state.version} became healthy "
                f"within {state.timeout:g}s ({ids})",
                f"see why in its logs: 'invoke logs --instance ID --since 15m'; 'invoke review.down {state.names.name}' removes it",
            )
        time.sleep(POLL_SECONDS)


def terminate(state: Run, step: Step, shown: Line) -> None:
    """The older instances go (the group shrinks with them), then the wait until the load balancer sends them nothing.

    Auto Scaling deregisters an instance before it terminates it; once its
    target is no longer healthy (draining, then gone) no new request reaches
    it, so when ``up`` returns, the review app's URL answers from the new one.
    """
    asg = state.aws.client("autoscaling")
    old = set(step.args["instances"])
    for instance in sorted(old):
        try:
            asg.terminate_instance_in_auto_scaling_group(InstanceId=instance, ShouldDecrementDesiredCapacity=True)
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ValidationError":  # gone already (AWS: "Instance Id not found")
                raise
    deadline = time.monotonic() + DRAIN_SECONDS + state.timeout
    while old & healthy_in(state.aws, state.target_group) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS / 4)


def write_record(state: Run, step: Step, shown: Line) -> None:
    assert state.deployed is not None
    record.put(state.config, state.aws, state.deployed)


# --- down --------------------------------------------------------------------------------


def _gone(call: Callable[[], Any], *codes: str) -> None:
    """``call()``; an error whose code holds one of ``codes`` (not found) means it is done already."""
    try:
        call()
    except botocore.exceptions.ClientError as exc:
        if not any(code in error_code(exc) for code in codes):
            raise


def delete_rule(state: Run, step: Step, shown: Line) -> None:
    _gone(lambda: state.aws.client("elbv2").delete_rule(RuleArn=step.args["arn"]), "RuleNotFound")


def delete_group(state: Run, step: Step, shown: Line) -> None:
    _gone(
        lambda: state.aws.client("autoscaling").delete_auto_scaling_group(
            AutoScalingGroupName=state.names.group, ForceDelete=True
        ),
        "ValidationError",  # AWS: "AutoScalingGroup name not found"
    )


def wait_group_gone(state: Run, step: Step, shown: Line) -> None:
    """Until the group is gone and none of its instances runs (AWS deletes a group once its instances terminated)."""
    asg, ec2 = state.aws.client("autoscaling"), state.aws.client("ec2")
    deadline = time.monotonic() + state.timeout
    filters = [
        {"Name": "tag:aws:autoscaling:groupName", "Values": [state.names.group]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped", "shutting-down"]},
    ]
    while True:
        left = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[state.names.group])["AutoScalingGroups"]
        running = [
            i["InstanceId"] for r in ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]
        ]
        if not left and not running:
            return
        shown.note(f"{len(running)} instance(s) still running")
        if time.monotonic() >= deadline:
            raise ReviewError(
                f"{state.names.group} is still being deleted after {state.timeout:g}s ({', '.join(running) or 'no instance'})",
                f"run 'invoke review.down {state.names.name}' again: it carries on where this one stopped",
            )
        time.sleep(POLL_SECONDS)


def delete_target_group(state: Run, step: Step, shown: Line) -> None:
    once_settled(  # AWS may call it in use for a moment after its rule went
        lambda: _gone(
            lambda: state.aws.client("elbv2").delete_target_group(TargetGroupArn=step.args["arn"]),
            "TargetGroupNotFound",
        )
    )


def delete_template(state: Run, step: Step, shown: Line) -> None:
    _gone(
        lambda: state.aws.client("ec2").delete_launch_template(LaunchTemplateName=state.names.group),
        "NotFound",
    )


def delete_parameters(state: Run, step: Step, shown: Line) -> None:
    names = [f"{state.names.parameter_path}{key}" for key in step.args["keys"]]
    ssm = state.aws.client("ssm")
    for start in range(0, len(names), 10):  # DeleteParameters takes at most 10 names a call
        ssm.delete_parameters(Names=names[start : start + 10])


def delete_record(state: Run, step: Step, shown: Line) -> None:
    record.delete(state.config, state.aws, state.names.name)


ACTIONS: dict[str, Callable[[Run, Step, Line], None]] = {
    "put_parameter": put_parameter,
    "create_target_group": create_target_group,
    "create_rule": create_rule,
    "modify_rule": modify_rule,
    "create_template": create_template,
    "new_template_version": new_template_version,
    "create_group": create_group,
    "pin_group": pin_group,
    "wait_healthy": wait_healthy,
    "terminate": terminate,
    "record": write_record,
    "delete_rule": delete_rule,
    "delete_group": delete_group,
    "wait_group_gone": wait_group_gone,
    "delete_target_group": delete_target_group,
    "delete_template": delete_template,
    "delete_parameters": delete_parameters,
    "delete_record": delete_record,
}
