"""The behaviour of each of motoserver's fidelity fixes, through a bare local-stack server (toolkit.local.motopatches names these).

Each test fails on moto 5.2.6 without its patch, and when moto changes so
that the patch no longer takes effect. AWS's rules (awsrules) are proven in
test_awsrules.py, IAM in tests/integration/test_iam.py, the live stack's in
test_live.py.
"""

from __future__ import annotations

import base64
import itertools
from datetime import datetime, timedelta, timezone

import botocore.exceptions
import pytest

from toolkit.aws import error_code, once_settled

_names = itertools.count(1)


def _name() -> str:
    return f"patches-{next(_names)}"


def _ami(ec2) -> str:
    return ec2.register_image(Name=_name(), RootDeviceName="/dev/xvda")["ImageId"]


def _subnet(ec2) -> str:
    return ec2.describe_subnets()["Subnets"][0]["SubnetId"]


def _refused(call) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    return error_code(caught.value)


def test_images_are_ebs_backed(bare_aws):
    ec2 = bare_aws.client("ec2")
    assert ec2.describe_images(ImageIds=[_ami(ec2)])["Images"][0]["RootDeviceType"] == "ebs"


def test_a_launch_template_version_retried_with_its_token_is_made_once(bare_aws):
    ec2, name = bare_aws.client("ec2"), _name()
    data = {"ImageId": _ami(ec2)}
    ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
    made = [
        once_settled(
            lambda: ec2.create_launch_template_version(
                LaunchTemplateName=name, LaunchTemplateData=data, ClientToken="retried"
            )
        )
        for _ in range(2)
    ]
    assert [m["LaunchTemplateVersion"]["VersionNumber"] for m in made] == [2, 2]
    assert len(ec2.describe_launch_template_versions(LaunchTemplateName=name)["LaunchTemplateVersions"]) == 2


def test_user_data_of_a_new_launch_template_version_reaches_its_instances(bare_aws):
    ec2, name = bare_aws.client("ec2"), _name()
    ami, script = _ami(ec2), b"#!/bin/sh\necho rodeo\n"
    ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": ami})
    ec2.create_launch_template_version(
        LaunchTemplateName=name, LaunchTemplateData={"ImageId": ami, "UserData": base64.b64encode(script).decode()}
    )
    run = once_settled(
        lambda: ec2.run_instances(
            LaunchTemplate={"LaunchTemplateName": name, "Version": "2"}, MinCount=1, MaxCount=1, SubnetId=_subnet(ec2)
        )
    )
    attribute = ec2.describe_instance_attribute(InstanceId=run["Instances"][0]["InstanceId"], Attribute="userData")
    assert base64.b64decode(attribute["UserData"]["Value"]) == script


def test_statistics_read_exactly_the_dimensions_asked_for(bare_aws):
    cw, namespace, now = bare_aws.client("cloudwatch"), f"Rodeo/{_name()}", datetime.now(timezone.utc)
    lb = {"Name": "LoadBalancer", "Value": "app/web/1"}
    cw.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {"MetricName": "RequestCount", "Dimensions": [lb], "Value": 1},
            {
                "MetricName": "RequestCount",
                "Dimensions": [lb, {"Name": "TargetGroup", "Value": "targetgroup/web-blue/2"}],
                "Value": 10,
            },
        ],
    )
    points = cw.get_metric_statistics(
        Namespace=namespace,
        MetricName="RequestCount",
        Dimensions=[lb],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=600,
        Statistics=["Sum"],
    )["Datapoints"]
    assert [p["Sum"] for p in points] == [1.0]


def test_log_batches_over_aws_limits_are_refused_and_prefixes_filter(bare_aws):
    logs, group, at = bare_aws.client("logs"), _name(), int(datetime.now(timezone.utc).timestamp() * 1000)
    logs.create_log_group(logGroupName=group)
    for stream in ("web-1", "web-2", "db-1"):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[{"timestamp": at, "message": stream}])
    found = logs.filter_log_events(logGroupName=group, logStreamNamePrefix="web")["events"]
    assert sorted(e["message"] for e in found) == ["web-1", "web-2"]
    too_many = [{"timestamp": at, "message": "x"}] * 10_001
    assert (
        _refused(lambda: logs.put_log_events(logGroupName=group, logStreamName="db-1", logEvents=too_many))
        == "InvalidParameterException"
    )


