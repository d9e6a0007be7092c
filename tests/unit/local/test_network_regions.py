"""A request for another region's AWS service: only a NAT or internet gateway carries it, never a VPC endpoint.

An instance of a release in waves outside ``region:`` reads its config vars in
``region:`` (``config_region`` in its user data). Its VPC's SSM endpoint serves
its own region's SSM only; the pure rule (``toolkit.vpc.reaches``), the
request's scope (``toolkit.local.netproxy.scope_of``) and moto's state read
as facts (``toolkit.local.netfacts``) for an instance in us-west-2.
"""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from toolkit.local import motoserver, netfacts, seed
from toolkit.local.motostate import read_moto
from toolkit.local.netproxy import scope_of
from toolkit.vpc import ALL, NONE, reaches

motoserver._custom_network_ids()  # as the stack's moto server does at start (once per process)

WEST = "us-west-2"
HEAD = b"POST / HTTP/1.1\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20261205/us-east-1/ssm/aws4_request, Signature=0\r\n\r\n"


@pytest.mark.parametrize(
    "reach,service,elsewhere,passes",
    [
        (ALL, "ssm", True, True),  # a NAT or internet gateway reaches every region
        (frozenset({"ssm"}), "ssm", False, True),  # its own region's SSM, through the endpoint
        (frozenset({"ssm"}), "ssm", True, False),  # another region's SSM: the endpoint does not serve it
        (frozenset({"ssm"}), None, True, False),
        (NONE, "ssm", True, False),
    ],
)
def test_another_regions_service_needs_a_way_to_the_internet(reach, service, elsewhere, passes):
    assert reaches(reach, service, elsewhere) is passes


@pytest.mark.parametrize(
    "head,scope",
    [
        (HEAD, ("us-east-1", "ssm")),
        (HEAD.replace(b"us-east-1", b"us-west-2"), (WEST, "ssm")),
        (
            b"GET /b/k?X-Amz-Credential=AKIA%2F20261205%2Fus-west-2%2Fs3%2Faws4_request HTTP/1.1\r\nHost: x\r\n\r\n",
            (WEST, "s3"),
        ),
        (b"GET / HTTP/1.1\r\nHost: 127.0.0.1:4566\r\n\r\n", (None, None)),
    ],
)
def test_a_requests_region_and_service_are_its_credential_scope(head, scope):
    assert scope_of(head) == scope


@pytest.fixture
def west():
    """The seeded VPC of us-west-2 and an instance in its first private subnet (routed to the NAT gateway)."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=WEST, aws_access_key_id="a", aws_secret_access_key="b")
        vpc = seed._network(ec2)
        subnet = seed.private_subnets(WEST)[0]
        iid = ec2.run_instances(
            ImageId="ami-1e749f67",
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet,
            SecurityGroupIds=[seed.instance_sg(WEST)],
        )["Instances"][0]["InstanceId"]
        yield ec2, vpc, subnet, iid


def reach_now(iid: str) -> frozenset:
    return netfacts.network_view(read_moto(), {iid})[0][iid]


def private_table(ec2, subnet: str) -> str:
    return ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["RouteTables"][0][
        "RouteTableId"
    ]


def test_an_instance_behind_its_nat_gateway_reads_ssm_in_another_region(west):
    _, _, _, iid = west
    assert reach_now(iid) == ALL
    assert reaches(reach_now(iid), "ssm", elsewhere=True)


def test_an_instance_with_only_its_regions_ssm_endpoint_does_not_reach_ssm_in_another_region(west):
    ec2, vpc, subnet, iid = west
    ec2.delete_route(RouteTableId=private_table(ec2, subnet), DestinationCidrBlock="0.0.0.0/0")
    ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName=f"com.amazonaws.{WEST}.ssm",
        VpcEndpointType="Interface",
        SubnetIds=[subnet],
        PrivateDnsEnabled=True,
    )
    assert reach_now(iid) == frozenset({"ssm"})
    assert reaches(reach_now(iid), "ssm") and not reaches(reach_now(iid), "ssm", elsewhere=True)


def test_an_endpoint_naming_another_regions_service_serves_nothing_here(west):
    """Stricter than AWS's cross-region PrivateLink, never more forgiving: it would otherwise pass us-west-2's SSM."""
    ec2, vpc, subnet, iid = west
    ec2.delete_route(RouteTableId=private_table(ec2, subnet), DestinationCidrBlock="0.0.0.0/0")
    ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName="com.amazonaws.us-east-1.ssm", VpcEndpointType="Interface", SubnetIds=[subnet]
    )
    assert reach_now(iid) == NONE
