"""The size ``invoke scale`` set, recorded so it outlives the slot: the next release starts its new slot at it.

Heroku keeps ``ps:scale web=4`` until it is changed; an Auto Scaling group
here lives only as long as its slot holds the traffic. So ``invoke scale``
writes what it set (desired, min, max, who and when) to the item
``pk=<env>#scale, sk=web`` of the app's table, ``plan.start_capacity`` starts
the next release's slot at it (raised to what the live slot runs, as a
schedule or a policy may have grown it), and ``invoke status`` shows it. It
holds until the next ``invoke scale``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import botocore.exceptions

from toolkit.aws import error_code
from toolkit.config import Capacity, Config
from toolkit.table import missing_table, table_name


@dataclass(frozen=True)
class Scaled:
    """What ``invoke scale`` set last."""

    desired: int
    min: int
    max: int
    by: str = ""
    at: str = ""

    @property
    def capacity(self) -> Capacity:
        return Capacity(min=self.min, max=self.max, desired=self.desired)

    def to_dict(self) -> dict:
        return asdict(self)


def key(config: Config) -> dict:
    return {"pk": {"S": f"{config.env}#scale"}, "sk": {"S": "web"}}


def recorded(config: Config, aws: Any) -> Scaled | None:
    """What ``invoke scale`` set last in this environment, or None (never scaled, or no table yet)."""
    try:
        item = (
            aws.client("dynamodb")
            .get_item(TableName=table_name(config), Key=key(config), ConsistentRead=True)
            .get("Item")
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return Scaled(**json.loads(item["data"]["S"])) if item else None


def record(config: Config, aws: Any, scaled: Scaled) -> None:
    """Write ``scaled`` over the last one (a put: a rerun writes the same)."""
    try:
        aws.client("dynamodb").put_item(
            TableName=table_name(config),
            Item={**key(config), "data": {"S": json.dumps(scaled.to_dict(), sort_keys=True)}},
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise missing_table(config) from None
        raise


def capacity(config: Config, aws: Any) -> Capacity | None:
    """The size ``invoke scale`` set last, as the Capacity a release starts its new slot at (None: never scaled)."""
    found = recorded(config, aws)
    return found.capacity if found else None
