"""Locks as items of the app's DynamoDB table: one release at a time per environment, one bake per inputs.

The release lock is the item ``pk=<env>#lock`` in the app's table
``rodeo-<app>`` (``toolkit.table``); it also serializes what else changes the
slots (``invoke scale``, a config change). A bake's lock is ``pk=bake#lock``,
``sk=<image>#<inputs hash>`` (``bake_key``), shared by every environment of
the app as its AMIs are. Taking a lock is a conditional put that succeeds only
when no lock exists, so two machines racing for it cannot both win; breaking
it is a conditional put on the holder's token, so two breakers cannot either.
A lock left by a dead process on this same host (gone, or a zombie) is
taken over on its own; ``--break-lock`` refuses while the holder still runs
on this host, and takes over a lock held from another host (the user vouches
that that run died).

Noticing a broken lock: the holder calls ``check`` right before each step
that changes the slots (a launch template version, a group's size, the
listener's weights). A fencing token would need every write to carry a
condition, but only DynamoDB writes can: the Auto Scaling and load balancer
calls accept none. So a run re-reads the lock (one consistent GetItem) before
each change and stops with ``LockLost``, changing nothing more, when the
token is no longer its own. What is left is the window between that read and
the call (one API round trip); on this host it cannot open, because
``--break-lock`` refuses while the holder's process lives.
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

from toolkit import procs
from toolkit.aws import error_code
from toolkit.config import Config
from toolkit.errors import LockError, LockLost
from toolkit.table import missing_table, table_name


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
    took_over: dict | None = None  # the holder this lock was taken from (a dead run's, or --break-lock)


def key(config: Config) -> dict:
    """The environment's release lock."""
    return {"pk": {"S": f"{config.env}#lock"}, "sk": {"S": "lock"}}


def bake_key(image: str, inputs_hash: str) -> dict:
    """The lock of a bake of ``image`` with ``inputs_hash``: shared by every environment of the app, as its AMIs are."""
    return {"pk": {"S": "bake#lock"}, "sk": {"S": f"{image}#{inputs_hash}"}}


