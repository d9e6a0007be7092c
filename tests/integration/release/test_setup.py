"""``invoke setup`` before and after the first bake, on the local stack (which refuses a group on a template without an AMI, as AWS does)."""

from __future__ import annotations

import botocore.exceptions
import pytest

from tests.integration.release.conftest import World, make_config
from toolkit.local import seed
from toolkit.release import setup


@pytest.fixture
def bare(moto_stack, project):
    """An environment with only the team's infrastructure (load balancer, listener, target groups): no AMI, nothing of Rodeo's."""
    st, url = moto_stack
    world = World(make_config(project), url, st)
    seed._load_balancer(world.cfg, world.aws, world.cfg.release)
    return world


def _groups(world) -> dict[str, tuple[str, str | None]]:
    """Slot group -> (pinned version, its AMI)."""
    rel, ec2 = world.cfg.release, world.aws.client("ec2")
    found = world.aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=sorted(rel.slots.values())
    )["AutoScalingGroups"]
    out = {}
    for group in found:
        version = group["LaunchTemplate"]["Version"]
        data = ec2.describe_launch_template_versions(LaunchTemplateName=f"rodeo-{world.cfg.app}", Versions=[version])[
            "LaunchTemplateVersions"
        ][0]
        out[group["AutoScalingGroupName"]] = (version, data["LaunchTemplateData"].get("ImageId"))
    return out


def test_setup_before_the_first_bake_waits_then_a_setup_after_it_completes(bare):
    app = bare.cfg.app
    first = setup.ensure(bare.cfg, bare.aws)
    assert first["created"] == [f"dynamodb table rodeo-{app}", f"log group /rodeo/{app}/test (retention 30 days)"]
    assert first["waiting"] == [
        f"launch template rodeo-{app} and slot groups {app}-blue, {app}-green: image 'app' has no verified AMI yet "
        "(AWS refuses a group on a template without one); run 'invoke bake --image app', then 'invoke setup' again"
    ]
    with pytest.raises(botocore.exceptions.ClientError):
        bare.aws.client("ec2").describe_launch_templates(LaunchTemplateNames=[f"rodeo-{app}"])
    assert _groups(bare) == {}
    ami = bare.ami()  # the first bake
    second = setup.ensure(bare.cfg, bare.aws)
    assert second["created"] == [
        f"launch template rodeo-{app}",
        f"auto scaling group {app}-blue",
        f"auto scaling group {app}-green",
    ]
    assert second["waiting"] == []
    assert _groups(bare) == {f"{app}-blue": ("1", ami), f"{app}-green": ("1", ami)}
    assert setup.ensure(bare.cfg, bare.aws)["created"] == []


def test_setup_completes_a_template_an_older_setup_made_without_an_ami(bare):
    app = bare.cfg.app
    bare.aws.client("ec2").create_launch_template(
        LaunchTemplateName=f"rodeo-{app}", LaunchTemplateData={"InstanceType": "t3.micro"}
    )
    assert setup.ensure(bare.cfg, bare.aws)["waiting"] != []
    ami = bare.ami()
    done = setup.ensure(bare.cfg, bare.aws)
    assert done["created"][:3] == [
        f"launch template rodeo-{app} v2 ({ami}: its versions had no AMI)",
        f"auto scaling group {app}-blue",
        f"auto scaling group {app}-green",
    ]
    assert _groups(bare) == {f"{app}-blue": ("2", ami), f"{app}-green": ("2", ami)}
