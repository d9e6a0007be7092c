"""``invoke setup``: check what a release needs in AWS, and create the parts Rodeo owns.

The load balancer, listener and target groups belong to the team's
infrastructure code: ``ensure`` checks them and names anything absent (on
the local stack, ``toolkit.local.seed`` makes them first). Rodeo owns the
DynamoDB table (lock + ledger), the launch template ``rodeo-<app>``, the
two slot groups and the log group ``/rodeo/<app>/<env>`` (its retention
set from rodeo.yml each run); ``ensure`` creates those when missing. Every step is
idempotent.

AWS refuses an Auto Scaling group on a launch template without an AMI ("You
must use a valid fully-formed launch template"), so before the release image's
first verified AMI exists the template and groups wait: ``ensure`` says so in
one line, and the first run after a bake makes them (a template an older
Rodeo made without an AMI gets a version with one). A launch template version
just made may be refused for a few seconds: group creation retries it
(``toolkit.aws.once_settled``).
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from toolkit import regions, table
from toolkit.aws import error_code, once_settled
from toolkit.config import Config, Release
from toolkit.lineage import newest_verified
from toolkit.logs import group as log_group
from toolkit.release import scaling, slots
from toolkit.release.planner import SLOTS


def ensure_everywhere(config: Config, aws: Any) -> list[tuple[str, dict]]:
    """``ensure`` in every region of ``release.regions`` (``region:`` alone without it): (region, what it did) each."""
    return [(here.region, ensure(here, env)) for here, env in regions.each(config, aws)]


def ensure(config: Config, aws: Any, initial_ami: str | None = None, live_slot_capacity: int = 0) -> dict:
    """Make what Rodeo owns; check the rest.

    ``initial_ami`` is the launch template's first AMI (default: the newest
    verified AMI of the release image, if any); ``live_slot_capacity`` the size
    blue starts at when its group is made (0: nothing runs until the first
    release). Returns ``{"created": [...], "found": [...], "scaled": [...],
    "waiting": [...]}`` ("waiting": what needs an AMI first); ReleaseError
    names what is absent and cannot be created here.
    """
    rel = slots.release_of(config)
    created: list[str] = []
    if table.ensure_table(config, aws):
        created.append(f"dynamodb table {table.table_name(config)}")
    env = slots.resolve(config, aws)
    subnets = list(rel.subnets) or _load_balancer_subnets(aws, env, rel)
    version, made = _ensure_template(config, aws, rel, initial_ami)
    created += made
    waiting = (
        []
        if version is not None
        else [
            f"launch template {env.template} and slot groups {', '.join(env.groups[s] for s in SLOTS)}: image {rel.image!r} has no verified AMI yet "
            f"(AWS refuses a group on a template without one); run 'invoke bake --image {rel.image}', then 'invoke setup' again"
        ]
    )
    for slot in SLOTS if version is not None else ():
        desired = live_slot_capacity if slot == "blue" else 0
        if _ensure_group(config, aws, env, slot, subnets, desired, version):
            created.append(f"auto scaling group {env.groups[slot]}")
    found = [f"load balancer {rel.load_balancer}", f"listener :{rel.listener_port}"] + [
        f"target group {rel.slots[s]}" for s in SLOTS if not env.classic
    ]
    logs = f"log group {log_group.name(config)} (retention {config.logs.retention_days} days)"
    (created if log_group.ensure(config, aws) else found).append(logs)
    scaled = _ensure_scaling(config, aws, env) if version is not None else []
    return {"created": created, "found": found, "scaled": scaled, "waiting": waiting}


def _ensure_scaling(config: Config, aws: Any, env: slots.Env) -> list[str]:
    """rodeo.yml's scaling on each slot that holds traffic (the other slot is a release's business); what changed."""
    weights = slots.slot_weights(env, aws)
    changed: list[str] = []
    for slot in SLOTS:
        if weights[slot] > 0:
            changed += scaling.apply(config, env, aws, slot)
    return changed


def _load_balancer_subnets(aws: Any, env: slots.Env, rel: Release) -> list[str]:
    """The subnets of the release's load balancer: where the slot groups launch when rodeo.yml names none."""
    if env.classic:
        return aws.client("elb").describe_load_balancers(LoadBalancerNames=[env.classic])["LoadBalancerDescriptions"][
            0
        ]["Subnets"]
    lb = aws.client("elbv2").describe_load_balancers(Names=[rel.load_balancer])["LoadBalancers"][0]
    return [z["SubnetId"] for z in lb["AvailabilityZones"]]


