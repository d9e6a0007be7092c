"""The VPC's rules the live stack enforces (toolkit.vpc), as tables."""

from __future__ import annotations

from dataclasses import replace

import pytest

from toolkit.local.netproxy import service_of
from toolkit.vpc import (
    ALL,
    NONE,
    Endpoint,
    Host,
    Route,
    Rule,
    Vpc,
    admits_load_balancer,
    endpoint_reach,
    endpoint_service,
    reaches,
    route_table_of,
)

# The seeded shape: public subnets (igw) a/b, private subnets (nat) a/b, a subnet with no table of its own.
VPC = Vpc(
    ingress={
        "sg-lb": (Rule("tcp", 80, 80, cidrs=("0.0.0.0/0",)),),
        "sg-app": (Rule("tcp", 8080, 8080, groups=("sg-lb",)),),
        "sg-default": (Rule("-1", groups=("sg-default",)),),
        "sg-cidr-all": (Rule("tcp", 8000, 9000, cidrs=("10.80.0.0/16",)),),
        "sg-cidr-one": (Rule("tcp", 8080, 8080, cidrs=("10.80.0.0/20",)),),
        "sg-any": (Rule("-1", cidrs=("0.0.0.0/0",)),),
        "sg-udp": (Rule("udp", 8080, 8080, groups=("sg-lb",)),),
    },
    default_group={"vpc-1": "sg-default"},
    subnets={
        "subnet-pub-a": ("vpc-1", "10.80.0.0/20"),
        "subnet-pub-b": ("vpc-1", "10.80.16.0/20"),
        "subnet-priv-a": ("vpc-1", "10.80.128.0/20"),
        "subnet-priv-b": ("vpc-1", "10.80.144.0/20"),
        "subnet-bare": ("vpc-1", "10.80.200.0/24"),
    },
    route_tables={
        "rtb-main": (Route("10.80.0.0/16", "local"),),
        "rtb-pub": (Route("10.80.0.0/16", "local"), Route("0.0.0.0/0", "igw-1")),
        "rtb-priv": (Route("10.80.0.0/16", "local"), Route("0.0.0.0/0", "nat-1")),
    },
    associations={
        "subnet-pub-a": "rtb-pub",
        "subnet-pub-b": "rtb-pub",
        "subnet-priv-a": "rtb-priv",
        "subnet-priv-b": "rtb-priv",
    },
    main_tables={"vpc-1": "rtb-main"},
    nat_gateways={"nat-1": "subnet-pub-a"},
    attached_gateways={"igw-1": "vpc-1"},
)
LB = (("sg-lb",), ("subnet-pub-a", "subnet-pub-b"))


@pytest.mark.parametrize(
    "groups,port,lb,admitted",
    [
        (("sg-app",), 8080, LB, True),  # the seeded shape: the LB's group on the app port
        (("sg-app",), 8081, LB, False),  # another port
        (("sg-udp",), 8080, LB, False),  # UDP is not what health checks use
        ((), 8080, LB, False),  # no group: the VPC's default, which admits only itself
        (("sg-default",), 8080, ((), LB[1]), True),  # an LB without groups is in the default group, which admits itself
        (("sg-cidr-all",), 8080, LB, True),  # a CIDR holding every subnet of the LB
        (("sg-cidr-one",), 8080, LB, False),  # a CIDR holding one of its two subnets: not every node
        (("sg-any",), 8080, LB, True),  # everything from anywhere
        (("sg-lb", "sg-app"), 8080, LB, True),  # any one of the instance's groups
        (("sg-lb",), 8080, LB, False),  # the LB's own group does not admit itself on 8080
    ],
)
def test_admits_load_balancer(groups, port, lb, admitted):
    host = Host("subnet-priv-a", groups, public_ip=False)
    assert admits_load_balancer(host, port, lb[0], lb[1], VPC) is admitted


