"""AWS's rules that moto skips, as the local stack's moto server enforces them (``toolkit.local.awsrules``).

One bare server (``python -m toolkit.local.motoserver``, no seeding, no live
stack) for the module: each test makes its own resources. Every assertion
here fails on moto 5.2.6 without ``awsrules.apply()`` in ``motoserver.main``,
except the two that pin what moto already does (ModifyListener, FIFO topics).
"""

from __future__ import annotations

import itertools
import time

import botocore.exceptions
import pytest

from toolkit.aws import error_code, once_settled
from toolkit.local.awsrules import DEFAULT_HEALTH_SCALE, time_to_healthy

_names = itertools.count(1)
PERMISSION = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]


@pytest.fixture(scope="module")
def aws(bare_aws):
    return bare_aws


def refusal(call) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    return error_code(caught.value), caught.value.response["Error"]["Message"]


def _network(aws):
    ec2 = aws.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"][0]["SubnetId"]
    return vpc, subnet


def _ami(aws) -> str:
    return aws.client("ec2").register_image(Name=f"rules-{next(_names)}", RootDeviceName="/dev/xvda")["ImageId"]


def _template(aws, data: dict) -> str:
    name = f"rules-{next(_names)}"
    aws.client("ec2").create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
    return name


def _group(aws, template: str, version: str = "1", create=True):
    name = f"rules-{next(_names)}"
    _, subnet = _network(aws)
    call = (
        aws.client("autoscaling").create_auto_scaling_group
        if create
        else aws.client("autoscaling").update_auto_scaling_group
    )
    args = {"MinSize": 0, "MaxSize": 1, "VPCZoneIdentifier": subnet} if create else {}
    return name, lambda group=None: call(
        AutoScalingGroupName=group or name, LaunchTemplate={"LaunchTemplateName": template, "Version": version}, **args
    )


def test_a_template_without_an_ami_is_refused_by_auto_scaling_and_run_instances(aws):
    template = _template(aws, {"InstanceType": "t3.micro"})
    name, create = _group(aws, template)
    expected = (
        "ValidationError",
        "You must use a valid fully-formed launch template. The request must contain the parameter ImageId",
    )
    assert refusal(create) == expected
    assert refusal(
        lambda: aws.client("ec2").run_instances(LaunchTemplate={"LaunchTemplateName": template}, MinCount=1, MaxCount=1)
    ) == ("MissingParameter", "The request must contain the parameter ImageId")
    # A group made on a good version cannot be moved onto the imageless one either; once_settled does not wait for it.
    good = _template(aws, {"ImageId": _ami(aws)})
    made, create_good = _group(aws, good)
    once_settled(create_good)
    _, update = _group(aws, template, create=False)
    started = time.monotonic()
    assert refusal(lambda: once_settled(lambda: update(made))) == expected
    assert time.monotonic() - started < 5
    assert (
        aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"] == []
    )


def test_a_new_launch_template_version_is_refused_at_its_first_use_then_settles(aws):
    ec2, ami = aws.client("ec2"), _ami(aws)
    template = _template(aws, {"ImageId": ami})
    name, create = _group(aws, template)
    code, message = refusal(create)
    assert (
        code,
        message.startswith("You must use a valid fully-formed launch template. Could not find the specified version 1"),
    ) == ("ValidationError", True)
    create()  # the refusal was its first use: it has settled
    ec2.create_launch_template_version(
        LaunchTemplateName=template, SourceVersion="1", LaunchTemplateData={"ImageId": ami}
    )
    _, update = _group(aws, template, "$Latest", create=False)
    assert refusal(lambda: update(name))[0] == "ValidationError"
    ec2.create_launch_template_version(
        LaunchTemplateName=template, SourceVersion="1", LaunchTemplateData={"ImageId": ami}
    )
    once_settled(lambda: update(name))
    group = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "$Latest"
    ec2.create_launch_template_version(
        LaunchTemplateName=template, SourceVersion="1", LaunchTemplateData={"ImageId": ami}
    )

    def run():
        return ec2.run_instances(
            LaunchTemplate={"LaunchTemplateName": template, "Version": "4"}, MinCount=1, MaxCount=1
        )

    assert refusal(run)[0] == "InvalidLaunchTemplateId.VersionNotFound"
    assert len(run()["Instances"]) == 1


