"""Config vars against a moto server: a change is a config version and a release; rollback restores AMI and config.

The instances here are moto's records: what they would load is read from the
launch template versions' user data. Booted instances loading it for real:
tests/integration/local/test_release_live.py (its config tests).
"""

from __future__ import annotations

import base64
import io
import json
import sys
import threading

import pytest
from invoke import Context

import tasks
from toolkit import configchange as change
from toolkit import lock
from toolkit.configvars import store
from toolkit.errors import ConfigError, LockError, ReleaseError
from toolkit.local.environment import LocalEnvironment
from toolkit.release import history, ledger, rollout
from toolkit.release import status as release_status


def user_data(world, version: int) -> dict:
    """The user data document of launch template version ``version``."""
    found = world.aws.client("ec2").describe_launch_template_versions(
        LaunchTemplateName=f"rodeo-{world.cfg.app}", Versions=[str(version)]
    )
    return json.loads(base64.b64decode(found["LaunchTemplateVersions"][0]["LaunchTemplateData"]["UserData"]))


def parameters(world) -> dict:
    """name -> [(version, type)] of every parameter under the environment's path."""
    ssm = world.aws.client("ssm")
    out = {}
    for page in ssm.get_paginator("describe_parameters").paginate():
        for p in page["Parameters"]:
            out[p["Name"]] = [
                (h["Version"], h["Type"]) for h in ssm.get_parameter_history(Name=p["Name"])["Parameters"]
            ]
    return out


def test_set_records_a_version_and_releases_it_with_the_live_ami(world):
    live_ami = world.state().active.ami
    result = change.set_vars(world.cfg, world.aws, {"GREETING": "hello", "WORKERS": "4"}, reporter=world.reporter)
    assert (result.outcome, result.version, result.previous, result.changed) == (
        "released",
        1,
        0,
        ["GREETING", "WORKERS"],
    )
    assert result.release.steps == [10, 50, 100] and result.release.config_version == 1
    after = world.state()
    assert (
        after.active.name == "green"
        and after.active.holds(live_ami, 1)
        and after.active.healthy == 2
        and after.blue.desired == 0
    )
    app, env = world.cfg.app, world.cfg.env
    assert user_data(world, after.green.version)["rodeo"] == {
        "app": app,
        "env": env,
        "config_version": 1,
        "config_parameters": [f"/rodeo/{app}/{env}/GREETING:1", f"/rodeo/{app}/{env}/WORKERS:1"],
    }
    entry = ledger.recent(world.cfg, world.aws, 1)[0]
    assert (entry["config_version"], entry["from_config_version"], entry["to_ami"], entry["outcome"]) == (
        1,
        0,
        live_ami,
        "released",
    )
    info = release_status.status(world.cfg, world.aws)
    assert (info["config_version"], info["newest_config_version"], info["slots"]["green"]["config_version"]) == (
        1,
        1,
        1,
    )
    assert "config v0 -> v1" in "\n".join(release_status.lines(world.cfg, info))
    # the same value again: no version, no release
    again = change.set_vars(world.cfg, world.aws, {"GREETING": "hello"}, reporter=world.reporter)
    assert (again.outcome, again.version, again.unchanged) == ("unchanged", 1, ["GREETING"]) and world.state() == after


def test_no_release_stages_then_release_config_only_ships_them_together(world):
    before = world.state()
    change.set_vars(world.cfg, world.aws, {"A": "1"}, release=False, reporter=world.reporter)
    staged = change.set_vars(world.cfg, world.aws, {"B": "2"}, release=False, reporter=world.reporter)
    assert (staged.outcome, staged.version) == ("staged", 2) and world.state() == before
    listed = change.list_vars(world.cfg, world.aws)
    assert (listed.version, listed.live, {k: v["value"] for k, v in listed.vars.items()}) == (
        2,
        0,
        {"A": "1", "B": "2"},
    )
    assert release_status.status(world.cfg, world.aws)["newest_config_version"] == 2
    result = rollout.release(world.cfg, world.aws, config_only=True, reporter=world.reporter)
    assert (result.outcome, result.ami, result.config_version) == ("released", before.active.ami, 2)
    assert [
        r.rsplit("/", 1)[1] for r in user_data(world, world.state().active.version)["rodeo"]["config_parameters"]
    ] == ["A:1", "B:1"]
    assert change.list_vars(world.cfg, world.aws).live == 2
    with pytest.raises(ReleaseError, match="--config-only releases the live AMI"):
        rollout.release(world.cfg, world.aws, ami=world.ami(), config_only=True, reporter=world.reporter)