@pytest.mark.parametrize(
    "subnet,public_ip,vpc_changes,reach",
    [
        ("subnet-priv-a", False, {}, ALL),  # private subnet, NAT gateway
        ("subnet-priv-a", True, {}, ALL),
        ("subnet-pub-a", False, {}, NONE),  # the LB's public subnet without a public IP: item 6 of issue 19
        ("subnet-pub-a", True, {}, ALL),  # with one
        ("subnet-bare", True, {}, NONE),  # main table: local route only
        ("subnet-priv-a", False, {"nat_gateways": {}}, NONE),  # the NAT gateway is gone (or not available)
        (
            "subnet-priv-a",
            False,
            {"nat_gateways": {"nat-1": "subnet-priv-b"}},
            NONE,
        ),  # a NAT gateway in a private subnet
        ("subnet-pub-a", True, {"attached_gateways": {}}, NONE),  # the internet gateway is detached
        ("subnet-nowhere", True, {}, NONE),  # an unknown subnet
        # VPC endpoints: interface ones (private DNS) for the whole VPC, gateway ones for their route tables.
        (
            "subnet-bare",
            False,
            {"endpoints": (Endpoint("vpc-1", "ssm", "Interface"), Endpoint("vpc-1", "logs", "Interface"))},
            frozenset({"ssm", "logs"}),
        ),
        ("subnet-bare", False, {"endpoints": (Endpoint("vpc-1", "ssm", "Interface", private_dns=False),)}, NONE),
        ("subnet-bare", False, {"endpoints": (Endpoint("vpc-1", "ssm", "Interface", available=False),)}, NONE),
        ("subnet-bare", False, {"endpoints": (Endpoint("vpc-2", "ssm", "Interface"),)}, NONE),
        (
            "subnet-bare",
            False,
            {"endpoints": (Endpoint("vpc-1", "s3", "Gateway", route_tables=("rtb-main",)),)},
            frozenset({"s3"}),
        ),
        ("subnet-bare", False, {"endpoints": (Endpoint("vpc-1", "s3", "Gateway", route_tables=("rtb-priv",)),)}, NONE),
    ],
)
def test_endpoint_reach(subnet, public_ip, vpc_changes, reach):
    assert endpoint_reach(Host(subnet, ("sg-app",), public_ip), replace(VPC, **vpc_changes)) == reach


@pytest.mark.parametrize(
    "subnet,table",
    [("subnet-priv-a", "rtb-priv"), ("subnet-bare", "rtb-main"), ("subnet-nowhere", None)],
)
def test_route_table_of_a_subnet_is_its_own_else_the_main_one(subnet, table):
    assert route_table_of(subnet, VPC) == table


@pytest.mark.parametrize(
    "name,service",
    [
        ("com.amazonaws.us-east-1.ssm", "ssm"),
        ("com.amazonaws.eu-west-1.logs", "logs"),
        ("com.amazonaws.us-east-1.s3", "s3"),
        ("com.amazonaws.us-east-1.ecr.api", "ecr"),
        ("com.amazonaws.us-east-1.monitoring", "monitoring"),
    ],
)
def test_endpoint_service_is_the_signing_name(name, service):
    assert endpoint_service(name) == service


SIGNED = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1:4566\r\nX-Amz-Target: AmazonSSM.GetParameters\r\n"
    b"Authorization: AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20261205/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=abc\r\n\r\n"
)


@pytest.mark.parametrize(
    "head,service",
    [
        (SIGNED, "ssm"),
        (SIGNED.replace(b"/ssm/", b"/logs/"), "logs"),
        (SIGNED.replace(b"Authorization", b"authorization"), "ssm"),
        (
            b"GET /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F20261205%2Fus-east-1%2Fs3%2Faws4_request HTTP/1.1\r\nHost: x\r\n\r\n",
            "s3",
        ),
        (b"GET / HTTP/1.1\r\nHost: 127.0.0.1:4566\r\n\r\n", None),  # unsigned
        (b"GET / HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n", None),
    ],
)
def test_service_of_a_request_is_its_credential_scope(head, service):
    assert service_of(head) == service


@pytest.mark.parametrize(
    "reach,service,passes",
    [
        (ALL, "ssm", True),
        (ALL, None, True),
        (NONE, "ssm", False),
        (frozenset({"ssm"}), "ssm", True),
        (frozenset({"ssm"}), "logs", False),
        (frozenset({"ssm"}), None, False),
    ],
)
def test_reaches(reach, service, passes):
    assert reaches(reach, service) is passes
