"""Clients: one botocore session per environment in a process; retry settings: Rodeo's defaults, unless the user set
their own the AWS way."""

from __future__ import annotations

import botocore.exceptions
import botocore.session
import pytest

from toolkit.aws import RETRIES, Aws, once_settled, retries


@pytest.mark.parametrize(
    "env, config, expected",
    [
        ({}, "", RETRIES),
        ({"AWS_MAX_ATTEMPTS": "2"}, "", {"mode": "adaptive"}),
        ({"AWS_RETRY_MODE": "standard"}, "", {"max_attempts": 10}),
        ({"AWS_PROFILE": "ci"}, "[profile ci]\nmax_attempts = 3\nretry_mode = standard\n", {}),
        ({"AWS_PROFILE": "ci"}, "[profile ci]\nregion = eu-west-1\n", RETRIES),
        ({"AWS_PROFILE": "missing"}, "", RETRIES),
    ],
)
def test_the_users_own_retry_settings_win(monkeypatch, tmp_path, env, config, expected):
    for name in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config").write_text(config)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert retries(botocore.session.Session()) == expected


def _error(code: str, message: str = "") -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": message}}, "AnyCall")


class Answers:
    """A call that fails with ``errors`` in turn, then answers "done"; the sleeps it was made to wait."""

    def __init__(self, *errors):
        self.errors, self.slept, self.now = list(errors), [], 0.0

    def __call__(self):
        if self.errors:
            raise self.errors.pop(0)
        return "done"

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    "error",
    [
        _error("InvalidGroup.NotFound", "The security group 'sg-1' does not exist"),
        _error("InvalidSnapshot.InUse", "The snapshot snap-1 is currently in use by ami-1"),
        _error("InvalidLaunchTemplateId.VersionNotFound", "Could not find the specified version 2"),
        _error(
            "ValidationError",
            "You must use a valid fully-formed launch template. Could not find the specified version 2",
        ),
    ],
)
def test_what_aws_has_not_seen_yet_is_retried_with_backoff(error):
    call = Answers(error, error, error)
    assert once_settled(call, sleep=call.sleep, clock=lambda: call.now) == "done"
    assert call.slept == [0.1, 0.2, 0.4]


@pytest.mark.parametrize(
    "error",
    [
        _error(
            "ValidationError",
            "You must use a valid fully-formed launch template. The request must contain the parameter ImageId",
        ),
        _error("ValidationError", "Max bound, 4, must be greater than or equal to min bound, 5"),
        _error("AccessDenied", "no"),
    ],
)
def test_anything_else_is_raised_at_once(error):
    call = Answers(error)
    with pytest.raises(botocore.exceptions.ClientError):
        once_settled(call, sleep=call.sleep, clock=lambda: call.now)
    assert call.slept == []


def test_it_gives_up_after_its_timeout():
    call = Answers(*[_error("InvalidGroup.NotFound")] * 20)
    with pytest.raises(botocore.exceptions.ClientError):
        once_settled(call, timeout=10, sleep=call.sleep, clock=lambda: call.now)
    assert call.slept == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2] and call.now <= 10


CREDS = {"aws_access_key_id": "AKIDTEST", "aws_secret_access_key": "secret"}


def test_every_aws_of_an_environment_shares_one_session_and_keeps_clients_of_its_own(monkeypatch):
    made = []

    class Counted(botocore.session.Session):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(botocore.session, "Session", Counted)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/rodeo-test-config")  # an environment no earlier test had
    one = Aws(region="us-east-1", endpoint="http://127.0.0.1:9", credentials=CREDS)
    two = Aws(region="us-east-1", endpoint="http://127.0.0.1:9", credentials=CREDS)
    first, second = one.client("ec2"), two.client("ec2")
    two.client("elbv2")
    assert len(made) == 1
    assert one.client("ec2") is first and second is not first
    assert first.meta.events is not second.meta.events  # a handler registered on one client reaches no other
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/another-config")  # another environment: a session that reads it
    Aws(region="us-east-1", endpoint="http://127.0.0.1:9", credentials=CREDS).client("ec2")
    assert len(made) == 2
