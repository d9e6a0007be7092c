"""The local stack in several regions: each region's seeded ids and range (pure), and a two-region seeding in moto."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import boto3
import botocore
import pytest
import yaml
from moto import mock_aws

from toolkit import config, regions
from toolkit.errors import StackError
from toolkit.local import motoserver, seed, stack

motoserver._custom_network_ids()  # as the stack's moto server does at start (once per process)

WEST = "us-west-2"


@pytest.mark.parametrize(
    "region, subnets, group, cidr",
    [
        # us-east-1's are the ids inventories/local/rodeo.yml names: never changed.
        ("us-east-1", ("subnet-0c0ffee00000000a1", "subnet-0c0ffee00000000b1"), "sg-0c0ffee0000000001", "10.80.0.0/16"),
        (WEST, ("subnet-0c0ffee00000000a2", "subnet-0c0ffee00000000b2"), "sg-0c0ffee0000000002", "10.81.0.0/16"),
        ("eu-west-1", ("subnet-0c0ffee00000000a3", "subnet-0c0ffee00000000b3"), "sg-0c0ffee0000000003", "10.82.0.0/16"),
        (
            "mx-central-1",
            ("subnet-0c0ffee0000000a22", "subnet-0c0ffee0000000b22"),
            "sg-0c0ffee0000000022",
            "10.113.0.0/16",
        ),
    ],
)
def test_each_region_has_its_own_fixed_ids_and_range(region, subnets, group, cidr):
    assert (seed.private_subnets(region), seed.instance_sg(region), seed.vpc_cidr(region)) == (subnets, group, cidr)


def test_no_two_regions_share_an_id_or_an_address():
    ids = [i for r in seed.REGIONS for i in (*seed.private_subnets(r), seed.instance_sg(r))]
    cidrs = [seed.vpc_cidr(r) for r in seed.REGIONS]
    assert len(set(ids)) == len(ids) == 3 * len(seed.REGIONS)
    assert len(set(cidrs)) == len(cidrs) and all(c.startswith("10.") and int(c.split(".")[1]) < 256 for c in cidrs)
    # As EC2 writes them: 17 hex digits after the prefix.
    assert all(len(i.split("-")[1]) == 17 and int(i.split("-")[1], 16) >= 0 for i in ids)
    assert (seed.PRIVATE_SUBNETS, seed.INSTANCE_SG) == (
        seed.private_subnets("us-east-1"),
        seed.instance_sg("us-east-1"),
    )


def test_every_commercial_region_botocore_knows_is_numbered():
    """Fails when botocore learns a region: append it to seed.REGIONS (never reorder: inventories name the ids)."""
    data = json.loads((Path(botocore.__file__).parent / "data" / "partitions.json").read_text())
    known = {r for part in data["partitions"] if part["id"] == "aws" for r in part["regions"] if r != "aws-global"}
    assert known - set(seed.REGIONS) == set()


def test_a_region_the_stack_does_not_number_is_refused_with_the_ones_it_does():
    with pytest.raises(StackError, match="seeds no VPC in cn-north-1") as caught:
        seed.private_subnets("cn-north-1")
    assert "us-west-2" in caught.value.hint


def test_a_name_several_regions_have_is_shown_with_its_region():
    by_region = {
        "us-east-1": {"web": {"80": "http://127.0.0.1:1"}, "api": {"80": "http://127.0.0.1:2"}},
        WEST: {"web": {"80": "http://127.0.0.1:3"}},
    }
    assert stack.labelled(by_region) == {
        "web (us-east-1)": {"80": "http://127.0.0.1:1"},
        "api": {"80": "http://127.0.0.1:2"},
        "web (us-west-2)": {"80": "http://127.0.0.1:3"},
    }


def waves_config(root: Path) -> config.Config:
    """An environment released in us-east-1, then us-west-2 on that region's seeded subnets and group."""
    for name in ("p.yml", "t.py"):
        (root / name).touch()
    data = {
        "app": "web",
        "stack": "local",
        "region": "us-east-1",
        "copy_to_regions": [WEST],
        "images": {"app": {"source_ami": {"name": "x-*", "owners": ["self"]}, "playbook": "p.yml", "tests": "t.py"}},
        "release": {
            "load_balancer": "web",
            "slots": {"blue": "web-blue", "green": "web-green"},
            "subnets": list(seed.PRIVATE_SUBNETS),
            "security_groups": [seed.INSTANCE_SG],
            "regions": [
                "us-east-1",
                {
                    "region": WEST,
                    "subnets": list(seed.private_subnets(WEST)),
                    "security_groups": [seed.instance_sg(WEST)],
                },
            ],
        },
    }
    (root / "inventories/waves").mkdir(parents=True)
    (root / "inventories/waves/rodeo.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return config.load("waves", root)


def test_the_release_side_of_every_region_is_one_seeding_and_another_set_of_regions_seeds_again(tmp_path):
    cfg = waves_config(tmp_path)
    west = regions.in_region(cfg, regions.waves(cfg)[1], first=False)
    assert (west.region, west.config_region, west.release.subnets) == (WEST, "us-east-1", seed.private_subnets(WEST))
    one = seed.seed_release(cfg).seed_key
    alone = config.load("waves", tmp_path)
    assert seed.seed_release(alone).seed_key == one
    home_only = dataclasses.replace(alone, release=dataclasses.replace(alone.release, regions=()))
    assert seed.seed_release(home_only).seed_key != one


def test_two_regions_are_seeded_each_with_its_own_vpc_ids_and_range():
    with mock_aws():
        made = {}
        for region in ("us-east-1", WEST):
            ec2 = boto3.client("ec2", region_name=region, aws_access_key_id="a", aws_secret_access_key="b")
            vpc = seed._network(ec2)
            assert seed._network(ec2) == vpc  # again: the one it made
            private = ec2.describe_subnets(
                Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "tag:rodeo:tier", "Values": ["private"]}]
            )["Subnets"]
            group = ec2.describe_security_groups(GroupIds=[seed.instance_sg(region)])["SecurityGroups"][0]
            made[region] = (
                ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["CidrBlock"],
                tuple(s["SubnetId"] for s in sorted(private, key=lambda s: s["AvailabilityZone"])),
                {s["AvailabilityZone"] for s in private},
                (group["GroupName"], group["VpcId"] == vpc),
            )
    assert made == {
        "us-east-1": (
            "10.80.0.0/16",
            seed.PRIVATE_SUBNETS,
            {"us-east-1a", "us-east-1b"},
            ("rodeo-local-instances", True),
        ),
        WEST: (
            "10.81.0.0/16",
            seed.private_subnets(WEST),
            {"us-west-2a", "us-west-2b"},
            ("rodeo-local-instances", True),
        ),
    }
