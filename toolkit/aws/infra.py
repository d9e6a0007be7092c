"""What a release needs in AWS: check it, and create the parts Rodeo owns.

For a real account the load balancer, listener and target groups belong to
the team's infrastructure code: ``ensure`` checks them and names anything
absent. Rodeo owns the DynamoDB table (lock + ledger), the launch template
``rodeo-<app>`` and the two slot groups; ``ensure`` creates those when missing.
On the local stack (``create_lb=True``) it also makes the security group,
load balancer, target groups, listener and alarms. Every step is idempotent.

The local stack starts with a live "previous release": blue runs the seeded
base AMI (on the live stack: a placeholder app that answers /health, see
``toolkit.local.seedimage``) at ``capacity.desired`` with weight 100, green is empty. So the very
first ``invoke release`` there is a real blue/green shift, the invariant holds
from the start, and ``invoke rollback`` has something to return to.
"""

from __future__ import annotations

import hashlib

from typing import Any, Callable

import botocore.exceptions

from toolkit.aws import ledger, slots
from toolkit.aws.images import newest_verified
from toolkit.aws.release import SLOTS
from toolkit.aws.session import error_code
from toolkit.config import Config, Release
from toolkit.errors import ReleaseError

LOCAL_SEED = [{"Name": "tag:rodeo:seed", "Values": ["local"]}]
LOCAL_DRAIN_SECONDS = 10
LOCAL_APP_PORT = 8080


def ensure(config: Config, aws: Any, create_lb: bool = False) -> dict:
    """Make what Rodeo owns (and, with ``create_lb``, the load balancer side); check the rest.

    Returns ``{"created": [...], "found": [...]}``; ReleaseError names what is
    absent and cannot be created here.
    """
    rel = slots.release_of(config)
    created: list[str] = []
    if ledger.ensure_table(config, aws):
        created.append(f"dynamodb table {ledger.table_name(config)}")
    if create_lb:
        created += _local_load_balancer(config, aws, rel)
    env = slots.resolve(config, aws)
    lb = aws.client("elbv2").describe_load_balancers(Names=[rel.load_balancer])["LoadBalancers"][0]
    subnets = list(rel.subnets) or [z["SubnetId"] for z in lb["AvailabilityZones"]]
    if _ensure_template(config, aws, rel, create_lb):
        created.append(f"launch template {slots.template_name(config)}")
    for slot in SLOTS:
        desired = rel.capacity.desired if create_lb and slot == "blue" else 0
        if _ensure_group(config, aws, env, slot, subnets, desired):
            created.append(f"auto scaling group {env.groups[slot]}")
    found = [f"load balancer {rel.load_balancer}", f"listener :{rel.listener_port}"] + [f"target group {rel.slots[s]}" for s in SLOTS]
    return {"created": created, "found": found}


def seed_release(config: Config) -> Callable[[Any], None]:
    """A seeder for ``toolkit.local.stack.up``: the whole release side of the local stack."""

    def seed(aws: Any) -> None:
        ensure(config, aws, create_lb=True)

    # The same settings need seeding once per server (see stack.up).
    seed.seed_key = f"release:{config.app}:{hashlib.sha256(repr(config.release).encode()).hexdigest()[:16]}"
    return seed


def _ensure_template(config: Config, aws: Any, rel: Release, local: bool) -> bool:
    ec2 = aws.client("ec2")
    name = slots.template_name(config)
    try:
        ec2.describe_launch_templates(LaunchTemplateNames=[name])
        return False
    except botocore.exceptions.ClientError as exc:
        if "NotFound" not in error_code(exc):
            raise
    data: dict = {"InstanceType": rel.instance_type, "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"}}
    ami = _initial_ami(config, aws, rel, local)
    if ami:
        data["ImageId"] = ami
    if rel.security_groups:
        data["SecurityGroupIds"] = list(rel.security_groups)
    tags = [{"ResourceType": "launch-template", "Tags": [{"Key": "rodeo:app", "Value": config.app}]}]
    try:
        ec2.create_launch_template(LaunchTemplateName=name, VersionDescription="created by rodeo setup", LaunchTemplateData=data, TagSpecifications=tags)
    except botocore.exceptions.ClientError as exc:
        if "AlreadyExists" not in error_code(exc):
            raise
        return False
    return True


def _initial_ami(config: Config, aws: Any, rel: Release, local: bool) -> str | None:
    """Local: the live stack's placeholder app, else the seeded base AMI. Real: the newest verified release image, if any."""
    if local:
        from toolkit.local.seedimage import NAME as SEED_APP_NAME
        from toolkit.local.stack import BASE_AMI_NAME

        for name in (SEED_APP_NAME, BASE_AMI_NAME):
            images = aws.client("ec2").describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
            if images:
                return images[0]["ImageId"]
    found = newest_verified(aws, config.app, rel.image)
    return found["ImageId"] if found else None


