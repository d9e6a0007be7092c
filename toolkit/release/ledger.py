"""The release ledger: one DynamoDB item per release, newest first.

Items live in the app's table ``rodeo-<app>`` (``toolkit.table``; shared with the lock) under
``pk=<env>#release`` with ``sk=<started-at>#<id>``, so the last releases are
one ``Query`` in reverse order. Each entry holds the AMI and its git sha, the
config version released with it (and the one live before), the slots, the
steps reached, the outcome and reason, start and end times, and who ran it
(``by``: user@host; ``aws_caller``: the AWS principal; ``git_author``: the
git identity where it ran), and when it ends its ``timeline`` (when weights
moved and gates passed: what its picture marks, ``toolkit.release.report``). The ledger is a record, not the truth: the
listener and the groups are (see ``toolkit.release.slots``).

Each entry has a ``number`` (v1, v2, ... per environment, Heroku's release
numbers): one atomic ``UpdateItem ... ADD`` on the counter item
``pk=<env>#counter, sk=release`` hands it out, so two runs can never get the
same number (the release lock already keeps them apart; the counter does not
rely on it). A run killed between taking its number and writing its entry
leaves a gap, never a duplicate.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import botocore.exceptions

from toolkit.aws import error_code
from toolkit.config import Config
from toolkit.table import missing_table, put_item, table_name

FIELDS = (
    "id",
    "number",
    "kind",
    "ami",
    "git_sha",
    "app_commit",
    "app_version",
    "from_ami",
    "to_ami",
    "new_slot",
    "old_slot",
    "steps",
    "outcome",
    "reason",
    "started_at",
    "ended_at",
    "by",
    "aws_caller",
    "git_author",
    "config_version",
    "from_config_version",
    "restores",
    "promoted_from",
    "timeline",
)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def epoch(stamp: str) -> float:
    """Epoch seconds of a ledger time (``now``'s ISO 8601)."""
    return datetime.fromisoformat(stamp).timestamp()


def start(config: Config, aws: Any, entry: dict) -> dict:
    """Record a release that begins; returns the entry with its ``id``, ``number`` and ``sk``."""
    entry = dict(
        entry,
        id=entry.get("id") or uuid.uuid4().hex[:12],
        started_at=entry.get("started_at") or now(),
        outcome="in_progress",
        steps=list(entry.get("steps", [])),
    )
    entry["number"] = entry.get("number") or next_number(config, aws)
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


def every(config: Config, aws: Any) -> list[dict]:
    """Every entry of the environment, newest first (all pages)."""
    ddb = aws.client("dynamodb")
    args = {
        "TableName": table_name(config),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": f"{config.env}#release"}},
        "ScanIndexForward": False,
    }
    out: list[dict] = []
    try:
        while True:
            page = ddb.query(**args)
            out += [json.loads(i["data"]["S"]) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return out
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise missing_table(config) from None
        raise


def next_number(config: Config, aws: Any) -> int:
    """The environment's next release number: one atomic increment of its counter item (1 for the first)."""
    try:
        answer = aws.client("dynamodb").update_item(
            TableName=table_name(config),
            Key={"pk": {"S": f"{config.env}#counter"}, "sk": {"S": "release"}},
            UpdateExpression="ADD #n :one",
            ExpressionAttributeNames={"#n": "number"},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise missing_table(config) from None
        raise
    return int(answer["Attributes"]["number"]["N"])


def _put(config: Config, aws: Any, entry: dict) -> None:
    item = {
        "pk": {"S": f"{config.env}#release"},
        "sk": {"S": entry["sk"]},
        "data": {"S": json.dumps(entry, sort_keys=True, default=str)},
    }
    for k in ("outcome", "ami"):
        if entry.get(k):
            item[k] = {"S": str(entry[k])}
    put_item(config, aws, item)
