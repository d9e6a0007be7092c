"""A release's launch template version carries rodeo.yml's instance type and security groups (issue 19, item 16)."""

from __future__ import annotations

import dataclasses

from toolkit.release import rollout


def test_a_changed_instance_type_and_groups_reach_the_new_version(make_world):
    world = make_world()
    ec2 = world.aws.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    group = ec2.create_security_group(GroupName=f"{world.cfg.app}-app", Description="the app's instances", VpcId=vpc)[
        "GroupId"
    ]
    world.cfg = dataclasses.replace(
        world.cfg, release=dataclasses.replace(world.cfg.release, instance_type="t3.small", security_groups=(group,))
    )
    result = rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    assert result.outcome == "released"
    version = world.state().green.version
    data = ec2.describe_launch_template_versions(LaunchTemplateName=f"rodeo-{world.cfg.app}", Versions=[str(version)])[
        "LaunchTemplateVersions"
    ][0]["LaunchTemplateData"]
    assert (data["InstanceType"], data["SecurityGroupIds"]) == ("t3.small", [group])