def _ensure_group(config: Config, aws: Any, env: slots.Env, slot: str, subnets: list[str], desired: int) -> bool:
    asg = aws.client("autoscaling")
    name, tg = env.groups[slot], env.target_groups[slot]
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    if groups:
        if tg not in groups[0].get("TargetGroupARNs", []):
            asg.attach_load_balancer_target_groups(AutoScalingGroupName=name, TargetGroupARNs=[tg])
        return False
    rel = slots.release_of(config)
    try:
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": env.template, "Version": "1"},
            MinSize=min(rel.capacity.min, desired),
            MaxSize=rel.capacity.max,
            DesiredCapacity=desired,
            VPCZoneIdentifier=",".join(subnets),
            TargetGroupARNs=[tg],
            HealthCheckType="ELB",
            HealthCheckGracePeriod=60,
            Tags=[{"Key": "rodeo:app", "Value": config.app, "PropagateAtLaunch": True}, {"Key": "rodeo:slot", "Value": slot, "PropagateAtLaunch": True}],
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "AlreadyExists":
            raise
        return False
    return True


def _local_load_balancer(config: Config, aws: Any, rel: Release) -> list[str]:
    """Security group, ALB, target groups, weighted listener and alarms in the seeded VPC."""
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpcs = ec2.describe_vpcs(Filters=LOCAL_SEED)["Vpcs"]
    if not vpcs:
        raise ReleaseError("the local VPC (tag rodeo:seed=local) does not exist", "run 'invoke local.up' first")
    vpc = vpcs[0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=LOCAL_SEED + [{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    created = []
    group_name = f"rodeo-{config.app}-alb"
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [group_name]}, {"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    sg = groups[0]["GroupId"] if groups else ec2.create_security_group(GroupName=group_name, Description="rodeo local load balancer", VpcId=vpc)["GroupId"]
    try:
        lb = elbv2.describe_load_balancers(Names=[rel.load_balancer])["LoadBalancers"][0]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "LoadBalancerNotFound":
            raise
        lb = elbv2.create_load_balancer(Name=rel.load_balancer, Subnets=subnets, SecurityGroups=[sg], Type="application", Scheme="internal")["LoadBalancers"][0]
        created.append(f"load balancer {rel.load_balancer}")
    arns = {}
    for slot in SLOTS:
        try:
            arns[slot] = elbv2.describe_target_groups(Names=[rel.slots[slot]])["TargetGroups"][0]["TargetGroupArn"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "TargetGroupNotFound":
                raise
            # The sample app's port; checks as fast as AWS allows, so a local release waits seconds, not minutes.
            arns[slot] = elbv2.create_target_group(
                Name=rel.slots[slot], Protocol="HTTP", Port=LOCAL_APP_PORT, VpcId=vpc, TargetType="instance", HealthCheckPath="/health",
                HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2, UnhealthyThresholdCount=2,
            )["TargetGroups"][0]["TargetGroupArn"]
            elbv2.modify_target_group_attributes(TargetGroupArn=arns[slot], Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(LOCAL_DRAIN_SECONDS)}])
            created.append(f"target group {rel.slots[slot]}")
    listeners = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    if not any(l["Port"] == rel.listener_port for l in listeners):
        forward = {"TargetGroups": [{"TargetGroupArn": arns["blue"], "Weight": 100}, {"TargetGroupArn": arns["green"], "Weight": 0}]}
        elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=rel.listener_port, DefaultActions=[{"Type": "forward", "ForwardConfig": forward}])
        created.append(f"listener :{rel.listener_port}")
    created += _local_alarms(aws, rel, lb["LoadBalancerArn"])
    return created


def _local_alarms(aws: Any, rel: Release, lb_arn: str) -> list[str]:
    """Each alarm in ``release.alarms``, as a 5xx-count alarm on the load balancer."""
    cw = aws.client("cloudwatch")
    existing = {a["AlarmName"] for a in cw.describe_alarms(AlarmNames=list(rel.alarms))["MetricAlarms"]} if rel.alarms else set()
    created = []
    for name in rel.alarms:
        if name in existing:
            continue
        cw.put_metric_alarm(
            AlarmName=name, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count",
            Dimensions=[{"Name": "LoadBalancer", "Value": lb_arn.split(":loadbalancer/")[-1]}],
            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
        )
        created.append(f"alarm {name}")
    return created

