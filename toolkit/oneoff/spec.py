"""One-off instances as pure values: the launch request, the user data, the tags, and what their log lines say.

A one-off instance (``invoke run``, the release phase) is an instance of an
app AMI launched with RunInstances, with the release's user data (app,
environment, config version: the config loader and log shipper read it) plus
``oneoff``: the command, its run id and timeout. The image's
``rodeo-oneoff.service`` runs the command after the config loader, its
stdout and stderr go to the journal (priority info and err) and so to the
instance's log stream, and its last line is ``rodeo-oneoff <id>: exit <N>``.
Rodeo reads the stream (``toolkit.oneoff.instance``), shows the output and
returns the code, then terminates the instance.

Every one-off instance carries the tags ``rodeo:oneoff`` (its run id),
``rodeo:app``, ``rodeo:env``, ``rodeo:oneoff-owner`` (``host pid``: the Rodeo
process that waits for it) and ``rodeo:oneoff-until`` (when it is overdue):
the next command terminates one whose owner died on this host, or that is
overdue (``leftover``), as bakes do with their build instances.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from toolkit.config import Config

TAG = "rodeo:oneoff"
OWNER_TAG = "rodeo:oneoff-owner"
UNTIL_TAG = "rodeo:oneoff-until"
UNIT = "rodeo-oneoff.service"
TIMED_OUT = 124  # the exit code Rodeo gives a command stopped by its timeout (as timeout(1))
# How long an instance may take from RunInstances to the command's start (boot, config loader) and from its
# end to its last line in CloudWatch Logs (the shipper's batches).
BOOT_SECONDS = 300
SHIP_SECONDS = 60
END_RE = re.compile(r"^rodeo-oneoff (?P<id>[0-9a-f]{12}): (?:exit (?P<code>\d+)|timed out after (?P<timeout>\d+)s)$")


@dataclass(frozen=True)
class OneOff:
    """One command to run on a fresh instance of ``ami`` with config version ``config_version``."""

    run_id: str
    argv: tuple[str, ...]
    ami: str
    config_version: int
    timeout: int
    instance_type: str
    subnet: str | None
    security_groups: tuple[str, ...] = ()
    instance_profile: str | None = None
    purpose: str = "run"  # "run" or "release" (the release phase)

    @property
    def deadline_seconds(self) -> int:
        """How long Rodeo waits for the last line: boot, the command's timeout, the shipping."""
        return BOOT_SECONDS + self.timeout + SHIP_SECONDS


def new_id() -> str:
    """A run id: 12 hex digits (also RunInstances' ClientToken, so a retried launch makes one instance)."""
    return uuid.uuid4().hex[:12]


def user_data(base: dict, oneoff: OneOff) -> dict:
    """The release's user data document ``base`` (``toolkit.release.userdata.document``) with the command added."""
    return {
        "rodeo": {
            **base["rodeo"],
            "oneoff": {"id": oneoff.run_id, "argv": list(oneoff.argv), "timeout": oneoff.timeout},
        }
    }


def text(doc: dict) -> str:
    """The document's canonical JSON. RunInstances' ``UserData`` is given as text: boto3 encodes it in base64 itself
    (botocore's ``base64_encode_user_data``), unlike a launch template's, which is given encoded."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def tags(config: Config, oneoff: OneOff, owner: str, now: datetime) -> list[dict]:
    """The instance's tags (see the module's docstring)."""
    until = (now + timedelta(seconds=oneoff.deadline_seconds)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    pairs = {
        TAG: oneoff.run_id,
        "rodeo:app": config.app,
        "rodeo:env": config.env,
        "rodeo:oneoff-purpose": oneoff.purpose,
        OWNER_TAG: owner,
        UNTIL_TAG: until,
        "Name": f"rodeo-{config.app}-{config.env}-{oneoff.purpose}-{oneoff.run_id}",
    }
    return [{"Key": k, "Value": v} for k, v in pairs.items()]


def launch_request(config: Config, oneoff: OneOff, user_data_text: str, owner: str, now: datetime) -> dict:
    """The RunInstances arguments: one instance, IMDSv2 required, tagged at launch, ``ClientToken`` = the run id.

    ``InstanceInitiatedShutdownBehavior=terminate``: an instance shut down
    from inside is gone, never a stopped one-off left behind.
    """
    request: dict = {
        "ImageId": oneoff.ami,
        "InstanceType": oneoff.instance_type,
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": oneoff.run_id,
        "UserData": user_data_text,
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "InstanceInitiatedShutdownBehavior": "terminate",
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags(config, oneoff, owner, now)}],
    }
    if oneoff.subnet:
        request["SubnetId"] = oneoff.subnet
    if oneoff.security_groups:
        request["SecurityGroupIds"] = list(oneoff.security_groups)
    if oneoff.instance_profile:
        request["IamInstanceProfile"] = {"Name": oneoff.instance_profile}
    return request


def end_of(message: str, run_id: str) -> int | None:
    """The exit code a line of the runner's announces for ``run_id`` (TIMED_OUT for a timeout), or None for any other line."""
    found = END_RE.match(message.strip())
    if not found or found.group("id") != run_id:
        return None
    return TIMED_OUT if found.group("timeout") else int(found.group("code"))


def is_output(unit: str, message: str, run_id: str) -> bool:
    """True for a line of the command's own output: the runner unit's lines but its announcements of ``run_id``."""
    return unit == UNIT and not message.startswith(f"rodeo-oneoff {run_id}: ")


def leftover(tags_of: dict[str, str], state: str, host: str, alive: "callable", now: datetime) -> str | None:
    """Why a one-off instance should go (its owner died on this host, or it is overdue), or None to leave it.

    ``alive(pid)`` says whether a process of this host lives. Terminated
    instances, and instances of other hosts' runs still within their time,
    are left alone.
    """
    if state in ("shutting-down", "terminated") or TAG not in tags_of:
        return None
    owner_host, _, pid = tags_of.get(OWNER_TAG, "").rpartition(" ")
    if owner_host == host and pid.isdigit() and not alive(int(pid)):
        return f"its Rodeo process ({pid}) is gone"
    until = tags_of.get(UNTIL_TAG, "")
    try:
        overdue = datetime.fromisoformat(until.replace("Z", "+00:00")) < now
    except ValueError:
        overdue = True  # no deadline we can read: nobody waits for it
    return f"overdue since {until}" if overdue else None
