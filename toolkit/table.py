"""The app's DynamoDB table, ``rodeo-<app>``: its name, and making it.

Every feature that keeps state in DynamoDB keeps it here, under its own
partition key: the locks (``toolkit.lock``: ``<env>#lock``, ``bake#lock``),
the release ledger and its counter (``toolkit.release.ledger``:
``<env>#release``, ``<env>#counter``), config versions
(``toolkit.configvars.store``: ``<env>#config``) and the size ``invoke
scale`` set (``toolkit.release.scaled``: ``<env>#scale``). ``invoke setup``
makes the table (``ensure_table``); until then each of them raises
``missing_table``'s error.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from toolkit.aws import error_code
from toolkit.config import Config
from toolkit.errors import TableMissing


def table_name(config: Config) -> str:
    """The DynamoDB table holding the app's lock and ledger."""
    return f"rodeo-{config.app}"


def missing_table(config: Config) -> TableMissing:
    """The error for a call that found no table: a bake's lock, a release's ledger, a config version alike."""
    return TableMissing(
        f"DynamoDB table {table_name(config)!r} does not exist in {config.region}",
        f"create it with 'invoke setup --env {config.env}'",
    )


def ensure_table(config: Config, aws: Any) -> bool:
    """Create the table (on-demand billing) unless it exists; True if created."""
    ddb = aws.client("dynamodb")
    name = table_name(config)
    try:
        ddb.describe_table(TableName=name)
        return False
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    try:
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": "rodeo:app", "Value": config.app}],
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "ResourceInUseException":
            raise
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return True


def put_item(config: Config, aws: Any, item: dict) -> None:
    """Write ``item`` to the app's table (over an item of its key); ``missing_table``'s error when there is no table."""
    try:
        aws.client("dynamodb").put_item(TableName=table_name(config), Item=item)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise missing_table(config) from None
        raise