def test_a_new_security_group_is_not_found_at_its_first_use(aws):
    ec2, ami = aws.client("ec2"), _ami(aws)
    vpc, subnet = _network(aws)

    def new_group() -> str:
        return ec2.create_security_group(GroupName=f"rules-{next(_names)}", Description="rules", VpcId=vpc)["GroupId"]

    uses = {
        "AuthorizeSecurityGroupIngress": lambda g: ec2.authorize_security_group_ingress(
            GroupId=g, IpPermissions=PERMISSION
        ),
        "RunInstances": lambda g: ec2.run_instances(
            ImageId=ami, MinCount=1, MaxCount=1, SubnetId=subnet, SecurityGroupIds=[g]
        ),
        "RunInstances (network interface)": lambda g: ec2.run_instances(
            ImageId=ami,
            MinCount=1,
            MaxCount=1,
            NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": subnet, "Groups": [g]}],
        ),
        "CreateLaunchTemplate": lambda g: ec2.create_launch_template(
            LaunchTemplateName=f"rules-{next(_names)}", LaunchTemplateData={"ImageId": ami, "SecurityGroupIds": [g]}
        ),
    }
    for what, use in uses.items():
        group = new_group()
        assert refusal(lambda: use(group)) == (
            "InvalidGroup.NotFound",
            f"The security group '{group}' does not exist",
        ), what
        use(group)
    described = new_group()  # confirmed with Describe first, as AWS advises (and Packer does): settled
    ec2.describe_security_groups(GroupIds=[described])
    uses["AuthorizeSecurityGroupIngress"](described)
    group = new_group()
    once_settled(lambda: uses["AuthorizeSecurityGroupIngress"](group))
    rules = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    assert [(r["FromPort"], r["IpRanges"][0]["CidrIp"]) for r in rules] == [(22, "10.0.0.0/8")]


def test_a_deregistered_images_snapshot_is_in_use_at_its_first_delete(aws):
    ec2, ami = aws.client("ec2"), _ami(aws)
    instance = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    image = ec2.create_image(InstanceId=instance, Name=f"rules-{next(_names)}")["ImageId"]
    snapshot = ec2.describe_images(ImageIds=[image])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.deregister_image(ImageId=image)
    delete = lambda: ec2.delete_snapshot(SnapshotId=snapshot)  # noqa: E731
    assert refusal(delete) == ("InvalidSnapshot.InUse", f"The snapshot {snapshot} is currently in use by {image}")
    delete()
    assert refusal(delete)[0] == "InvalidSnapshot.NotFound"


def test_modify_listener_keeps_only_the_actions_it_is_given(aws):
    """moto 5.2.6 already replaces the whole list, as AWS does: this keeps it so (no patch)."""
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpc, _ = _network(aws)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]][
        :2
    ]
    name = f"rules-{next(_names)}"
    lb = elbv2.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    oidc = {
        "Type": "authenticate-oidc",
        "Order": 1,
        "AuthenticateOidcConfig": {
            "Issuer": "https://idp.example.com",
            "AuthorizationEndpoint": "https://idp.example.com/auth",
            "TokenEndpoint": "https://idp.example.com/token",
            "UserInfoEndpoint": "https://idp.example.com/userinfo",
            "ClientId": "rodeo",
            "ClientSecret": "s",
        },
    }
    forward = {
        "Type": "forward",
        "Order": 2,
        "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tg, "Weight": 100}]},
    }
    listener = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=[oidc, forward])[
        "Listeners"
    ][0]["ListenerArn"]
    elbv2.modify_listener(
        ListenerArn=listener,
        DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tg, "Weight": 7}]}}],
    )
    actions = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"]
    assert [(a["Type"], a["ForwardConfig"]["TargetGroups"][0]["Weight"]) for a in actions] == [("forward", 7)]


