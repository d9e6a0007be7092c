"""The bake's EC2 key pair is deleted after the bake, and a delete that fails is said, not swallowed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError

from toolkit.bake import pipeline


class FakeEc2:
    def __init__(self, delete_error: str | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.delete_error = delete_error

    def import_key_pair(self, KeyName, **kwargs):
        self.calls.append(("import", KeyName))

    def delete_key_pair(self, KeyName):
        self.calls.append(("delete", KeyName))
        if self.delete_error:
            raise ClientError({"Error": {"Code": self.delete_error, "Message": "no"}}, "DeleteKeyPair")


class Said:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def key(tmp_path: Path) -> Path:
    (tmp_path / "id_ed25519.pub").write_text("ssh-ed25519 AAAA rodeo-b1\n")
    return tmp_path / "id_ed25519"


@pytest.mark.parametrize(
    "error,warnings",
    [
        (None, []),
        (
            "UnauthorizedOperation",
            [
                "could not delete the bake's key pair rodeo-b1 (UnauthorizedOperation); "
                "delete it: aws ec2 delete-key-pair --key-name rodeo-b1 --region eu-west-1"
            ],
        ),
    ],
)
def test_the_key_pair_is_deleted_and_a_failed_delete_is_said(tmp_path, error, warnings):
    ec2, said = FakeEc2(error), Said()
    aws = SimpleNamespace(region="eu-west-1", client=lambda service: ec2)
    with pipeline._key_pair(aws, SimpleNamespace(bake_id="b1"), key(tmp_path), said) as name:
        assert name == "rodeo-b1"
    assert ec2.calls == [("import", "rodeo-b1"), ("delete", "rodeo-b1")]
    assert said.warnings == warnings
