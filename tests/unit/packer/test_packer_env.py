"""Packer's environment carries resolved keys, never a profile (issue 19, item 4: hashicorp/packer#10525)."""

from __future__ import annotations

import sys

import pytest

from toolkit.aws import Aws
from toolkit.errors import AwsError
from toolkit.local.auth import LOCAL_CREDENTIALS
from toolkit.local.environment import LocalEnvironment
from toolkit.packer.run import packer_env

PROCESS_OUTPUT = {"Version": 1, "AccessKeyId": "ASIAPROCESS", "SecretAccessKey": "process-secret", "SessionToken": "process-token"}


@pytest.fixture
def aws_files(tmp_path, monkeypatch):
    """A credentials file with a static profile, a config file with a credential_process one; nothing else of the machine's."""
    script = tmp_path / "creds.py"
    script.write_text(f"import json\nprint(json.dumps({PROCESS_OUTPUT!r}))\n")
    (tmp_path / "credentials").write_text("[team]\naws_access_key_id = AKIATEAM\naws_secret_access_key = team-secret\n")
    (tmp_path / "config").write_text(f"[profile team]\nregion = eu-west-1\n\n[profile ci]\ncredential_process = {sys.executable} {script}\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role on a developer's machine: never ask
    return tmp_path


WHO_AND_WHERE = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
                 "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def aws_part(env: dict) -> dict:
    """What in Packer's environment says which account and region it works in."""
    return {k: v for k, v in env.items() if k in WHO_AND_WHERE}


def test_a_profile_reaches_packer_as_its_keys(aws_files, monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", "a stale token of another login")
    env = packer_env(Aws(region="eu-west-1", profile="team").env())
    assert aws_part(env) == {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",
                             "AWS_ACCESS_KEY_ID": "AKIATEAM", "AWS_SECRET_ACCESS_KEY": "team-secret"}


def test_a_credential_process_profile_named_in_the_shell_gives_temporary_keys(aws_files, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "ci")
    env = packer_env(Aws(region="eu-west-1").env())
    assert aws_part(env) == {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "ASIAPROCESS",
                             "AWS_SECRET_ACCESS_KEY": "process-secret", "AWS_SESSION_TOKEN": "process-token"}


def test_the_local_stacks_keys_are_kept_as_they_are(aws_files, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "team")
    env = packer_env(LocalEnvironment(region="us-east-1", endpoint="http://127.0.0.1:5000").env())
    assert aws_part(env) == {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
                             "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
                             "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"]}


def test_no_credentials_is_one_clear_error(aws_files):
    with pytest.raises(AwsError) as caught:
        packer_env(Aws(region="eu-west-1").env())
    assert (caught.value.message, caught.value.hint) == ("no AWS credentials found for Packer", "set AWS_PROFILE (or run 'aws sso login'), or use --env local")


def test_an_unknown_profile_is_one_clear_error(aws_files):
    with pytest.raises(AwsError) as caught:
        packer_env(Aws(region="eu-west-1", profile="nope").env())
    assert caught.value.message == "The config profile (nope) could not be found"
