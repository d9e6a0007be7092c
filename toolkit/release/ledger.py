"""The release ledger: one DynamoDB item per release, newest first.

Items live in the app's table ``rodeo-<app>`` (shared with the lock) under
``pk=<env>#release`` with ``sk=<started-at>#<id>``, so the last releases are
one ``Query`` in reverse order. Each entry holds the AMI and its git sha, the
config version released with it (and the one live before), the slots, the
steps reached, the outcome and reason, start and end times, and who ran it. The ledger is a record, not the truth: the listener and the
groups are (see ``toolkit.aws.release``).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import botocore.exceptions

from toolkit.aws import error_code
from toolkit.config import Config
from toolkit.errors import ReleaseError

FIELDS = ("id", "kind", "ami", "git_sha", "app_commit", "app_version", "from_ami", "to_ami", "new_slot", "old_slot", "steps", "outcome", "reason", "started_at", "ended_at", "by", "config_version", "from_config_version")


def table_name(config: Config) -> str:
    """The DynamoDB table holding the app's lock and ledger."""
    return f"rodeo-{config.app}"


def missing_table(config: Config) -> ReleaseError:
    return ReleaseError(f"DynamoDB table {table_name(config)!r} does not exist in {config.region}", f"create it with 'invoke setup --env {config.env}'")


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
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": "rodeo:app", "Value": config.app}],
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "ResourceInUseException":
            raise
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return True


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def start(config: Config, aws: Any, entry: dict) -> dict:
    """Record a release that begins; returns the entry with its ``id`` and ``sk``."""
    entry = dict(entry, id=entry.get("id") or uuid.uuid4().hex[:12], started_at=entry.get("started_at") or now(), outcome="in_progress", steps=list(entry.get("steps", [])))
    entry["sk"] = f"{entry['started_at']}#{entry['id']}"
    _put(config, aws, entry)
    return entry


def update(config: Config, aws: Any, entry: dict, **changes: Any) -> dict:
    """Write ``changes`` into the entry (steps reached, outcome, reason, end time)."""
    entry = dict(entry, **changes)
    _put(config, aws, entry)
    return entry


def recent(config: Config, aws: Any, limit: int = 10) -> list[dict]:
    """The last ``limit`` entries, newest first."""
    try:
        items = aws.client("dynamodb").query(
            TableName=table_name(config),
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"{config.env}#release"}},
            ScanIndexForward=False,
            Limit=limit,
        )["Items"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise missing_table(config) from None
        raise
    return [json.loads(i["data"]["S"]) for i in items]


def _put(config: Config, aws: Any, entry: dict) -> None:
    item = {"pk": {"S": f"{config.env}#release"}, "sk": {"S": entry["sk"]}, "data": {"S": json.dumps(entry, sort_keys=True, default=str)}}
    for k in ("outcome", "ami"):
        if entry.get(k):
            item[k] = {"S": str(entry[k])}
    try:
        aws.client("dynamodb").put_item(TableName=table_name(config), Item=item)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise missing_table(config) from None
        raise