def test_rollback_restores_the_ami_and_the_config_version_and_it_sticks(world):
    seed_ami = world.state().active.ami
    change.set_vars(world.cfg, world.aws, {"GREETING": "one"}, reporter=world.reporter)  # (seed, v1)
    ami = world.ami()
    assert (
        rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter).config_version == 1
    )  # (ami, v1): the newest config
    change.set_vars(world.cfg, world.aws, {"GREETING": "two"}, reporter=world.reporter)  # (ami, v2)
    back = rollout.rollback(world.cfg, world.aws, reporter=world.reporter)
    # a rollback is a new release: config version 3, a copy of 1, is the newest and serves
    assert (back.outcome, back.ami, back.config_version) == ("restored", ami, 3)
    copy = store.get(world.cfg, world.aws, 3)
    assert (copy.restores, copy.changed, copy.vars) == (1, ("GREETING",), store.get(world.cfg, world.aws, 1).vars)
    assert world.state().active.holds(ami, 3)
    assert user_data(world, world.state().active.version)["rodeo"]["config_parameters"] == [
        f"/rodeo/{world.cfg.app}/test/GREETING:1"
    ]
    assert (
        rollout.rollback(world.cfg, world.aws, reporter=world.reporter).outcome == "unchanged"
    )  # never further back, no second copy
    assert change.list_vars(world.cfg, world.aws).version == 3 and change.list_vars(world.cfg, world.aws).live == 3
    # the next deploy keeps what the rollback restored
    later = rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    assert later.config_version == 3 and change.list_vars(world.cfg, world.aws).vars["GREETING"]["value"] == "one"
    assert seed_ami != ami


def test_rollback_to_a_numbered_release_restores_its_ami_and_config(world):
    seed_ami = world.state().active.ami
    change.set_vars(world.cfg, world.aws, {"GREETING": "one"}, reporter=world.reporter)  # v1: (seed, config 1)
    ami = world.ami(sha="feed123")
    rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)  # v2: (ami, config 1)
    change.set_vars(world.cfg, world.aws, {"GREETING": "two"}, reporter=world.reporter)  # v3: (ami, config 2)
    assert [(r.number, r.outcome, r.ami, r.config_version) for r in history.read(world.cfg, world.aws).runs] == [
        (3, "released", ami, 2),
        (2, "released", ami, 1),
        (1, "released", seed_ami, 1),
    ]
    planned = rollout.rollback(world.cfg, world.aws, to=1, plan_only=True, reporter=world.reporter)
    assert (planned.outcome, planned.ami, planned.config_version) == ("planned", seed_ami, 3) and store.newest(
        world.cfg, world.aws
    ).number == 2
    back = rollout.rollback(world.cfg, world.aws, to=1, reporter=world.reporter)
    assert (back.outcome, back.kind, back.ami, back.config_version, back.number, back.steps) == (
        "restored",
        "rollback",
        seed_ami,
        3,
        4,
        [100],
    )
    assert world.state().active.holds(seed_ami, 3) and store.get(world.cfg, world.aws, 3).restores == 1
    runs = history.read(world.cfg, world.aws)
    newest = runs.runs[0]
    assert (
        newest.number,
        newest.kind,
        newest.outcome,
        newest.restores,
        newest.from_ami,
        newest.from_config_version,
    ) == (4, "rollback", "restored", 1, ami, 2)
    assert newest.aws_caller and newest.aws_caller.startswith("arn:aws:") and newest.seconds is not None and newest.by
    assert "   v4" in runs.lines()[1] and "rolled back to v1" in runs.lines()[1]
    assert (
        rollout.rollback(world.cfg, world.aws, to=1, reporter=world.reporter).outcome == "unchanged"
    )  # a rerun: nothing to do
    with pytest.raises(ReleaseError, match="no release v9 is recorded") as refused:
        rollout.rollback(world.cfg, world.aws, to=9, reporter=world.reporter)
    assert refused.value.hint.startswith("these served and may be restored: v4, v3, v2, v1")


