"""Reading Packer's machine-readable stream: lines, phases, manifest."""

from __future__ import annotations

import json

import pytest

from toolkit.errors import PackerError
from toolkit.packer import run


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("1700000000,,ui,say,==> amazon-ebs.app: Launching a source AWS instance...\n", ("say", "==> amazon-ebs.app: Launching a source AWS instance...")),
        ("1700000000,,ui,message,    amazon-ebs.app: a%!(PACKER_COMMA) b\n", ("message", "    amazon-ebs.app: a, b")),
        ("1700000000,,ui,error,Build errored\\nsecond line\n", ("error", "Build errored\nsecond line")),
        ("1700000000,amazon-ebs.app,artifact,0,id,us-east-1:ami-123\n", ("artifact", "0,id,us-east-1:ami-123")),
        ("garbage\n", ("", "garbage")),
    ],
)
def test_parse_line(raw, expected):
    assert run.parse_line(raw) == expected


def test_phases_follow_packer_messages(monkeypatch):
    now = iter([0.0, 1.0, 3.0, 7.0, 7.5, 8.0, 8.5])
    monkeypatch.setattr(run.time, "monotonic", lambda: next(now))
    clock = run.PhaseClock()  # 0.0
    clock.saw("==> amazon-ebs.app: Launching a source AWS instance...")  # 1.0
    clock.saw("==> amazon-ebs.app: Connected to SSH!")
    clock.saw("==> amazon-ebs.app: Running local shell script: /tmp/packer-shell1")  # 3.0
    clock.saw("==> amazon-ebs.app: Running local shell script: /tmp/packer-shell2")  # 7.0
    clock.saw("==> amazon-ebs.app: Running local shell script: /tmp/packer-shell3")  # 7.5
    clock.saw("==> amazon-ebs.app: Stopping the source instance...")  # 8.0
    clock.stop()  # 8.5
    assert clock.durations == {"boot": 2.0, "provision": 4.0, "verify": 0.5, "seal": 0.5, "snapshot": 0.5}


def test_manifest_gives_every_region(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"builds": [{"artifact_id": "us-east-1:ami-1,us-west-2:ami-2"}]}))
    assert run.read_manifest(path) == {"us-east-1": "ami-1", "us-west-2": "ami-2"}
    with pytest.raises(PackerError, match="no manifest"):
        run.read_manifest(tmp_path / "missing.json")


def test_missing_packer_says_how_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PackerError) as err:
        run.version()
    assert err.value.message == "packer is not installed"
    assert "make setup" in err.value.hint
