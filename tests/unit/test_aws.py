"""Retry settings: Rodeo's defaults, unless the user set their own the AWS way."""

from __future__ import annotations

import botocore.session
import pytest

from toolkit.aws import RETRIES, retries


@pytest.mark.parametrize("env, config, expected", [
    ({}, "", RETRIES),
    ({"AWS_MAX_ATTEMPTS": "2"}, "", {"mode": "adaptive"}),
    ({"AWS_RETRY_MODE": "standard"}, "", {"max_attempts": 10}),
    ({"AWS_PROFILE": "ci"}, "[profile ci]\nmax_attempts = 3\nretry_mode = standard\n", {}),
    ({"AWS_PROFILE": "ci"}, "[profile ci]\nregion = eu-west-1\n", RETRIES),
    ({"AWS_PROFILE": "missing"}, "", RETRIES),
])
def test_the_users_own_retry_settings_win(monkeypatch, tmp_path, env, config, expected):
    for name in ("AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "config").write_text(config)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert retries(botocore.session.Session()) == expected