def holder(config: Config, aws: Any, lock_key: dict | None = None) -> dict | None:
    """Who holds the lock (default: the environment's): ``{"by", "pid", "since", "purpose", "token"}``, or None."""
    try:
        item = (
            aws.client("dynamodb")
            .get_item(TableName=table_name(config), Key=lock_key or key(config), ConsistentRead=True)
            .get("Item")
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise missing_table(config) from None
        raise
    return {k: v.get("S", v.get("N")) for k, v in item.items() if k not in ("pk", "sk")} if item else None


def acquire(
    config: Config,
    aws: Any,
    purpose: str,
    break_lock: bool = False,
    reporter: Any = None,
    lock_key: dict | None = None,
    what: str | None = None,
) -> Lock:
    """Take the lock, or LockError naming who holds it and since when.

    ``break_lock`` takes over a lock someone else holds (a stale one, after a
    crash). A lock whose holder is a dead process on this host is taken over
    without it. ``lock_key`` and ``what`` name another lock than the
    environment's release lock (a bake's: ``bake_key``).
    """
    table = table_name(config)
    lock_key = lock_key or key(config)
    what = what or f"{config.app}/{config.env}"
    mine = {
        "by": whoami(),
        "pid": str(os.getpid()),
        "pid_started": procs.started(os.getpid()) or "",
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "purpose": purpose,
        "token": uuid.uuid4().hex,
    }
    item = dict(lock_key, **{k: {"S": v} for k, v in mine.items()})
    ddb = aws.client("dynamodb")
    try:
        ddb.put_item(TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        return Lock(table, lock_key, mine["token"], mine)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise missing_table(config) from None
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
    held = holder(config, aws, lock_key) or {}
    if held.get("token") == mine["token"]:  # an earlier attempt of our put took effect, its answer was lost
        return Lock(table, lock_key, mine["token"], mine)
    stale = _dead_here(held)
    running = _running_here(held)
    if running:
        raise LockError(
            f"{what} is locked by pid {held.get('pid')}, which is still running on this host ({held.get('by', '?')}, since {held.get('since', '?')}, for {held.get('purpose', '?')})",
            f"wait for it to end; --break-lock only takes over a lock whose run died (stop that run first: kill {held.get('pid')})",
        )
    if not (break_lock or stale):
        raise LockError(
            f"{what} is locked by {held.get('by', '?')} (pid {held.get('pid', '?')}) since {held.get('since', '?')} for {held.get('purpose', '?')}",
            "wait for that run to end; if it died, rerun with --break-lock",
        )
    try:
        ddb.put_item(
            TableName=table,
            Item=item,
            ConditionExpression="attribute_not_exists(pk) OR #t = :t",
            ExpressionAttributeNames={"#t": "token"},
            ExpressionAttributeValues={":t": {"S": held.get("token", "")}},
        )
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        raise LockError(
            f"{what}: someone else took the lock while it was being broken", "check 'invoke status' and try again"
        ) from None
    if reporter is not None:
        why = "its process is gone" if stale else "--break-lock"
        reporter.warn(
            f"took over the lock of {held.get('by')} (pid {held.get('pid')}, since {held.get('since')}): {why}"
        )
    return Lock(table, lock_key, mine["token"], mine, took_over=held or None)


def free(aws: Any, lock: Lock) -> bool:
    """Free ``lock`` if it is still ours; False when someone broke it meanwhile (and holds it now)."""
    try:
        aws.client("dynamodb").delete_item(
            TableName=lock.table,
            Key=lock.key,
            ConditionExpression="#t = :t",
            ExpressionAttributeNames={"#t": "token"},
            ExpressionAttributeValues={":t": {"S": lock.token}},
        )
        return True
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        retried = exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0
    # A retried delete may have freed it on an earlier attempt whose answer was lost: then no one holds it.
    return retried and "Item" not in aws.client("dynamodb").get_item(
        TableName=lock.table, Key=lock.key, ConsistentRead=True
    )


def check(aws: Any, lock: Lock, before: str) -> None:
    """LockLost unless ``lock`` is still held with its token; call it right before each change.

    ``before`` names the step about to run, for the message.
    """
    item = aws.client("dynamodb").get_item(TableName=lock.table, Key=lock.key, ConsistentRead=True).get("Item")
    now = {k: v.get("S", v.get("N")) for k, v in (item or {}).items()}
    if now.get("token") == lock.token:
        return
    who = (
        f"{now.get('by', '?')} (pid {now.get('pid', '?')}) since {now.get('since', '?')}"
        if item
        else "no one (it was freed)"
    )
    raise LockLost(
        f"this run lost the lock, now held by {who}; stopped before {before}, changing nothing more",
        "see 'invoke status': the run holding the lock now finishes or undoes what this one started",
    )


def _here(held: dict) -> int | None:
    """The holder's pid when it ran on this host (and is not this process), else None."""
    if str(held.get("by", "")).rpartition("@")[2] != socket.gethostname():
        return None
    try:
        pid = int(held.get("pid", ""))
    except ValueError:
        return None
    return None if pid == os.getpid() else pid


def _alive(pid: int, held: dict) -> bool:
    """True while the holder's process runs: a zombie counts as ended, and so does a reused pid."""
    if not procs.alive(pid):
        return False
    recorded = held.get("pid_started")
    return not recorded or procs.started(pid) == recorded


def _dead_here(held: dict) -> bool:
    """True when the holder ran on this host and its process has ended (a zombie has ended)."""
    pid = _here(held)
    return pid is not None and not _alive(pid, held)


def _running_here(held: dict) -> bool:
    """True when the holder ran on this host and its process still runs."""
    pid = _here(held)
    return pid is not None and _alive(pid, held)


def age(held: dict) -> float:
    """Seconds since the lock was taken."""
    try:
        return time.time() - datetime.fromisoformat(held["since"]).timestamp()
    except (KeyError, ValueError):
        return 0.0
