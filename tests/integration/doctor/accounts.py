"""Account shapes for doctor's tests, built on a moto server as a team's infrastructure code would.

``healthy`` builds what a first release needs, in two zones: public subnets
(routed to an internet gateway) holding the load balancer and a NAT gateway,
private subnets routed to the NAT gateway for the instances, an instance
security group that admits the load balancer's on the app port, the slot
target groups in the listener's weighted forward, an ALB 5xx alarm and the
source AMI. Each test breaks one thing of it.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolkit import config, iam
from toolkit.aws import Aws, once_settled
from toolkit.local.environment import LocalEnvironment

APP_PORT = 8080
DRAIN = 30
_numbers = itertools.count(1)


@dataclass
class Shape:
    """One environment's names and ids, and the rodeo.yml settings that point at them."""

    name: str
    region: str
    aws: Aws
    vpc: str = ""
    zones: tuple[str, ...] = ()
    public: list[str] = field(default_factory=list)
    private: list[str] = field(default_factory=list)
    public_table: str = ""
    private_table: str = ""
    igw: str = ""
    nat: str = ""
    lb_sg: str = ""
    app_sg: str = ""
    lb_arn: str = ""
    listener: str = ""
    groups: dict[str, str] = field(default_factory=dict)
    ami: str = ""
    settings: dict = field(default_factory=dict)  # rodeo.yml, changed by the tests before write()

    @property
    def ec2(self) -> Any:
        return self.aws.client("ec2")

    @property
    def elbv2(self) -> Any:
        return self.aws.client("elbv2")

    def forward(self, **extra: Any) -> list[dict]:
        """The listener's weighted forward to both slots (blue 100)."""
        targets = [
            {"TargetGroupArn": self.groups["blue"], "Weight": 100},
            {"TargetGroupArn": self.groups["green"], "Weight": 0},
        ]
        return [{"Type": "forward", "ForwardConfig": {"TargetGroups": targets, **extra}}]

    def write(self, root: Path, stack: str = "local") -> config.Config:
        """Write ``inventories/<name>/rodeo.yml`` under ``root`` and load it."""
        for rel in ("p.yml", "t.py"):
            (root / rel).touch()
        folder = root / "inventories" / self.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "rodeo.yml").write_text(yaml.safe_dump(dict(self.settings, stack=stack), sort_keys=False))
        return config.load(self.name, root)


