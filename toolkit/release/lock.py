"""One release at a time per environment: a lock item in DynamoDB.

The lock is the item ``pk=<env>#lock`` in the app's table ``rodeo-<app>``
(see ``ledger.table_name``). Taking it is a conditional put that succeeds only
when no lock exists, so two machines racing for it cannot both win; breaking
it is a conditional put on the holder's token, so two breakers cannot either.
A lock left by a dead process on this same host is taken over on its own.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import botocore.exceptions

from toolkit.release.ledger import missing_table, table_name
from toolkit.aws import error_code
from toolkit.config import Config
from toolkit.errors import LockError


def whoami() -> str:
    """``user@host`` of this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class Lock:
    """A held lock; pass it back to ``free``."""

    table: str
    key: dict
    token: str
    holder: dict


def key(config: Config) -> dict:
    return {"pk": {"S": f"{config.env}#lock"}, "sk": {"S": "lock"}}


def holder(config: Config, aws: Any) -> dict | None:
    """Who holds the lock: ``{"by", "pid", "since", "purpose", "token"}``, or None."""
    try:
        item = aws.client("dynamodb").get_item(TableName=table_name(config), Key=key(config), ConsistentRead=True).get("Item")
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise missing_table(config) from None
        raise
    return {k: v.get("S", v.get("N")) for k, v in item.items() if k not in ("pk", "sk")} if item else None


def acquire(config: Config, aws: Any, purpose: str, break_lock: bool = False, reporter: Any = None) -> Lock:
    """Take the lock, or LockError naming who holds it and since when.

    ``break_lock`` takes over a lock someone else holds (a stale one, after a
    crash). A lock whose holder is a dead process on this host is taken over
    without it.
    """
    table = table_name(config)
    mine = {
        "by": whoami(),
        "pid": str(os.getpid()),
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "purpose": purpose,
        "token": uuid.uuid4().hex,
    }
    item = dict(key(config), **{k: {"S": v} for k, v in mine.items()})
    ddb = aws.client("dynamodb")
    try:
        ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        return Lock(table, key(config), mine["token"], mine)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise missing_table(config) from None
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
    held = holder(config, aws) or {}
    if held.get("token") == mine["token"]:  # an earlier attempt of our put took effect, its answer was lost
        return Lock(table, key(config), mine["token"], mine)
    stale = _dead_here(held)
    if not (break_lock or stale):
        raise LockError(
            f"{config.app}/{config.env} is locked by {held.get('by', '?')} (pid {held.get('pid', '?')}) since {held.get('since', '?')} for {held.get('purpose', '?')}",
            "wait for that run to end; if it died, rerun with --break-lock",
        )
    try:
        ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk) OR #t = :t", ExpressionAttributeNames={"#t": "token"}, ExpressionAttributeValues={":t": {"S": held.get("token", "")}})
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        raise LockError(f"{config.app}/{config.env}: someone else took the lock while it was being broken", "check 'invoke status' and try again") from None
    if reporter is not None:
        why = "its process is gone" if stale else "--break-lock"
        reporter.warn(f"took over the lock of {held.get('by')} (pid {held.get('pid')}, since {held.get('since')}): {why}")
    return Lock(table, key(config), mine["token"], mine)


def free(aws: Any, lock: Lock) -> bool:
    """Free ``lock`` if it is still ours; False when someone broke it meanwhile (and holds it now)."""
    try:
        aws.client("dynamodb").delete_item(
            TableName=lock.table, Key=lock.key, ConditionExpression="#t = :t", ExpressionAttributeNames={"#t": "token"}, ExpressionAttributeValues={":t": {"S": lock.token}}
        )
        return True
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0
    # A retried delete may have freed it on an earlier attempt whose answer was lost: then no one holds it.
    return retried and "Item" not in aws.client("dynamodb").get_item(TableName=lock.table, Key=lock.key, ConsistentRead=True)


def _dead_here(held: dict) -> bool:
    """True when the holder ran on this host and its process no longer exists."""
    if held.get("by") != whoami():
        return False
    try:
        pid = int(held.get("pid", ""))
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def age(held: dict) -> float:
    """Seconds since the lock was taken."""
    try:
        return time.time() - datetime.fromisoformat(held["since"]).timestamp()
    except (KeyError, ValueError):
        return 0.0
