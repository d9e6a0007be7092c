"""The app's table: a call that finds none says so with its own error, whichever feature made it (no AWS)."""

from __future__ import annotations

from pathlib import Path

from toolkit import config as config_mod
from toolkit.errors import ReleaseError, TableMissing
from toolkit.table import missing_table, table_name

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_table_is_not_a_release_error_and_says_how_to_make_it():
    cfg = config_mod.load("staging", ROOT)
    err = missing_table(cfg)
    assert isinstance(err, TableMissing) and not isinstance(err, ReleaseError)  # a bake's lock raises it too
    assert table_name(cfg) == f"rodeo-{cfg.app}"
    assert err.message == f"DynamoDB table 'rodeo-{cfg.app}' does not exist in {cfg.region}"
    assert err.hint == "create it with 'invoke setup --env staging'"