def healthy(url: str, region: str = "us-east-1") -> Shape:
    """A healthy environment of its own (its own VPC, names and AMI) on the moto server at ``url``."""
    n = next(_numbers)
    shape = Shape(f"doc{n}", region, LocalEnvironment(region=region, endpoint=url))
    ec2 = shape.ec2
    shape.vpc = ec2.create_vpc(CidrBlock=f"10.{n}.0.0/16")["Vpc"]["VpcId"]
    shape.zones = tuple(z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"][:3])
    shape.igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=shape.igw, VpcId=shape.vpc)
    shape.public = [
        ec2.create_subnet(VpcId=shape.vpc, CidrBlock=f"10.{n}.{i}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
        for i, z in enumerate(shape.zones[:2])
    ]
    shape.private = [
        ec2.create_subnet(VpcId=shape.vpc, CidrBlock=f"10.{n}.{10 + i}.0/24", AvailabilityZone=z)["Subnet"]["SubnetId"]
        for i, z in enumerate(shape.zones[:2])
    ]
    shape.public_table = _table(ec2, shape.vpc, shape.public, GatewayId=shape.igw)
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    shape.nat = ec2.create_nat_gateway(SubnetId=shape.public[0], AllocationId=eip)["NatGateway"]["NatGatewayId"]
    shape.private_table = _table(ec2, shape.vpc, shape.private, NatGatewayId=shape.nat)
    shape.lb_sg = ec2.create_security_group(GroupName=f"{shape.name}-lb", Description="load balancer", VpcId=shape.vpc)[
        "GroupId"
    ]
    shape.app_sg = ec2.create_security_group(GroupName=f"{shape.name}-app", Description="instances", VpcId=shape.vpc)[
        "GroupId"
    ]
    once_settled(
        lambda: ec2.authorize_security_group_ingress(
            GroupId=shape.app_sg,
            IpPermissions=[  # AWS: a new group settles first
                {
                    "IpProtocol": "tcp",
                    "FromPort": APP_PORT,
                    "ToPort": APP_PORT,
                    "UserIdGroupPairs": [{"GroupId": shape.lb_sg}],
                }
            ],
        )
    )
    _load_balancer(shape)
    shape.ami = ec2.register_image(
        Name=f"{shape.name}-debian-12", Architecture="x86_64", RootDeviceName="/dev/xvda", VirtualizationType="hvm"
    )["ImageId"]
    shape.aws.client("cloudwatch").put_metric_alarm(
        AlarmName=f"{shape.name}-5xx",
        Namespace="AWS/ApplicationELB",
        MetricName="HTTPCode_Target_5XX_Count",
        Dimensions=[{"Name": "LoadBalancer", "Value": shape.lb_arn.split(":loadbalancer/")[-1]}],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )
    shape.settings = {
        "app": shape.name,
        "region": region,
        "images": {
            "base": {
                "source_ami": {"name": f"{shape.name}-debian-*", "owners": ["self"]},
                "playbook": "p.yml",
                "tests": "t.py",
            }
        },
        "release": {
            "load_balancer": shape.name,
            "image": "base",
            "slots": {"blue": f"{shape.name}-blue", "green": f"{shape.name}-green"},
            "pause_seconds": 180,
            "alarms": [f"{shape.name}-5xx"],
            "subnets": list(shape.private),
            "security_groups": [shape.app_sg],
            "smoke_check": {"path": "/health", "port": 8081},
        },
    }
    return shape


def _table(ec2: Any, vpc: str, subnets: list[str], **target: str) -> str:
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", **target)
    for subnet in subnets:
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)
    return table


def _load_balancer(shape: Shape) -> None:
    elbv2 = shape.elbv2
    shape.lb_arn = elbv2.create_load_balancer(
        Name=shape.name, Subnets=shape.public, SecurityGroups=[shape.lb_sg], Type="application"
    )["LoadBalancers"][0]["LoadBalancerArn"]
    for slot in ("blue", "green"):
        arn = elbv2.create_target_group(
            Name=f"{shape.name}-{slot}", Protocol="HTTP", Port=APP_PORT, VpcId=shape.vpc, TargetType="instance"
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.modify_target_group_attributes(
            TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(DRAIN)}]
        )
        shape.groups[slot] = arn
    shape.listener = elbv2.create_listener(
        LoadBalancerArn=shape.lb_arn, Protocol="HTTP", Port=80, DefaultActions=shape.forward()
    )["Listeners"][0]["ListenerArn"]


def user_with(shape: Shape, policy: dict, monkeypatch: Any) -> Aws:
    """Clients calling as a new IAM user holding only ``policy`` (its keys in this process's environment)."""
    iam_client = shape.aws.client("iam")
    user = f"{shape.name}-caller"
    iam_client.create_user(UserName=user)
    arn = iam_client.create_policy(PolicyName=f"{shape.name}-policy", PolicyDocument=json.dumps(policy))["Policy"][
        "Arn"
    ]
    iam_client.attach_user_policy(UserName=user, PolicyArn=arn)
    key = iam_client.create_access_key(UserName=user)["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    return Aws(region=shape.region, endpoint=shape.aws.endpoint)


def rodeo_policy(cfg: config.Config) -> dict:
    """``invoke iam-policy --for all`` of ``cfg``, and ``--for doctor`` (what doctor itself reads)."""
    return iam.policy(cfg, (*iam.PURPOSES, iam.DOCTOR))