def test_listener_rules_are_refused_as_aws_refuses_them(aws):
    """moto 5.2.6 takes a priority over 50000 and a host name without a '.'; an ALB refuses both."""
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpc, _ = _network(aws)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    name = f"rules-{next(_names)}"
    lb = elbv2.create_load_balancer(Name=name, Subnets=subnets[:2])["LoadBalancers"][0]["LoadBalancerArn"]
    tg = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    forward = [{"Type": "forward", "TargetGroupArn": tg}]
    listener = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=forward)["Listeners"][
        0
    ]["ListenerArn"]

    def rule(priority, host):
        condition = [{"Field": "host-header", "HostHeaderConfig": {"Values": [host]}}]
        return lambda: elbv2.create_rule(ListenerArn=listener, Priority=priority, Conditions=condition, Actions=forward)

    code, message = refusal(rule(50001, "a.review.localhost"))
    assert code == "ValidationError" and "less than or equal to 50000" in message
    code, message = refusal(rule(7, "localhost"))
    assert code == "ValidationError" and "'localhost'" in message
    made = rule(50000, "a.review.localhost")()["Rules"][0]
    assert made["Priority"] == "50000"
    code, message = refusal(
        lambda: elbv2.set_rule_priorities(RulePriorities=[{"RuleArn": made["RuleArn"], "Priority": 60000}])
    )
    assert code == "ValidationError"


@pytest.mark.parametrize(
    "subject, accepted",
    [
        ("a" * 99, True),
        ("release of ami-1: done (100%) & [ok]", True),
        ("a" * 100, False),
        ("two\nlines", False),
        ("tab\there", False),
        (" leading space", False),
        ("caf\u00e9", False),
        ("\u2705 done", False),
    ],
)
def test_sns_subjects_as_aws_takes_them(aws, subject, accepted):
    sns = aws.client("sns")
    topic = sns.create_topic(Name=f"rules-{next(_names)}")["TopicArn"]
    publish = lambda: sns.publish(TopicArn=topic, Message="m", Subject=subject)  # noqa: E731
    if accepted:
        assert publish()["MessageId"]
    else:
        assert refusal(publish) == ("InvalidParameter", "Invalid parameter: Subject")


def test_a_fifo_topic_needs_a_message_group_and_a_deduplication_id(aws):
    """moto 5.2.6 already requires both, as AWS does: this keeps it so (no patch)."""
    sns = aws.client("sns")
    topic = sns.create_topic(Name=f"rules-{next(_names)}.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
    assert refusal(lambda: sns.publish(TopicArn=topic, Message="m")) == (
        "MissingParameter",
        "The request must contain the parameter MessageGroupId.",
    )
    assert refusal(lambda: sns.publish(TopicArn=topic, Message="m", MessageGroupId="g"))[0] == "InvalidParameter"
    assert sns.publish(TopicArn=topic, Message="m", MessageGroupId="g", MessageDeduplicationId="d")["MessageId"]


def test_ssm_refuses_to_change_a_parameters_type(aws):
    ssm, name = aws.client("ssm"), f"/rules/{next(_names)}"
    ssm.put_parameter(Name=name, Value="plain", Type="String")
    code, message = refusal(lambda: ssm.put_parameter(Name=name, Value="secret", Type="SecureString", Overwrite=True))
    assert (code, message.startswith("Parameter Store doesn't support changing a parameter type")) == (
        "HierarchyTypeMismatchException",
        True,
    )
    assert ssm.put_parameter(Name=name, Value="plain 2", Type="String", Overwrite=True)["Version"] == 2
    assert ssm.get_parameter(Name=name)["Parameter"]["Type"] == "String"


def _health(elbv2, tg: str) -> list[tuple[str, str, str | None]]:
    found = elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    return [(d["Target"]["Id"], d["TargetHealth"]["State"], d["TargetHealth"].get("Reason")) for d in found]


def test_a_registered_target_is_initial_until_its_checks_pass_and_not_healthy_once_terminated(aws):
    """Checks every 20 s, healthy after 4 (AWS: 20 s registering, healthy after 80 s; scaled by the default 0.05)."""
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpc, subnet = _network(aws)
    tg = elbv2.create_target_group(
        Name=f"rules-{next(_names)}",
        Protocol="HTTP",
        Port=80,
        VpcId=vpc,
        HealthCheckIntervalSeconds=20,
        HealthyThresholdCount=4,
    )["TargetGroups"][0]["TargetGroupArn"]
    registering, healthy_after = time_to_healthy(20, 4, DEFAULT_HEALTH_SCALE)
    assert (registering, healthy_after) == (1.0, 4.0)
    instance = ec2.run_instances(ImageId=_ami(aws), MinCount=1, MaxCount=1, SubnetId=subnet)["Instances"][0][
        "InstanceId"
    ]
    registered = time.monotonic()  # before the call: the server stamps the target while serving it
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance}])
    seen = [_health(elbv2, tg)[0]]
    again = None
    while seen[-1][1] != "healthy" and time.monotonic() < registered + 10:
        time.sleep(0.1)
        if again is None and seen[-1][2] == "Elb.InitialHealthChecking":
            elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": instance}])  # registered again: keeps its age
            again = time.monotonic()
        answer = _health(elbv2, tg)[0]
        if answer != seen[-1]:
            seen.append(answer)
            healthy_at = time.monotonic()
    assert seen == [
        (instance, "initial", "Elb.RegistrationInProgress"),
        (instance, "initial", "Elb.InitialHealthChecking"),
        (instance, "healthy", None),
    ]
    assert healthy_at - registered >= healthy_after and again is not None and healthy_at - again < healthy_after


