"""The bake plan is a pure function of gathered facts: tested as a table."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from toolkit import config
from toolkit.bake.plan import BakeFacts, parse_vars, plan_bake
from toolkit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
NOW = dt.datetime(2026, 11, 27, 12, 0, 5, tzinfo=dt.timezone.utc)


def facts(**changes) -> BakeFacts:
    base = dict(
        image="app",
        packer_version=(1, 6, 6),
        template="T",
        source_ami="ami-00000001",
        parent_ami="ami-00000001",
        git_sha="abc",
        files={"playbooks/app.yml": "1"},
        now=NOW,
        token="beef",
    )
    return BakeFacts(**{**base, **changes})


@pytest.fixture(scope="module")
def cfg():
    return config.load("local", ROOT)


def test_the_plan_names_the_bake_and_writes_nothing(cfg, tmp_path):
    plan = plan_bake(facts(), cfg, tmp_path)
    assert plan.bake_id == "app-20261127-120005-beef"
    assert plan.bake_dir == tmp_path / "bakes" / plan.bake_id
    assert plan.template == plan.bake_dir / "app.pkr.hcl"  # never packer/: a bake leaves the checkout alone
    assert plan.built_at == "2026-11-27T12:00:05Z"
    assert list(tmp_path.iterdir()) == []
    assert plan_bake(facts(), cfg, tmp_path) == plan  # the same facts, the same plan


@pytest.mark.parametrize(
    "change,changes_hash,named",
    [
        ({}, False, None),
        (
            {"now": NOW + dt.timedelta(days=1), "token": "cafe", "git_sha": "def"},
            False,
            None,
        ),  # when and from which commit: not inputs
        ({"template": "T2"}, True, "template"),
        ({"source_ami": "ami-00000002"}, True, "source_ami"),
        ({"parent_ami": "ami-00000002"}, True, "parent_ami"),
        ({"files": {"playbooks/app.yml": "2"}}, True, "playbooks/app.yml"),
        ({"toolkit_version": "9.9.9"}, True, "settings"),
        ({"extra_vars": {"webapp_fault": "root"}}, True, "vars"),
    ],
)
def test_what_changes_the_inputs_hash(cfg, tmp_path, change, changes_hash, named):
    before, after = plan_bake(facts(), cfg, tmp_path), plan_bake(facts(**change), cfg, tmp_path)
    assert (before.inputs_hash != after.inputs_hash) is changes_hash
    if named:
        assert named in {
            k for k in set(before.inputs) | set(after.inputs) if before.inputs.get(k) != after.inputs.get(k)
        }


@pytest.mark.parametrize(
    "pairs,expected",
    [
        ([], {}),
        (["webapp_fault=root"], {"webapp_fault": "root"}),
        (["a=1", "b=x=y", "c="], {"a": "1", "b": "x=y", "c": ""}),
        (["nokey"], ConfigError),
        (["app-version=1"], ConfigError),
        (["=1"], ConfigError),
    ],
)
def test_var_flags(pairs, expected):
    if expected is ConfigError:
        with pytest.raises(ConfigError, match="is not KEY=VALUE"):
            parse_vars(pairs)
    else:
        assert parse_vars(pairs) == expected