def _ensure_template(config: Config, aws: Any, rel: Release, initial_ami: str | None) -> tuple[int | None, list[str]]:
    """(the template version new slot groups pin, what was created); (None, []) while no AMI is known.

    An existing template's newest version with an AMI is used; a template
    without any (made by an older Rodeo) gets a new version with the AMI.
    """
    ec2 = aws.client("ec2")
    name = slots.template_name(config)
    versions = _template_versions(ec2, name)
    with_ami = [v["VersionNumber"] for v in versions if v["LaunchTemplateData"].get("ImageId")]
    if with_ami:
        return max(with_ami), []
    ami = initial_ami or _initial_ami(config, aws, rel)
    if not ami:
        return None, []
    data: dict = {
        "ImageId": ami,
        "InstanceType": rel.instance_type,
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
    }
    if rel.security_groups:
        data["SecurityGroupIds"] = list(rel.security_groups)
    if rel.instance_profile:
        data["IamInstanceProfile"] = {"Name": rel.instance_profile}
    if versions:
        made = ec2.create_launch_template_version(
            LaunchTemplateName=name, VersionDescription=f"rodeo setup: first AMI {ami}", LaunchTemplateData=data
        )
        number = int(made["LaunchTemplateVersion"]["VersionNumber"])
        return number, [f"launch template {name} v{number} ({ami}: its versions had no AMI)"]
    tags = [{"ResourceType": "launch-template", "Tags": [{"Key": "rodeo:app", "Value": config.app}]}]
    try:
        ec2.create_launch_template(
            LaunchTemplateName=name,
            VersionDescription="created by rodeo setup",
            LaunchTemplateData=data,
            TagSpecifications=tags,
        )
    except botocore.exceptions.ClientError as exc:
        if "AlreadyExists" not in error_code(exc):
            raise
        return 1, []  # made meanwhile by another setup (with its first AMI)
    return 1, [f"launch template {name}"]


def _template_versions(ec2: Any, name: str) -> list[dict]:
    """Every version of launch template ``name`` (none when it does not exist)."""
    try:
        ec2.describe_launch_templates(LaunchTemplateNames=[name])
    except botocore.exceptions.ClientError as exc:
        if "NotFound" not in error_code(exc):
            raise
        return []
    pages = ec2.get_paginator("describe_launch_template_versions").paginate(LaunchTemplateName=name)
    return [v for page in pages for v in page["LaunchTemplateVersions"]]


def _initial_ami(config: Config, aws: Any, rel: Release) -> str | None:
    """The newest verified AMI of the release image, if any."""
    found = newest_verified(aws, config.app, rel.image)
    return found["ImageId"] if found else None


def _ensure_group(
    config: Config, aws: Any, env: slots.Env, slot: str, subnets: list[str], desired: int, version: int
) -> bool:
    asg = aws.client("autoscaling")
    name, tg = env.groups[slot], env.target_groups.get(slot)
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if groups:
        if tg and tg not in groups[0].get("TargetGroupARNs", []):
            asg.attach_load_balancer_target_groups(AutoScalingGroupName=name, TargetGroupARNs=[tg])
        return False
    rel = slots.release_of(config)
    try:
        once_settled(
            lambda: asg.create_auto_scaling_group(
                AutoScalingGroupName=name,
                LaunchTemplate={"LaunchTemplateName": env.template, "Version": str(version)},
                MinSize=min(rel.capacity.min, desired),
                MaxSize=rel.capacity.max,
                DesiredCapacity=desired,
                VPCZoneIdentifier=",".join(subnets),
                # Behind a Classic ELB a group takes traffic when attached: blue, live from the start; green at its release.
                **({"TargetGroupARNs": [tg]} if tg else {"LoadBalancerNames": [env.classic] if slot == "blue" else []}),
                HealthCheckType="ELB",
                HealthCheckGracePeriod=60,
                Tags=[
                    {"Key": "rodeo:app", "Value": config.app, "PropagateAtLaunch": True},
                    {"Key": "rodeo:slot", "Value": slot, "PropagateAtLaunch": True},
                ],
            )
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "AlreadyExists":
            raise
        return False
    return True
