"""Fixtures for the bad-input corpus: the shared local stack (seeded for releases), AWS state snapshots.

Every case runs the command line in a copy of the project (``Project``) against
one moto server. No case may reach real AWS: credentials are removed and any
endpoint boto3 would pick by itself points at a closed loopback port.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from tests.integration.bakes import ec2, local_stack, project  # noqa: F401
from toolkit import config
from toolkit.local import stack
from toolkit.local.environment import LocalEnvironment
from toolkit.local.seed import BASE_AMI_NAME, seed_release

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
# Where boto3 would go when nothing names an endpoint: a closed port on this machine.
NOWHERE = "http://127.0.0.1:9"


@pytest.fixture(scope="session")
def seeded_stack(local_stack):  # noqa: F811
    """The shared stack with its release side (ALB, slots, table) made before any case runs."""
    s, url = local_stack
    stack.up(s, REGION, seeders=(seed_release(config.load("local", ROOT)),))
    return s, url


@pytest.fixture(autouse=True)
def no_real_aws(monkeypatch):
    """No credentials, no metadata service, and no endpoint off this machine for any subprocess."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "RODEO_DEBUG",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", NOWHERE)


@pytest.fixture()
def base_ami(seeded_stack, ec2) -> str:  # noqa: F811
    """The seeded Debian AMI: exists, but is neither verified nor tagged with an image."""
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [BASE_AMI_NAME]}])["Images"]
    return images[0]["ImageId"]


def aws_state(endpoint: str) -> dict:
    """What a refused command must leave alone: AMIs and their tags, snapshots, key pairs,
    security groups, live instances, launch template versions, slot groups, listener
    weights, the lock/ledger tables, and SSM parameters (config vars) with their versions."""
    vm, asg, elb, ddb, ssm = _clients(endpoint)
    live = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
    state = {
        "images": sorted((i["ImageId"], i["State"], _tags(i)) for i in vm.describe_images(Owners=["self"])["Images"]),
        "snapshots": sorted(s["SnapshotId"] for s in vm.describe_snapshots(OwnerIds=["self"])["Snapshots"]),
        "key_pairs": sorted(k["KeyName"] for k in vm.describe_key_pairs()["KeyPairs"]),
        "security_groups": sorted(g["GroupId"] for g in vm.describe_security_groups()["SecurityGroups"]),
        "instances": sorted(
            (i["InstanceId"], i["ImageId"])
            for r in vm.describe_instances(Filters=live)["Reservations"]
            for i in r["Instances"]
        ),
        "launch_templates": sorted(
            (
                v["LaunchTemplateName"],
                v["VersionNumber"],
                v["LaunchTemplateData"].get("ImageId"),
                v.get("DefaultVersion"),
            )
            for t in vm.describe_launch_templates()["LaunchTemplates"]
            for v in vm.describe_launch_template_versions(LaunchTemplateId=t["LaunchTemplateId"])[
                "LaunchTemplateVersions"
            ]
        ),
        "groups": sorted(
            (
                g["AutoScalingGroupName"],
                g["MinSize"],
                g["MaxSize"],
                g["DesiredCapacity"],
                json.dumps(g.get("LaunchTemplate"), sort_keys=True),
            )
            for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]
        ),
        "listeners": sorted(
            (lb["LoadBalancerName"], lst["Port"], json.dumps(lst["DefaultActions"], sort_keys=True, default=str))
            for lb in elb.describe_load_balancers()["LoadBalancers"]
            for lst in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        ),
        "tables": {
            t: sorted(json.dumps(item, sort_keys=True) for item in ddb.scan(TableName=t)["Items"])
            for t in ddb.list_tables()["TableNames"]
        },
        # Each group's scheduled actions, scaling policies, suspended processes and tags (scaling: in rodeo.yml).
        "scaling": sorted(
            (
                g["AutoScalingGroupName"],
                json.dumps(
                    asg.describe_scheduled_actions(AutoScalingGroupName=g["AutoScalingGroupName"])[
                        "ScheduledUpdateGroupActions"
                    ],
                    sort_keys=True,
                    default=str,
                ),
                json.dumps(
                    asg.describe_policies(AutoScalingGroupName=g["AutoScalingGroupName"])["ScalingPolicies"],
                    sort_keys=True,
                    default=str,
                ),
                sorted(p["ProcessName"] for p in g.get("SuspendedProcesses", [])),
                _tags(g),
            )
            for g in asg.describe_auto_scaling_groups()["AutoScalingGroups"]
        ),
        "parameters": sorted(
            (p["Name"], p["Version"])
            for page in ssm.get_paginator("describe_parameters").paginate()
            for p in page["Parameters"]
        ),
    }
    assert state["groups"] and state["listeners"], "the local stack's release side is not seeded"
    return state


@functools.lru_cache(maxsize=4)
def _clients(endpoint: str) -> tuple:
    """ec2, autoscaling, elbv2, dynamodb and ssm clients, made once: making one loads its service model (~0.3 s)."""
    aws = LocalEnvironment(region=REGION, endpoint=endpoint)
    return tuple(aws.client(s) for s in ("ec2", "autoscaling", "elbv2", "dynamodb", "ssm"))


def _tags(resource: dict) -> tuple:
    return tuple(sorted((t["Key"], t["Value"]) for t in resource.get("Tags", [])))
