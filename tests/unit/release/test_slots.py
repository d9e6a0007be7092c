"""The listener actions a weight change sends: a pure table."""

from __future__ import annotations

from toolkit.release.slots import weighted_actions

TGS = {"blue": "arn:tg/blue", "green": "arn:tg/green"}
WEIGHTS = {"blue": 10, "green": 90}
FORWARD = {
    "TargetGroups": [{"TargetGroupArn": "arn:tg/blue", "Weight": 10}, {"TargetGroupArn": "arn:tg/green", "Weight": 90}]
}


def test_only_the_forwards_weights_change_and_an_oidc_action_keeps_its_secret():
    oidc = {
        "Type": "authenticate-oidc",
        "Order": 1,
        "AuthenticateOidcConfig": {"Issuer": "https://idp", "ClientId": "c", "ClientSecret": "s"},
    }
    cognito = {
        "Type": "authenticate-cognito",
        "Order": 2,
        "AuthenticateCognitoConfig": {"UserPoolArn": "arn:pool", "UserPoolClientId": "c"},
    }
    forward = {
        "Type": "forward",
        "Order": 3,
        "TargetGroupArn": "arn:tg/blue",
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": "arn:tg/blue", "Weight": 100}],
            "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 60},
        },
    }
    assert weighted_actions([oidc, cognito, forward], TGS, WEIGHTS) == [
        {
            "Type": "authenticate-oidc",
            "Order": 1,
            "AuthenticateOidcConfig": {"Issuer": "https://idp", "ClientId": "c", "UseExistingClientSecret": True},
        },
        cognito,
        {
            "Type": "forward",
            "Order": 3,
            "ForwardConfig": dict(FORWARD, TargetGroupStickinessConfig={"Enabled": True, "DurationSeconds": 60}),
        },
    ]


def test_a_lone_forward_and_a_list_without_one():
    assert weighted_actions([{"Type": "forward", "TargetGroupArn": "arn:tg/blue"}], TGS, WEIGHTS) == [
        {"Type": "forward", "ForwardConfig": FORWARD}
    ]
    assert weighted_actions([], TGS, WEIGHTS) == [{"Type": "forward", "ForwardConfig": FORWARD}]
