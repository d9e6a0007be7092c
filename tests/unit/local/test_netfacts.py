"""Moto's network state read as toolkit.vpc's facts: the seeded VPC, in moto's own process (in memory).

These fail when moto moves: the attributes read (``toolkit.local.netfacts``)
and the custom-id patch (``toolkit.local.motoserver``) were checked against
moto 5.2.6.
"""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from toolkit.local import motoserver, netfacts, seed
from toolkit.local.motostate import read_moto
from toolkit.vpc import ALL, NONE

REGION = "us-east-1"
motoserver._custom_network_ids()  # as the stack's moto server does at start (once per process)


@pytest.fixture
def seeded():
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
        vpc = seed._network(ec2)
        elb = boto3.client("elbv2", region_name=REGION, aws_access_key_id="a", aws_secret_access_key="b")
        lb = elb.create_load_balancer(
            Name="web", Subnets=seed.public_subnets(ec2, vpc), SecurityGroups=[seed.load_balancer_group(ec2, vpc)]
        )
        tg = elb.create_target_group(Name="web-blue", Protocol="HTTP", Port=8080, VpcId=vpc)["TargetGroups"][0][
            "TargetGroupArn"
        ]
        elb.create_listener(
            LoadBalancerArn=lb["LoadBalancers"][0]["LoadBalancerArn"],
            Protocol="HTTP",
            Port=80,
            DefaultActions=[
                {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": tg, "Weight": 100}]}}
            ],
        )
        yield ec2, elb, vpc, tg


def launch(ec2, elb, tg, subnet: str, groups: list[str]) -> str:
    iid = ec2.run_instances(ImageId="ami-1e749f67", MinCount=1, MaxCount=1, SubnetId=subnet, SecurityGroupIds=groups)[
        "Instances"
    ][0]["InstanceId"]
    elb.register_targets(TargetGroupArn=tg, Targets=[{"Id": iid}])
    return iid


def test_the_seeded_private_subnets_and_instances_group_have_the_inventory_ids(seeded):
    ec2, _, vpc, _ = seeded
    private = ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "tag:rodeo:tier", "Values": ["private"]}]
    )["Subnets"]
    assert sorted(s["SubnetId"] for s in private) == sorted(seed.PRIVATE_SUBNETS)
    assert len({s["AvailabilityZone"] for s in private}) == 2 and len(seed.public_subnets(ec2, vpc)) == 2
    assert (
        ec2.describe_security_groups(GroupIds=[seed.INSTANCE_SG])["SecurityGroups"][0]["GroupName"]
        == seed.INSTANCE_GROUP
    )


def test_the_seeded_shape_lets_an_instance_reach_aws_and_the_load_balancer_reach_it(seeded):
    ec2, elb, vpc, tg = seeded
    good = launch(ec2, elb, tg, seed.PRIVATE_SUBNETS[0], [seed.INSTANCE_SG])
    public = launch(ec2, elb, tg, seed.public_subnets(ec2, vpc)[0], [seed.INSTANCE_SG])
    default = launch(ec2, elb, tg, seed.PRIVATE_SUBNETS[1], [])
    reach, admitted = netfacts.network_view(read_moto(), {good, public, default})
    assert reach == {good: ALL, public: NONE, default: ALL}
    assert admitted == {(good, 8080): True, (public, 8080): True, (default, 8080): False}


def test_a_vpc_endpoint_and_a_removed_nat_route_are_read(seeded):
    ec2, elb, vpc, tg = seeded
    iid = launch(ec2, elb, tg, seed.PRIVATE_SUBNETS[0], [seed.INSTANCE_SG])
    table = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [seed.PRIVATE_SUBNETS[0]]}])[
        "RouteTables"
    ][0]["RouteTableId"]
    ec2.delete_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0")
    assert netfacts.network_view(read_moto(), {iid})[0] == {iid: NONE}
    ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.logs", VpcEndpointType="Interface", PrivateDnsEnabled=True
    )
    ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName=f"com.amazonaws.{REGION}.s3", VpcEndpointType="Gateway", RouteTableIds=[table]
    )
    assert netfacts.network_view(read_moto(), {iid})[0] == {iid: frozenset({"logs", "s3"})}


def test_moto_default_vpc_reaches_aws_as_aws_default_vpc_does(seeded):
    ec2 = seeded[0]
    default = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default]}])["Subnets"][0]
    iid = ec2.run_instances(ImageId="ami-1e749f67", MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]  # no subnet: a default one
    assert subnet["MapPublicIpOnLaunch"] is True
    assert netfacts.network_view(read_moto(), {iid})[0] == {iid: ALL}
