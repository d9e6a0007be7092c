"""One-off instances as values: the launch request, the tags, the runner's last line, and what counts as a leftover."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from toolkit import config
from toolkit.oneoff import spec

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 12, 5, 11, 0, 0, tzinfo=timezone.utc)
CFG = config.load("local", ROOT)
ONE = spec.OneOff(
    run_id="0123456789ab",
    argv=("sh", "-c", "echo hi"),
    ami="ami-1",
    config_version=3,
    timeout=60,
    instance_type="t3.small",
    subnet="subnet-1",
    security_groups=("sg-1",),
    instance_profile="web-instance",
)


def test_launch_request_is_one_tagged_imdsv2_instance_with_the_run_id_as_client_token():
    got = spec.launch_request(CFG, ONE, '{"rodeo":{}}', "host 42", NOW)
    tags = {t["Key"]: t["Value"] for t in got.pop("TagSpecifications")[0]["Tags"]}
    assert got == {
        "ImageId": "ami-1",
        "InstanceType": "t3.small",
        "MinCount": 1,
        "MaxCount": 1,
        "ClientToken": "0123456789ab",
        "UserData": '{"rodeo":{}}',
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
        "InstanceInitiatedShutdownBehavior": "terminate",
        "SubnetId": "subnet-1",
        "SecurityGroupIds": ["sg-1"],
        "IamInstanceProfile": {"Name": "web-instance"},
    }
    # Deadline: boot allowance + timeout + shipping allowance after now.
    assert tags == {
        "rodeo:oneoff": "0123456789ab",
        "rodeo:app": "web",
        "rodeo:env": "local",
        "rodeo:oneoff-purpose": "run",
        "rodeo:oneoff-owner": "host 42",
        "rodeo:oneoff-until": "2026-12-05T11:07:00Z",
        "Name": "rodeo-web-local-run-0123456789ab",
    }


def test_user_data_keeps_the_release_document_and_adds_the_command():
    base = {"rodeo": {"app": "web", "env": "local", "config_version": 3, "config_parameters": ["/rodeo/web/local/A:1"]}}
    doc = spec.user_data(base, ONE)
    assert doc == {
        "rodeo": {**base["rodeo"], "oneoff": {"id": "0123456789ab", "argv": ["sh", "-c", "echo hi"], "timeout": 60}}
    }
    assert json.loads(spec.text(doc)) == doc and " " not in spec.text(doc).replace("echo hi", "")


END_LINES = [
    ("exit 0", "rodeo-oneoff 0123456789ab: exit 0", 0),
    ("exit 3", "rodeo-oneoff 0123456789ab: exit 3", 3),
    ("a signal's code", "rodeo-oneoff 0123456789ab: exit 137", 137),
    ("timed out", "rodeo-oneoff 0123456789ab: timed out after 60s", spec.TIMED_OUT),
    ("another run's end", "rodeo-oneoff ba9876543210: exit 0", None),
    ("its start line", "rodeo-oneoff 0123456789ab: running sh -c x (timeout 60s)", None),
    ("output that looks alike", "echo rodeo-oneoff 0123456789ab: exit 0", None),
]


@pytest.mark.parametrize("name,message,code", END_LINES, ids=[r[0] for r in END_LINES])
def test_end_of(name, message, code):
    assert spec.end_of(message, "0123456789ab") == code


OUTPUT = [
    ("the command's line", spec.UNIT, "hello", True),
    ("the runner's own announcement", spec.UNIT, "rodeo-oneoff 0123456789ab: running sh", False),
    ("the runner's error starting the command", spec.UNIT, "rodeo-oneoff: cannot start 'x': No such file", True),
    ("another unit's line", "web.service", "serving", False),
]


@pytest.mark.parametrize("name,unit,message,shown", OUTPUT, ids=[r[0] for r in OUTPUT])
def test_is_output(name, unit, message, shown):
    assert spec.is_output(unit, message, "0123456789ab") is shown


def tagged(owner="host 42", until="2026-12-05T11:07:00Z", **more):
    return {spec.TAG: "0123456789ab", spec.OWNER_TAG: owner, spec.UNTIL_TAG: until, **more}


LEFTOVERS = [
    ("owner alive, in time", tagged(), "running", {42}, None),
    ("owner dead on this host", tagged(), "running", set(), "its Rodeo process (42) is gone"),
    ("owner on another host, in time", tagged(owner="other 42"), "running", set(), None),
    (
        "owner on another host, overdue",
        tagged(owner="other 42", until="2026-12-05T10:59:59Z"),
        "running",
        set(),
        "overdue since 2026-12-05T10:59:59Z",
    ),
    (
        "owner alive here but overdue",
        tagged(until="2026-12-05T10:00:00Z"),
        "pending",
        {42},
        "overdue since 2026-12-05T10:00:00Z",
    ),
    ("an unreadable deadline", tagged(owner="other 1", until="soon"), "running", set(), "overdue since soon"),
    ("already terminated", tagged(), "terminated", set(), None),
    ("shutting down", tagged(), "shutting-down", set(), None),
    ("not a one-off instance", {"rodeo:app": "web"}, "running", set(), None),
]


@pytest.mark.parametrize("name,tags,state,alive,why", LEFTOVERS, ids=[r[0] for r in LEFTOVERS])
def test_leftover(name, tags, state, alive, why):
    assert spec.leftover(tags, state, "host", lambda pid: pid in alive, NOW) == why
