"""Principals of a local stack other than its admin: IAM users holding exactly one policy, as a team would make them."""

from __future__ import annotations

import itertools
import json

from toolkit import iam
from toolkit.aws import Aws
from toolkit.config import Config
from toolkit.local.environment import LocalEnvironment

_users = itertools.count(1)


def user_with(admin: Aws, name: str, document: dict) -> dict:
    """Make IAM user ``name`` holding only ``document`` (a managed policy attached to it, as it is too large to be inline
    on AWS); return its access key as botocore's credentials."""
    client = admin.client("iam")
    client.create_user(UserName=name)
    arn = client.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]
    client.attach_user_policy(UserName=name, PolicyArn=arn)
    key = client.create_access_key(UserName=name)["AccessKey"]
    return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}


def acting_as(config: Config, url: str, purpose: str, document: dict | None = None) -> Aws:
    """Clients for ``config``'s environment on the local stack at ``url``, as a new user holding only
    ``invoke iam-policy --for <purpose>`` (or ``document``): what the policy leaves out, moto refuses."""
    admin = LocalEnvironment(region=config.region, endpoint=url)
    name = f"rodeo-{purpose}-{config.app}-{next(_users)}"
    return LocalEnvironment(
        region=config.region,
        endpoint=url,
        credentials=user_with(admin, name, document if document is not None else iam.policy(config, (purpose,))),
    )
