"""The config loader waits, with a bounded backoff, for credentials and AWS at first boot (issue 19, item 10).

At an instance's first boot the instance profile's credentials are served a
little after the network is up: botocore raises NoCredentialsError, and a
client made then keeps none. The loader tries again with a new session, after
1, 2, 4, 8, then every 10 s, for WAIT_SECONDS; then the unit fails and systemd
starts it again (Restart=on-failure, bounded by a start limit). Botocore's
session is replaced by a fake one here; time is a fake clock the sleeps move.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import botocore.exceptions
import botocore.session
import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "playbooks/roles/base/files/rodeo-config-loader.py"
UNIT = ROOT / "playbooks/roles/base/files/rodeo-config.service"
spec = importlib.util.spec_from_file_location("rodeo_config_loader_retry", SCRIPT)
loader = importlib.util.module_from_spec(spec)
spec.loader.exec_module(loader)

REFS = [("/rodeo/web/prod/GREETING", "GREETING", 3)]
ANSWER = {"Parameters": [{"Name": "/rodeo/web/prod/GREETING", "Version": 3, "Value": "hello"}], "InvalidParameters": []}
NO_CREDENTIALS = botocore.exceptions.NoCredentialsError()
UNREACHABLE = botocore.exceptions.EndpointConnectionError(endpoint_url="https://ssm.us-east-1.amazonaws.com/")
DENIED = botocore.exceptions.ClientError(
    {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "GetParameters"
)


class Boot:
    """A fake clock and a fake botocore: each session's client raises the next scripted error, or answers."""

    def __init__(self, monkeypatch, script):
        self.now, self.sleeps, self.sessions, self.script = 1000.0, [], 0, list(script)
        monkeypatch.setattr(loader.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(loader.time, "sleep", self.sleep)
        monkeypatch.setattr(botocore.session, "get_session", self.session)

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def session(self):
        self.sessions += 1
        boot = self

        class Session:
            def create_client(self, *args, **kwargs):
                return Client()

        class Client:
            def get_parameters(self, **kwargs):
                step = boot.script.pop(0) if boot.script else NO_CREDENTIALS  # then never any
                if isinstance(step, Exception):
                    raise step
                return step

        return Session()


def test_credentials_that_come_late_are_waited_for(monkeypatch):
    boot = Boot(monkeypatch, [NO_CREDENTIALS, NO_CREDENTIALS, UNREACHABLE, ANSWER])
    assert loader._from_ssm(REFS, "us-east-1", boot.now + loader.WAIT_SECONDS) == {"GREETING": "hello"}
    assert boot.sleeps == [1.0, 2.0, 4.0]
    assert boot.sessions == 4  # a fresh session each try: the one that found no credentials keeps none


def test_credentials_that_never_come_fail_after_the_wait(monkeypatch):
    boot = Boot(monkeypatch, [])
    with pytest.raises(loader.LoadError) as caught:
        loader._from_ssm(REFS, "us-east-1", boot.now + loader.WAIT_SECONDS)
    assert str(caught.value) == (
        "no AWS credentials after 60s: give the instances an instance profile whose role may "
        "ssm:GetParameters (and kms:Decrypt for secrets)"
    )
    assert boot.sleeps == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0]  # 55 s: the next 10 s would pass the minute


def test_a_refusal_is_not_retried(monkeypatch):
    boot = Boot(monkeypatch, [DENIED])
    with pytest.raises(loader.LoadError) as caught:
        loader._from_ssm(REFS, "us-east-1", boot.now + loader.WAIT_SECONDS)
    assert str(caught.value) == "SSM refused GetParameters: AccessDeniedException: not allowed"
    assert boot.sleeps == []


def test_the_unit_restarts_on_failure_within_a_start_limit():
    lines = UNIT.read_text().splitlines()
    unit, service = lines[lines.index("[Unit]") : lines.index("[Service]")], lines[lines.index("[Service]") :]
    assert [line for line in unit if line.startswith("StartLimit")] == [
        "StartLimitIntervalSec=900",
        "StartLimitBurst=5",
    ]
    assert [line for line in service if line.startswith(("Restart", "TimeoutStartSec"))] == [
        "TimeoutStartSec=120",
        "Restart=on-failure",
        "RestartSec=10",
    ]
    # A unit that requires this one is started again once a restart here succeeds (systemd/systemd#18856).
    assert [line for line in service if line.startswith("ExecStartPost=")] == [
        "ExecStartPost=-/bin/sh -c 'exec systemctl --no-block start $$(systemctl show --property=RequiredBy --value rodeo-config.service)'"
    ]