def test_scheduled_action_and_policy_names_are_per_group(bare_aws):
    ec2, asg, template = bare_aws.client("ec2"), bare_aws.client("autoscaling"), _name()
    ec2.create_launch_template(LaunchTemplateName=template, LaunchTemplateData={"ImageId": _ami(ec2)})
    groups = [_name(), _name()]
    for group in groups:
        once_settled(
            lambda: asg.create_auto_scaling_group(
                AutoScalingGroupName=group,
                LaunchTemplate={"LaunchTemplateName": template, "Version": "1"},
                MinSize=0,
                MaxSize=2,
                VPCZoneIdentifier=_subnet(ec2),
            )
        )
        asg.put_scheduled_update_group_action(
            AutoScalingGroupName=group, ScheduledActionName="rodeo-night", Recurrence="0 22 * * *", DesiredCapacity=1
        )
        asg.put_scaling_policy(
            AutoScalingGroupName=group,
            PolicyName="rodeo-cpu",
            PolicyType="SimpleScaling",
            AdjustmentType="ChangeInCapacity",
            ScalingAdjustment=1,
        )
    assert [
        len(asg.describe_scheduled_actions(AutoScalingGroupName=g)["ScheduledUpdateGroupActions"]) for g in groups
    ] == [1, 1]
    asg.delete_policy(AutoScalingGroupName=groups[0], PolicyName="rodeo-cpu")
    assert [
        [p["PolicyName"] for p in asg.describe_policies(AutoScalingGroupName=g)["ScalingPolicies"]] for g in groups
    ] == [[], ["rodeo-cpu"]]


def test_a_standard_parameter_over_4096_characters_is_refused(bare_aws):
    ssm, name = bare_aws.client("ssm"), f"/{_name()}"
    assert _refused(lambda: ssm.put_parameter(Name=name, Value="x" * 4097, Type="String")) == "ValidationException"
    assert ssm.put_parameter(Name=name, Value="x" * 4096, Type="String")["Version"] == 1


def test_a_custom_id_tag_names_a_subnet_and_a_security_group(bare_aws):
    ec2 = bare_aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.91.0.0/16")["Vpc"]["VpcId"]
    tagged = lambda kind, wanted: [{"ResourceType": kind, "Tags": [{"Key": "_custom_id_", "Value": wanted}]}]  # noqa: E731
    subnet = ec2.create_subnet(
        VpcId=vpc, CidrBlock="10.91.1.0/24", TagSpecifications=tagged("subnet", "subnet-0patches000000001")
    )["Subnet"]
    group = ec2.create_security_group(
        GroupName=_name(),
        Description="d",
        VpcId=vpc,
        TagSpecifications=tagged("security-group", "sg-0patches000000001"),
    )
    assert (subnet["SubnetId"], group["GroupId"]) == ("subnet-0patches000000001", "sg-0patches000000001")


def test_a_group_over_two_zones_launches_and_scales_in_balanced(bare_aws):
    """Launches alternate between the zones; scaling in keeps them balanced and ends the older version's first."""
    ec2, asg, name = bare_aws.client("ec2"), bare_aws.client("autoscaling"), _name()
    vpc = ec2.create_vpc(CidrBlock="10.90.0.0/16")["Vpc"]["VpcId"]
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]][:2]
    zone_of = {
        once_settled(lambda: ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.90.{i * 16}.0/20", AvailabilityZone=zone))[
            "Subnet"
        ]["SubnetId"]: zone
        for i, zone in enumerate(zones)
    }
    subnets_listed = list(zone_of)
    template = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={"ImageId": _ami(ec2)})[
        "LaunchTemplate"
    ]["LaunchTemplateId"]
    once_settled(
        lambda: asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
            MinSize=0,
            MaxSize=6,
            DesiredCapacity=2,
            VPCZoneIdentifier=",".join(subnets_listed),
        )
    )

    def members() -> dict[str, tuple[str, str]]:
        """Each InService instance's zone and the launch template version it was launched from (its tag, as EC2's)."""
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        ids = [i["InstanceId"] for i in group["Instances"]]
        found = [i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
        return {
            i["InstanceId"]: (
                i["Placement"]["AvailabilityZone"],
                {t["Key"]: t["Value"] for t in i["Tags"]}["aws:ec2launchtemplate:version"],
            )
            for i in found
        }

    def per_zone() -> list[int]:
        return sorted(sum(1 for zone, _ in members().values() if zone == z) for z in set(zone_of.values()))

    assert per_zone() == [1, 1]
    subnets = {
        i["InstanceId"]: i["SubnetId"]
        for r in ec2.describe_instances(InstanceIds=list(members()))["Reservations"]
        for i in r["Instances"]
    }
    assert sorted(subnets.values()) == sorted(subnets_listed)  # each in its zone's subnet
    asg.update_auto_scaling_group(AutoScalingGroupName=name, DesiredCapacity=5)
    assert per_zone() == [2, 3]
    asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=3)
    assert per_zone() == [1, 2]
    asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=2)
    assert per_zone() == [1, 1]
    # A new version: two more instances from it, then back to two: the old version's end, one a zone.
    once_settled(
        lambda: ec2.create_launch_template_version(LaunchTemplateId=template, LaunchTemplateData={"ImageId": _ami(ec2)})
    )
    once_settled(
        lambda: asg.update_auto_scaling_group(
            AutoScalingGroupName=name, LaunchTemplate={"LaunchTemplateId": template, "Version": "2"}, DesiredCapacity=4
        )
    )
    assert sorted(members().values()) == sorted(
        [(zone, version) for zone in set(zone_of.values()) for version in ("1", "2")]
    )
    asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=2)
    assert sorted(members().values()) == sorted((zone, "2") for zone in set(zone_of.values()))