def test_unset_keeps_the_parameter_and_a_rollback_brings_the_key_back(world):
    change.set_vars(world.cfg, world.aws, {"GREETING": "hi", "MODE": "x"}, reporter=world.reporter)
    result = change.unset_vars(world.cfg, world.aws, ["MODE"], reporter=world.reporter)
    assert (result.outcome, result.version, result.removed) == ("released", 2, ["MODE"])
    assert user_data(world, world.state().active.version)["rodeo"]["config_parameters"] == [
        f"/rodeo/{world.cfg.app}/test/GREETING:1"
    ]
    assert f"/rodeo/{world.cfg.app}/test/MODE" in parameters(world)  # still in SSM, for the rollback
    back = rollout.rollback(world.cfg, world.aws, reporter=world.reporter)
    assert (
        back.config_version == 3
        and len(user_data(world, world.state().active.version)["rodeo"]["config_parameters"]) == 2
    )  # 3: a copy of 1


def test_refusals_change_nothing(world):
    change.set_vars(world.cfg, world.aws, {"GREETING": "hi"}, reporter=world.reporter)
    change.set_vars(
        world.cfg, world.aws, {"DB_PASSWORD": "correct horse"}, secret=True, release=False, reporter=world.reporter
    )
    before = (world.state(), parameters(world), ledger.recent(world.cfg, world.aws), store.newest(world.cfg, world.aws))
    with pytest.raises(ConfigError, match="config key NOPE is not set"):
        change.unset_vars(world.cfg, world.aws, ["GREETING", "NOPE"], reporter=world.reporter)
    with pytest.raises(ConfigError, match="DB_PASSWORD is a secret"):
        change.set_vars(world.cfg, world.aws, {"DB_PASSWORD": "now plain"}, reporter=world.reporter)
    held = lock.acquire(world.cfg, world.aws, "release of ami-other")
    with pytest.raises(LockError, match="is locked by"):
        change.set_vars(world.cfg, world.aws, {"GREETING": "while locked"}, reporter=world.reporter)
    lock.free(world.aws, held)
    assert (
        world.state(),
        parameters(world),
        ledger.recent(world.cfg, world.aws),
        store.newest(world.cfg, world.aws),
    ) == before
    assert lock.holder(world.cfg, world.aws) is None


def test_a_lost_parameter_version_stops_the_release_before_any_change(world):
    change.set_vars(world.cfg, world.aws, {"GREETING": "hi"}, release=False, reporter=world.reporter)
    world.aws.client("ssm").delete_parameter(Name=f"/rodeo/{world.cfg.app}/test/GREETING")
    before = world.state()
    with pytest.raises(
        ReleaseError,
        match=f"config version 1 names parameter versions SSM no longer has: /rodeo/{world.cfg.app}/test/GREETING:1",
    ):
        rollout.release(world.cfg, world.aws, config_only=True, reporter=world.reporter)
    assert world.state() == before and lock.holder(world.cfg, world.aws) is None


