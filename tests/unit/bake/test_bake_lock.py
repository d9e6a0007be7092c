"""A bake before ``invoke setup`` (no table for its lock) runs unserialized and says so, not as a release's error."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from botocore.exceptions import ClientError

from toolkit import config as config_mod
from toolkit.bake import pipeline

ROOT = Path(__file__).resolve().parents[3]


class NoTable:
    def put_item(self, **kwargs):
        raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no table"}}, "PutItem")


class Said:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def test_a_bake_without_the_table_is_not_serialized_and_says_why():
    cfg = config_mod.load("staging", ROOT)
    aws = SimpleNamespace(client=lambda service: NoTable())
    plan = SimpleNamespace(image="base", inputs_hash="f" * 64, bake_id="b1")
    said = Said()
    with pipeline._bake_lock(cfg, aws, plan, wait=False, break_lock=False, reporter=said) as waited:
        assert waited is False
    assert said.warnings == [
        f"bakes of the same inputs are not serialized: DynamoDB table 'rodeo-{cfg.app}' does not exist in "
        f"{cfg.region} (create it with 'invoke setup --env staging')"
    ]
