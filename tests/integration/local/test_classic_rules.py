"""Classic ELBs on a bare local stack (no live instances): AWS's refusals, attachments and instance health as AWS has them."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from toolkit.aws import once_settled

pytestmark = pytest.mark.integration

HTTP = [{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}]
CHECK = {"Target": "HTTP:8080/health", "Interval": 5, "Timeout": 2, "HealthyThreshold": 2, "UnhealthyThreshold": 2}


def refused(call, code: str, **kwargs) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    assert caught.value.response["Error"]["Code"] == code, caught.value.response["Error"]
    return caught.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def clb(bare_aws):
    elb, ec2, asg = bare_aws.client("elb"), bare_aws.client("ec2"), bare_aws.client("autoscaling")
    ami = ec2.register_image(Name="classic-rules", RootDeviceName="/dev/xvda")["ImageId"]
    ec2.create_launch_template(LaunchTemplateName="classic", LaunchTemplateData={"ImageId": ami})
    return elb, ec2, asg


def group(asg, name: str, **kwargs) -> list[str]:
    once_settled(
        lambda: asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": "classic", "Version": "1"},
            MinSize=0,
            MaxSize=2,
            DesiredCapacity=1,
            AvailabilityZones=["us-east-1a"],
            **kwargs,
        )
    )
    found = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]["Instances"]
    return [i["InstanceId"] for i in found]


def attached(asg, name: str) -> list[tuple[str, str]]:
    found = asg.describe_load_balancers(AutoScalingGroupName=name)["LoadBalancers"]
    return [(lb["LoadBalancerName"], lb["State"]) for lb in found]


def registered(elb, name: str) -> list[str]:
    return [
        i["InstanceId"]
        for i in elb.describe_load_balancers(LoadBalancerNames=[name])["LoadBalancerDescriptions"][0]["Instances"]
    ]


def test_classic_calls_aws_refuses_are_refused(clb):
    elb, _, asg = clb
    message = refused(
        elb.create_load_balancer,
        "ValidationError",
        LoadBalancerName="no_underscores",
        Listeners=HTTP,
        AvailabilityZones=["us-east-1a"],
    )
    assert message == "LoadBalancer name cannot contain characters that are not letters, or digits or the dash."
    refused(
        elb.create_load_balancer,
        "ValidationError",
        LoadBalancerName="a" * 33,
        Listeners=HTTP,
        AvailabilityZones=["us-east-1a"],
    )
    udp = [{"Protocol": "UDP", "LoadBalancerPort": 53, "InstancePort": 53}]
    refused(
        elb.create_load_balancer,
        "ValidationError",
        LoadBalancerName="udp",
        Listeners=udp,
        AvailabilityZones=["us-east-1a"],
    )
    mixed = [{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80, "InstanceProtocol": "TCP"}]
    refused(
        elb.create_load_balancer,
        "InvalidConfigurationRequest",
        LoadBalancerName="mixed",
        Listeners=mixed,
        AvailabilityZones=["us-east-1a"],
    )
    refused(elb.create_load_balancer, "ValidationError", LoadBalancerName="nowhere", Listeners=HTTP)
    assert elb.describe_load_balancers()["LoadBalancerDescriptions"] == []  # nothing made by a refused call
    elb.create_load_balancer(LoadBalancerName="rules", Listeners=HTTP, AvailabilityZones=["us-east-1a"])
    refused(elb.create_load_balancer_listeners, "ValidationError", LoadBalancerName="rules", Listeners=udp)
    for bad in (
        {"Target": "HTTP:8080"},
        {"Target": "TCP:8080/health"},
        {"Interval": 301},
        {"Timeout": 5, "Interval": 5},
        {"HealthyThreshold": 11},
    ):
        refused(elb.configure_health_check, "ValidationError", LoadBalancerName="rules", HealthCheck=dict(CHECK, **bad))
    assert (
        elb.configure_health_check(LoadBalancerName="rules", HealthCheck=CHECK)["HealthCheck"]["Target"]
        == CHECK["Target"]
    )
    refused(elb.configure_health_check, "LoadBalancerNotFound", LoadBalancerName="nope", HealthCheck=CHECK)
    draining = {"ConnectionDraining": {"Enabled": True, "Timeout": 3601}}
    refused(
        elb.modify_load_balancer_attributes,
        "ValidationError",
        LoadBalancerName="rules",
        LoadBalancerAttributes=draining,
    )
    refused(
        elb.register_instances_with_load_balancer,
        "InvalidInstance",
        LoadBalancerName="rules",
        Instances=[{"InstanceId": "i-0123456789abcdef0"}],
    )
    refused(elb.register_instances_with_load_balancer, "LoadBalancerNotFound", LoadBalancerName="nope", Instances=[])
    message = refused(group, "ValidationError", asg=asg, name="no-elb", LoadBalancerNames=["nope"])
    assert message == "Provided Load Balancers may not be valid. Please ensure they exist and try again."
    assert asg.describe_auto_scaling_groups(AutoScalingGroupNames=["no-elb"])["AutoScalingGroups"] == []
    group(asg, "later")
    refused(asg.attach_load_balancers, "ValidationError", AutoScalingGroupName="later", LoadBalancerNames=["nope"])
    assert attached(asg, "later") == []


def test_two_groups_share_a_classic_elb_and_a_detached_one_is_removing_then_gone(clb):
    elb, _, asg = clb
    elb.create_load_balancer(LoadBalancerName="shared", Listeners=HTTP, AvailabilityZones=["us-east-1a"])
    a = group(asg, "slot-a", LoadBalancerNames=["shared"])
    assert attached(asg, "slot-a") == [("shared", "InService")]  # made with the group: InService at once (AWS)
    b = group(asg, "slot-b")
    asg.attach_load_balancers(AutoScalingGroupName="slot-b", LoadBalancerNames=["shared"])
    assert sorted(registered(elb, "shared")) == sorted(a + b)  # moto deregistered slot-a's instance here
    assert [attached(asg, "slot-b"), attached(asg, "slot-b")] == [[("shared", "Adding")], [("shared", "Added")]]
    asg.detach_load_balancers(AutoScalingGroupName="slot-a", LoadBalancerNames=["shared"])
    assert registered(elb, "shared") == b
    assert [attached(asg, "slot-a"), attached(asg, "slot-a")] == [[("shared", "Removing")], []]
    assert attached(asg, "slot-b") == [("shared", "Added")]  # HealthCheckType EC2: never InService
    asg.update_auto_scaling_group(AutoScalingGroupName="slot-b", DesiredCapacity=2)
    assert len(registered(elb, "shared")) == 2 and registered(elb, "shared")[0] == b[0]  # its launch registered
    asg.update_auto_scaling_group(AutoScalingGroupName="slot-a", DesiredCapacity=0)
    assert len(registered(elb, "shared")) == 2  # a detached group's change leaves the ELB alone
    asg.update_auto_scaling_group(AutoScalingGroupName="slot-b", DesiredCapacity=1)
    assert len(registered(elb, "shared")) == 1  # the instance it terminated is deregistered


def test_a_registered_instance_is_out_of_service_until_its_checks_could_pass(clb):
    elb, ec2, _ = clb
    elb.create_load_balancer(LoadBalancerName="health", Listeners=HTTP, AvailabilityZones=["us-east-1a"])
    elb.configure_health_check(LoadBalancerName="health", HealthCheck=CHECK)
    image = ec2.describe_images(Owners=["self"])["Images"][0]["ImageId"]
    iid = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    answers = [
        elb.register_instances_with_load_balancer(LoadBalancerName="health", Instances=[{"InstanceId": iid}])[
            "Instances"
        ]
        for _ in range(2)
    ]
    assert answers == [[{"InstanceId": iid}]] * 2 and registered(elb, "health") == [iid]  # once, however often
    first = elb.describe_instance_health(LoadBalancerName="health")["InstanceStates"]
    assert first == [
        {
            "InstanceId": iid,
            "State": "OutOfService",
            "ReasonCode": "ELB",
            "Description": "Instance registration is still in progress.",
        }
    ]
    deadline = time.monotonic() + 10  # 2 checks of 5 s, at the stack's health scale (0.05): 0.5 s
    while elb.describe_instance_health(LoadBalancerName="health")["InstanceStates"][0]["State"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    states = elb.describe_instance_health(LoadBalancerName="health")["InstanceStates"]
    assert states == [{"InstanceId": iid, "State": "InService", "ReasonCode": "N/A", "Description": "N/A"}]
    elb.deregister_instances_from_load_balancer(LoadBalancerName="health", Instances=[{"InstanceId": iid}])
    assert elb.describe_instance_health(LoadBalancerName="health")["InstanceStates"] == []
    asked = elb.describe_instance_health(LoadBalancerName="health", Instances=[{"InstanceId": iid}])["InstanceStates"]
    assert [(s["State"], s["Description"]) for s in asked] == [
        ("OutOfService", "Instance is not currently registered with the LoadBalancer.")
    ]
    ec2.terminate_instances(InstanceIds=[iid])
    asked = elb.describe_instance_health(LoadBalancerName="health", Instances=[{"InstanceId": iid}])["InstanceStates"]
    assert asked == []  # "The state of terminated instances is not returned."
