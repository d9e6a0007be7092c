"""What doctor asks the policy simulator, as tables (no AWS)."""

from __future__ import annotations

import pytest

from tests.support.stacks import release_env
from toolkit import iam
from toolkit.doctor import ACTIONS, rights


@pytest.mark.parametrize(
    "arn, expected",
    [
        ("arn:aws:iam::111122223333:user/ci", ("user", "arn:aws:iam::111122223333:user/ci")),
        ("arn:aws:iam::111122223333:user/team/ci", ("user", "arn:aws:iam::111122223333:user/team/ci")),
        ("arn:aws:sts::111122223333:assumed-role/Deployer/me@acme.com", ("role", "Deployer")),
        ("arn:aws:iam::111122223333:role/path/Deployer", ("role", "Deployer")),
        ("arn:aws:iam::111122223333:root", None),
        ("arn:aws:sts::111122223333:federated-user/me", None),
        ("arn:aws:sts::123456789012:user/moto", None),
        ("not-an-arn", None),
    ],
)
def test_simulated_principal(arn, expected):
    assert rights.simulated_principal(arn) == expected


@pytest.mark.parametrize(
    "arn, expected",
    [
        ("*", "*"),
        ("arn:aws:ec2:eu-west-1:*:key-pair/rodeo-*", "arn:aws:ec2:eu-west-1:111122223333:key-pair/rodeo-doctor"),
        ("arn:aws:ec2:*::image/*", "arn:aws:ec2:eu-west-1::image/doctor"),
        ("arn:aws:dynamodb:eu-west-1:*:table/rodeo-web", "arn:aws:dynamodb:eu-west-1:111122223333:table/rodeo-web"),
        ("arn:aws:sns:eu-west-1:444455556666:deploys", "arn:aws:sns:eu-west-1:444455556666:deploys"),
    ],
)
def test_concrete_arn(arn, expected):
    assert rights.concrete_arn(arn, "eu-west-1", "111122223333") == expected


@pytest.mark.parametrize(
    "condition, expected",
    [
        ({}, (("aws:RequestedRegion", ("eu-west-1",)),)),
        (
            {"StringEquals": {"ec2:CreateAction": ["ImportKeyPair", "RunInstances"]}},
            (("aws:RequestedRegion", ("eu-west-1",)), ("ec2:CreateAction", ("ImportKeyPair",))),
        ),
        (
            {"Null": {"ec2:ResourceTag/rodeo:bake": "false"}},
            (("aws:RequestedRegion", ("eu-west-1",)), ("ec2:ResourceTag/rodeo:bake", ("doctor",))),
        ),
        (
            {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["bake#lock"]}},
            (("aws:RequestedRegion", ("eu-west-1",)), ("dynamodb:LeadingKeys", ("bake#lock",))),
        ),
    ],
)
def test_context_of(condition, expected):
    assert rights.context_of(condition, "eu-west-1") == expected


def test_the_questions_cover_every_action_of_iam_policy_for_all(tmp_path):
    cfg = release_env(tmp_path, "web", smoke_check={"port": 8081}, alarms=["web-5xx"], instance_profile="web-instance")
    asked = {a for q in rights.questions(cfg, "111122223333") for a in q.actions}
    wanted = set()
    for action in iam.actions(cfg, iam.PURPOSES):
        wanted |= set(rights.EXPANDED.get(action, (action,)))
    assert asked == wanted
    assert not any("*" in a for a in asked)  # the simulator takes action names, not patterns


def test_doctors_own_actions_are_reads():
    writes = [
        a for a in ACTIONS if not a.split(":")[1].startswith(("Describe", "Get", "List", "SimulatePrincipalPolicy"))
    ]
    assert writes == []
