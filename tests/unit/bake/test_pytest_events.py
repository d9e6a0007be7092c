"""The verify step's pytest plugin: the names its events give the image tests."""

from __future__ import annotations

import pytest

from toolkit.bake.pytest_events import short_name


@pytest.mark.parametrize(
    "nodeid,expected",
    [
        ("tests/image/test_base.py::test_log_directory[ssh://127.0.0.1]", "test_log_directory"),
        ("tests/image/test_base.py::test_sshd[ssh://127.0.0.1-PermitRootLogin-no]", "test_sshd[PermitRootLogin-no]"),
        ("tests/image/test_app.py::TestWeb::test_health[paramiko://admin@10.0.0.5:22]", "test_health"),
        ("tests/image/test_app.py::test_plain", "test_plain"),
        ("tests/image/test_app.py::test_param[a-b]", "test_param[a-b]"),
    ],
)
def test_short_name(nodeid, expected):
    assert short_name(nodeid) == expected
