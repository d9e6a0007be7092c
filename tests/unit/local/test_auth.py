"""The local stack's principals, in moto's models in this process (no server): the admin, and the instance role's credentials."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from toolkit.aws import LOCAL_CREDENTIALS
from toolkit.local import auth, imds
from toolkit.local.imds import Identity

ACCOUNT = "123456789012"
WHO = Identity(instance_id="i-0abc", image_id="ami-1", instance_type="t3.micro", region="us-east-1", zone="us-east-1a",
               account=ACCOUNT, private_ip="10.0.0.5", role="web-instance")
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
    assert user.name == auth.ADMIN_USER and [k.secret_access_key for k in user.access_keys] == [LOCAL_CREDENTIALS["aws_secret_access_key"]]
    assert list(backend.access_keys) == [LOCAL_CREDENTIALS["aws_access_key_id"]]  # moto finds the account by it
    assert json.loads(backend.get_user_policy(auth.ADMIN_USER, "rodeo-local-admin")["policy_document"]) == auth.ADMIN_POLICY


def test_an_instance_gets_its_roles_credentials_from_sts(moto_models):
    from moto.sts.models import sts_backends

    assert imds.role_credentials(WHO, NOW) is None  # no such role: no credentials (an instance without a profile)
    moto_models.create_role(RoleName="web-instance", AssumeRolePolicyDocument="{}")
    first = imds.role_credentials(WHO, NOW)
    assumed = sts_backends[ACCOUNT]["aws"].assumed_roles
    assert [(a.access_key_id, a.session_token, a.role_arn, a.session_name) for a in assumed] == [
        (first["AccessKeyId"], first["Token"], f"arn:aws:iam::{ACCOUNT}:role/web-instance", "i-0abc")]
    assert imds.role_credentials(WHO, NOW + 3600) == first  # the same until an hour before they expire
    renewed = imds.role_credentials(WHO, NOW + (imds.CREDENTIAL_HOURS - 1) * 3600 + 1)
    assert renewed["AccessKeyId"] != first["AccessKeyId"] and renewed["Expiration"] > first["Expiration"] and len(assumed) == 2