def test_concurrent_changes_get_their_own_versions(world):
    """Four `config.set --no-release` at once, each with its own clients: versions 1-4, none lost (conditional writes)."""
    barrier, errors = threading.Barrier(4), []

    def set_one(key):
        try:
            aws = LocalEnvironment(region=world.cfg.region, endpoint=world.url)
            barrier.wait(timeout=30)
            change.set_vars(world.cfg, aws, {key: "x"}, release=False, reporter=world.reporter)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=set_one, args=(f"K{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    newest = store.newest(world.cfg, world.aws)
    assert newest.number == 4 and sorted(newest.vars) == ["K0", "K1", "K2", "K3"]
    assert sorted(len(store.get(world.cfg, world.aws, n).vars) for n in (1, 2, 3, 4)) == [1, 2, 3, 4]


def test_a_secret_is_never_shown_recorded_or_put_in_user_data(world, monkeypatch, capsys):
    """Through the CLI task: the value comes from stdin and is found nowhere but SSM (and config.list --show-secrets)."""
    secret = "s3cr3t-Value-4711-x"
    monkeypatch.setattr(tasks, "_config", lambda env: world.cfg)
    monkeypatch.setattr(tasks, "_connect", lambda cfg, **kwargs: world.aws)
    monkeypatch.setattr(tasks, "_aws", lambda cfg, plan=False: world.aws)
    monkeypatch.setattr(sys, "stdin", io.StringIO(secret + "\n"))
    tasks.config_set.body(Context(), "DB_PASSWORD", secret=True)
    tasks.config_set.body(Context(), "GREETING=hi", json=True)
    tasks.config_list.body(Context())
    tasks.config_list.body(Context(), json=True)
    tasks.status.body(Context(), json=True)
    shown = capsys.readouterr()
    assert secret not in shown.out + shown.err
    assert "DB_PASSWORD=(secret)" in shown.out and "set DB_PASSWORD (secret)" in shown.out
    ec2, ddb = world.aws.client("ec2"), world.aws.client("dynamodb")
    versions = ec2.describe_launch_template_versions(LaunchTemplateName=f"rodeo-{world.cfg.app}")[
        "LaunchTemplateVersions"
    ]
    user_datas = [base64.b64decode(v["LaunchTemplateData"].get("UserData", "")).decode() for v in versions]
    assert any(f"/rodeo/{world.cfg.app}/test/DB_PASSWORD:1" in u for u in user_datas)  # named, with its version
    everywhere = [
        json.dumps(versions, default=str),
        *user_datas,
        json.dumps(ec2.describe_tags()["Tags"]),
        json.dumps(world.aws.client("autoscaling").describe_tags()["Tags"]),
        json.dumps(ddb.scan(TableName=f"rodeo-{world.cfg.app}")["Items"]),  # config versions, ledger, lock
        json.dumps(world.aws.client("ssm").describe_parameters()["Parameters"], default=str),
    ]
    assert all(secret not in text for text in everywhere)
    files = [p for root in (world.stack.state_dir, world.cfg.path.parents[2]) for p in root.rglob("*") if p.is_file()]
    assert files and not [p for p in files if secret.encode() in p.read_bytes()]
    # asked for: shown, and it is what SSM holds as a SecureString
    assert change.list_vars(world.cfg, world.aws, show_secrets=True).vars["DB_PASSWORD"] == {
        "value": secret,
        "secret": True,
        "parameter_version": 1,
    }
    assert parameters(world)[f"/rodeo/{world.cfg.app}/test/DB_PASSWORD"] == [(1, "SecureString")]


def test_the_instance_loader_fetches_exactly_the_named_versions(world):
    """The loader's AWS side (its script, loaded by path) against SSM: more than one batch of 10, old versions, secrets decrypted."""
    from tests.unit.configvars.test_loader import loader
    from toolkit.configvars import pin

    values = {f"K{i:02d}": f"value {i}" for i in range(12)}
    change.set_vars(world.cfg, world.aws, values, release=False, reporter=world.reporter)
    change.set_vars(
        world.cfg,
        world.aws,
        {"K00": "newer", "TOKEN": "hush hush"},
        secret=True,
        release=False,
        reporter=world.reporter,
    )
    ssm = world.aws.client("ssm")
    for number, expected in ((1, values), (2, {**values, "K00": "newer", "TOKEN": "hush hush"})):
        doc = json.dumps(
            {"rodeo": {"app": world.cfg.app, "env": "test", **pin.user_data(world.cfg, world.aws, number)}}
        ).encode()
        version, refs = loader.references(doc)
        assert version == number and loader.fetch(ssm, refs) == expected
    ssm.delete_parameter(Name=f"/rodeo/{world.cfg.app}/test/K05")
    with pytest.raises(loader.LoadError, match=f"SSM has no such parameter version: /rodeo/{world.cfg.app}/test/K05:1"):
        loader.fetch(ssm, refs)


def test_a_key_turned_secret_and_back_keeps_every_config_versions_values(world):
    """SSM refuses to change a parameter's type (the local stack too): the other type lives under <secret|plain>/KEY, nothing is deleted."""
    from tests.unit.configvars.test_loader import loader
    from toolkit.configvars import pin

    app, r = world.cfg.app, world.reporter
    change.set_vars(world.cfg, world.aws, {"TOKEN": "plain one"}, release=False, reporter=r)
    change.set_vars(world.cfg, world.aws, {"TOKEN": "hush hush"}, secret=True, release=False, reporter=r)
    change.unset_vars(world.cfg, world.aws, ["TOKEN"], release=False, reporter=r)
    change.set_vars(world.cfg, world.aws, {"TOKEN": "plain again"}, release=False, reporter=r)
    assert {n: h for n, h in parameters(world).items() if n.startswith(f"/rodeo/{app}/")} == {
        f"/rodeo/{app}/test/TOKEN": [(1, "String"), (2, "String")],
        f"/rodeo/{app}/test/secret/TOKEN": [(1, "SecureString")],
    }
    ssm = world.aws.client("ssm")
    loaded = {}
    for number in (1, 2, 3, 4):
        doc = json.dumps({"rodeo": {"app": app, "env": "test", **pin.user_data(world.cfg, world.aws, number)}}).encode()
        loaded[number] = loader.fetch(ssm, loader.references(doc)[1])
    assert loaded == {1: {"TOKEN": "plain one"}, 2: {"TOKEN": "hush hush"}, 3: {}, 4: {"TOKEN": "plain again"}}
    assert change.list_vars(world.cfg, world.aws, show_secrets=True).vars["TOKEN"] == {
        "value": "plain again",
        "secret": False,
        "parameter_version": 2,
    }
    assert store.get(world.cfg, world.aws, 2).vars["TOKEN"].name == f"/rodeo/{app}/test/secret/TOKEN"


# A config rollback --to: lock, the copy (config version 3), the ledger's counter and entry, a launch template version,
# ..., the lock's release: killed after each mutating call in turn, then run again, it finishes with one copy, never two.
CALLS_IN_A_CONFIG_ROLLBACK = 12  # checked below: a clean one makes this many mutating calls


def _two_config_releases(world):
    change.set_vars(world.cfg, world.aws, {"GREETING": "one"}, reporter=world.reporter)  # v1: (seed, config 1)
    change.set_vars(world.cfg, world.aws, {"GREETING": "two"}, reporter=world.reporter)  # v2: (seed, config 2)
    return world.state().active.ami


def test_a_clean_config_rollback_makes_the_expected_mutating_calls(world):
    from tests.integration.release.test_crash import Watched

    _two_config_releases(world)
    watched = Watched(world)
    assert rollout.rollback(world.cfg, watched, to=1, reporter=world.reporter).outcome == "restored"
    assert watched.count == CALLS_IN_A_CONFIG_ROLLBACK and watched.broken == []


@pytest.mark.parametrize("n", range(1, CALLS_IN_A_CONFIG_ROLLBACK + 1))
def test_a_killed_config_rollback_reruns_to_one_copy(world, n):
    from tests.integration.release.test_crash import Crash, Watched

    seed_ami = _two_config_releases(world)
    crashing = Watched(world, crash_after=n)
    try:
        rollout.rollback(world.cfg, crashing, to=1, reporter=world.reporter)
    except Crash:
        pass
    assert crashing.dead and crashing.broken == []  # the last call frees the lock: its failure is only warned about
    rerun = Watched(world)
    result = rollout.rollback(world.cfg, rerun, to=1, break_lock=True, reporter=world.reporter)
    assert rerun.broken == [] and result.outcome in ("restored", "unchanged")
    newest = store.newest(world.cfg, world.aws)
    assert (newest.number, newest.restores) == (3, 1)  # one copy, whether the kill came before or after it was made
    assert world.state().active.holds(seed_ami, 3) and not world.state().split
    assert all(e["outcome"] != "in_progress" for e in ledger.recent(world.cfg, world.aws))
    assert change.list_vars(world.cfg, world.aws).vars["GREETING"]["value"] == "one"
