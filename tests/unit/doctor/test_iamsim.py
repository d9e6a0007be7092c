"""The local stack's SimulatePrincipalPolicy and GetEbsDefaultKmsKeyId (toolkit.local.iamsim), checked against moto 5.2.6."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from moto.ec2.responses.elastic_block_store import ElasticBlockStore
from moto.iam.responses import IamResponse

from toolkit.local import iamsim


def test_moto_has_neither_call_of_its_own():
    """Fails when moto grows either call: then drop the patch and check moto's against AWS's."""
    for cls, name in ((IamResponse, "simulate_principal_policy"), (ElasticBlockStore, "get_ebs_default_kms_key_id")):
        found = getattr(cls, name, None)
        assert found is None or found.__module__ == iamsim.__name__


@pytest.mark.parametrize(
    "operator, wanted, values, expected",
    [
        ("StringEquals", ["eu-west-1"], ["eu-west-1"], True),
        ("StringEquals", ["eu-west-1"], ["us-east-1"], False),
        ("StringEquals", ["eu-west-1"], None, False),  # a key the request lacks: no match
        ("StringEqualsIfExists", ["eu-west-1"], None, True),
        ("StringLike", ["rodeo-*"], ["rodeo-web"], True),
        ("StringNotEquals", ["a", "b"], ["c"], True),
        ("StringNotEquals", ["a", "b"], ["a"], False),
        ("Null", ["false"], ["x"], True),
        ("Null", ["false"], None, False),
        ("Null", ["true"], None, True),
        ("ForAllValues:StringEquals", ["bake#lock"], ["bake#lock"], True),
        ("ForAllValues:StringEquals", ["bake#lock"], ["bake#lock", "other"], False),
        ("ForAllValues:StringEquals", ["bake#lock"], None, True),  # an empty set: AWS's documented pitfall
        ("ForAnyValue:StringEquals", ["a"], ["b", "a"], True),
        ("Bool", ["true"], ["true"], True),
        ("NumericLessThan", ["5"], ["3"], False),  # not simulated here: never a more forgiving answer
    ],
)
def test_condition_holds(operator, wanted, values, expected):
    assert iamsim.condition_holds(operator, wanted, values) is expected


ALLOW_DESCRIBE = {
    "Effect": "Allow",
    "Action": "ec2:Describe*",
    "Resource": "*",
    "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}},
}


@pytest.mark.parametrize(
    "statements, context, expected",
    [
        ([ALLOW_DESCRIBE], {"aws:requestedregion": ["eu-west-1"]}, ("allowed", ["p"], set())),
        (
            [ALLOW_DESCRIBE],
            {"aws:requestedregion": ["us-east-1"]},
            ("implicitDeny", [], set()),
        ),  # an Allow whose condition fails is not a Deny
        ([ALLOW_DESCRIBE], {}, ("implicitDeny", [], {"aws:RequestedRegion"})),
        (
            [ALLOW_DESCRIBE, {"Effect": "Deny", "Action": "ec2:*", "Resource": "*"}],
            {"aws:requestedregion": ["eu-west-1"]},
            ("explicitDeny", ["p"], set()),
        ),
        ([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}], {}, ("allowed", ["p"], set())),
        (
            [{"Effect": "Allow", "Action": "ec2:DescribeImages", "Resource": "arn:aws:ec2:*::image/*"}],
            {},
            ("implicitDeny", [], set()),
        ),  # asked for "*"
    ],
)
def test_decide(statements, context, expected):
    assert (
        iamsim.decide([("p", {"Version": "2012-10-17", "Statement": statements})], "ec2:DescribeImages", "*", context)
        == expected
    )


@mock_aws
def test_simulate_principal_policy_through_boto(monkeypatch):
    monkeypatch.setattr(IamResponse, "simulate_principal_policy", None, raising=False)
    monkeypatch.setattr(ElasticBlockStore, "get_ebs_default_kms_key_id", None, raising=False)
    iamsim.install()
    iam = boto3.client("iam", region_name="eu-west-1")
    iam.create_user(UserName="ci")
    iam.create_group(GroupName="deployers")
    iam.add_user_to_group(GroupName="deployers", UserName="ci")
    iam.put_group_policy(
        GroupName="deployers",
        PolicyName="describe",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [ALLOW_DESCRIBE]}),
    )
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "ec2:DescribeSubnets", "Resource": "*"}],
    }
    iam.attach_user_policy(
        UserName="ci",
        PolicyArn=iam.create_policy(PolicyName="no-subnets", PolicyDocument=json.dumps(deny))["Policy"]["Arn"],
    )
    results = iam.simulate_principal_policy(
        PolicySourceArn="arn:aws:iam::123456789012:user/ci",
        ActionNames=["ec2:DescribeImages", "ec2:DescribeSubnets", "ec2:RunInstances"],
        ContextEntries=[
            {"ContextKeyName": "aws:RequestedRegion", "ContextKeyValues": ["eu-west-1"], "ContextKeyType": "string"}
        ],
    )["EvaluationResults"]
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in results] == [
        ("ec2:DescribeImages", "allowed"),
        ("ec2:DescribeSubnets", "explicitDeny"),
        ("ec2:RunInstances", "implicitDeny"),
    ]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.simulate_principal_policy(
            PolicySourceArn="arn:aws:iam::123456789012:user/nobody", ActionNames=["ec2:DescribeImages"]
        )
    assert boto3.client("ec2", region_name="eu-west-1").get_ebs_default_kms_key_id()["KmsKeyId"] == "alias/aws/ebs"
