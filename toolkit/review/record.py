"""A review app's item in the app's table: what it runs and when it was made and last deployed.

The item ``pk=<env>#review, sk=<name>`` (``toolkit.table``) holds the ref it
was asked for, the commit and app version baked, its AMI, its host, the
parent's config version it took, who deployed it and when (``created_at``,
``deployed_at``: ``review.prune`` reads the latter). It is a record, not the
truth: the rule, groups and template in AWS are, and ``review.down`` removes
them whether or not the item exists.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

import botocore.exceptions

from toolkit.aws import error_code
from toolkit.config import Config
from toolkit.table import put_item, table_name


@dataclass(frozen=True)
class Record:
    """One review app as ``review.up`` last left it."""

    name: str
    ref: str = ""
    commit: str = ""
    app_version: str = ""
    ami: str = ""
    host: str = ""
    parent_config: int = 0
    created_at: str = ""
    deployed_at: str = ""
    by: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Record":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _pk(config: Config) -> dict:
    return {"S": f"{config.env}#review"}


def get(config: Config, aws: Any, name: str) -> Record | None:
    """Review app ``name``'s record, or None (none yet, or no table)."""
    try:
        item = (
            aws.client("dynamodb")
            .get_item(TableName=table_name(config), Key={"pk": _pk(config), "sk": {"S": name}}, ConsistentRead=True)
            .get("Item")
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return Record.from_dict(json.loads(item["data"]["S"])) if item else None


def every(config: Config, aws: Any) -> list[Record]:
    """Every review app's record in this environment, by name (none without a table)."""
    ddb = aws.client("dynamodb")
    found: list[Record] = []
    try:
        pages = ddb.get_paginator("query").paginate(
            TableName=table_name(config),
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": _pk(config)},
            ConsistentRead=True,
        )
        for page in pages:
            found += [Record.from_dict(json.loads(item["data"]["S"])) for item in page["Items"]]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return []
        raise
    return sorted(found, key=lambda r: r.name)


def put(config: Config, aws: Any, record: Record) -> None:
    """Write ``record`` over the last one (a put: a rerun writes the same)."""
    put_item(
        config,
        aws,
        {"pk": _pk(config), "sk": {"S": record.name}, "data": {"S": json.dumps(record.to_dict(), sort_keys=True)}},
    )


def delete(config: Config, aws: Any, name: str) -> None:
    """Remove review app ``name``'s record (none: nothing to do)."""
    try:
        aws.client("dynamodb").delete_item(TableName=table_name(config), Key={"pk": _pk(config), "sk": {"S": name}})
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