def test_a_target_whose_instance_an_auto_scaling_group_terminated_is_not_healthy(aws):
    """Scaling in terminates the instance; moto 5.2.6 leaves it registered (and called it healthy)."""
    elbv2, autoscaling = aws.client("elbv2"), aws.client("autoscaling")
    vpc, subnet = _network(aws)
    tg = elbv2.create_target_group(
        Name=f"rules-{next(_names)}",
        Protocol="HTTP",
        Port=80,
        VpcId=vpc,
        HealthCheckIntervalSeconds=5,
        HealthyThresholdCount=2,
    )["TargetGroups"][0]["TargetGroupArn"]
    name, template = f"rules-{next(_names)}", _template(aws, {"ImageId": _ami(aws)})
    once_settled(
        lambda: autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": template, "Version": "1"},
            MinSize=0,
            MaxSize=1,
            DesiredCapacity=1,
            VPCZoneIdentifier=subnet,
            TargetGroupARNs=[tg],
        )
    )
    [(instance, state, _)] = _health(elbv2, tg)
    assert state == "initial"
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, DesiredCapacity=0)
    assert _health(elbv2, tg) == [(instance, "unused", "Target.InvalidState")]


def test_an_image_copy_is_named_once_tagged_at_once_and_pending_at_first(aws):
    """CopyImage (awsrules.image_copies_as_aws): a name in use is refused, TagSpecifications tag the copy and its
    snapshot, other resource types are refused, and the copy is pending to the first look, available at the next."""
    source = _ami(aws)
    name = aws.client("ec2").describe_images(ImageIds=[source])["Images"][0]["Name"]
    west = aws.client("ec2", "us-west-2")
    taken = west.register_image(Name=name, RootDeviceName="/dev/xvda")["ImageId"]
    assert refusal(lambda: west.copy_image(SourceImageId=source, SourceRegion=aws.region, Name=name)) == (
        "InvalidAMIName.Duplicate",
        f"AMI name {name} is already in use by AMI",
    )
    west.deregister_image(ImageId=taken)
    tags = [{"Key": "rodeo:copied-from", "Value": f"-/{aws.region}/{source}"}]
    assert (
        refusal(
            lambda: west.copy_image(
                SourceImageId=source,
                SourceRegion=aws.region,
                Name=f"{name}-b",
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
            )
        )[0]
        == "InvalidParameterValue"
    )
    copy = west.copy_image(
        SourceImageId=source,
        SourceRegion=aws.region,
        Name=name,
        TagSpecifications=[{"ResourceType": "image", "Tags": tags}, {"ResourceType": "snapshot", "Tags": tags}],
    )["ImageId"]
    first = west.describe_images(ImageIds=[copy])["Images"][0]
    assert first["State"] == "pending" and first["Tags"] == tags
    snapshot = first["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert west.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["Tags"] == tags
    assert west.describe_images(ImageIds=[copy])["Images"][0]["State"] == "available"
    west.get_waiter("image_available").wait(ImageIds=[copy], WaiterConfig={"Delay": 1, "MaxAttempts": 2})
