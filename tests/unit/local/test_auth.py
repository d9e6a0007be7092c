"""The local stack's principals, in moto's models in this process (no server): the admin, and the instance role's credentials."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from toolkit.local import auth, imds
from toolkit.local.auth import LOCAL_CREDENTIALS
from toolkit.local.imds import Identity

ACCOUNT = "123456789012"
WHO = Identity(
    instance_id="i-0abc",
    image_id="ami-1",
    instance_type="t3.micro",
    region="us-east-1",
    zone="us-east-1a",
    account=ACCOUNT,
    private_ip="10.0.0.5",
    role="web-instance",
)
NOW = 1_800_000_000.0


@pytest.fixture
def moto_models():
    with mock_aws():
        imds._issued.clear()
        yield boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    imds._issued.clear()


def test_the_admin_holds_the_local_credentials(moto_models):
    from moto.iam.models import iam_backends

    auth.make_admin()
    auth.make_admin()  # once only
    backend = iam_backends[ACCOUNT]["aws"]
    user = backend.get_user_from_access_key_id(LOCAL_CREDENTIALS["aws_access_key_id"])
    assert user.name == auth.ADMIN_USER and [k.secret_access_key for k in user.access_keys] == [
        LOCAL_CREDENTIALS["aws_secret_access_key"]
    ]
    assert list(backend.access_keys) == [LOCAL_CREDENTIALS["aws_access_key_id"]]  # moto finds the account by it
    assert (
        json.loads(backend.get_user_policy(auth.ADMIN_USER, "rodeo-local-admin")["policy_document"])
        == auth.ADMIN_POLICY
    )


def test_an_instance_gets_its_roles_credentials_from_sts(moto_models):
    from moto.sts.models import sts_backends

    assert imds.role_credentials(WHO, NOW) is None  # no such role: no credentials (an instance without a profile)
    moto_models.create_role(RoleName="web-instance", AssumeRolePolicyDocument="{}")
    first = imds.role_credentials(WHO, NOW)
    assumed = sts_backends[ACCOUNT]["aws"].assumed_roles
    assert [(a.access_key_id, a.session_token, a.role_arn, a.session_name) for a in assumed] == [
        (first["AccessKeyId"], first["Token"], f"arn:aws:iam::{ACCOUNT}:role/web-instance", "i-0abc")
    ]
    assert imds.role_credentials(WHO, NOW + 3600) == first  # the same until an hour before they expire
    renewed = imds.role_credentials(WHO, NOW + (imds.CREDENTIAL_HOURS - 1) * 3600 + 1)
    assert (
        renewed["AccessKeyId"] != first["AccessKeyId"]
        and renewed["Expiration"] > first["Expiration"]
        and len(assumed) == 2
    )


def test_an_instance_launched_from_a_template_has_its_instance_profile(moto_models, monkeypatch):
    """As on EC2 (moto 5.2 associates a profile only when RunInstances names it): an Auto Scaling group's instances too."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.instances import InstanceBackend

    monkeypatch.setattr(InstanceBackend, "run_instances", InstanceBackend.run_instances)  # put back after the test
    auth._instance_profiles_from_launch_templates()

    moto_models.create_role(RoleName="web-instance", AssumeRolePolicyDocument="{}")
    moto_models.create_instance_profile(InstanceProfileName="web-instance")
    moto_models.add_role_to_instance_profile(InstanceProfileName="web-instance", RoleName="web-instance")
    ec2 = boto3.client("ec2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    for name, data in (("with", {"IamInstanceProfile": {"Name": "web-instance"}}), ("without", {})):
        ec2.create_launch_template(
            LaunchTemplateName=name, LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.micro", **data}
        )
    asg = boto3.client("autoscaling", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    asg.create_auto_scaling_group(
        AutoScalingGroupName="g",
        LaunchTemplate={"LaunchTemplateName": "with", "Version": "1"},
        MinSize=2,
        MaxSize=2,
        DesiredCapacity=2,
        AvailabilityZones=["us-east-1a"],
    )
    bare = ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "without"}, MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    grouped = [i["InstanceId"] for i in asg.describe_auto_scaling_groups()["AutoScalingGroups"][0]["Instances"]]
    associations = ec2_backends[ACCOUNT]["us-east-1"].iam_instance_profile_associations
    assert len(grouped) == 2 and {associations[i].iam_instance_profile.roles[0].name for i in grouped} == {
        "web-instance"
    }
    assert bare not in associations


@pytest.mark.parametrize(
    ("moto_calls", "iam_calls"),
    [
        ("monitoring:PutMetricData", "cloudwatch:PutMetricData"),
        ("s3:ListObjectsV2", "s3:ListBucket"),
        ("s3:GetObject", "s3:GetObject"),
        ("ec2:RunInstances", "ec2:RunInstances"),
    ],
)
def test_the_action_authorized_is_iams_name_for_it(moto_calls, iam_calls):
    assert auth.iam_action(moto_calls) == iam_calls
