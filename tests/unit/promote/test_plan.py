"""``invoke promote``'s plan as tables: facts in, the way the AMI travels (or the refusal) out (no AWS)."""

from __future__ import annotations

import dataclasses

import pytest

from toolkit.errors import PromoteError
from toolkit.promote.plan import (
    COPIED_FROM,
    Facts,
    Snapshot,
    SourceFacts,
    TargetFacts,
    check_envs,
    copy_name,
    plan,
    rolled_back,
)

A, B, C = "ami-aaaaaaaa", "ami-bbbbbbbb", "ami-cccccccc"
STAGING, PROD = "111111111111", "222222222222"
TAGS = {
    "rodeo:app": "web",
    "rodeo:image": "app",
    "rodeo:verified": "true",
    "rodeo:inputs-hash": "h1",
    "rodeo:built-at": "2026-12-01T10:00:00Z",
    "rodeo:app-version": "1.2.0",
    "Name": "not a lineage tag",
}


def entry(n, outcome, ami=B, kind="release", config=3, **kw):
    return {"number": n, "kind": kind, "outcome": outcome, "to_ami": ami, "config_version": config, **kw}


def source(**changes):
    base = SourceFacts(
        env="staging",
        region="eu-west-1",
        account=STAGING,
        load_balancer="web-staging",
        live_ami=B,
        live_config=3,
        entries=(entry(7, "released"), entry(6, "released", ami=A, config=2)),
        image={"ImageId": B, "OwnerId": STAGING, "Name": "web-app-20261201", "tags": dict(TAGS)},
        snapshots=(Snapshot("snap-1"),),
    )
    return dataclasses.replace(base, **changes)


def target(**changes):
    base = TargetFacts(
        env="production",
        region="eu-west-1",
        account=STAGING,
        app="web",
        image="app",
        load_balancer="web-production",
    )
    return dataclasses.replace(base, **changes)


def tagged(**changes):
    return {"ImageId": B, "OwnerId": STAGING, "Name": "web-app-20261201", "tags": dict(TAGS, **changes)}


# (name, source changes, target changes, action, AMI released, shared with, encrypted copy, waits)
WAYS = [
    ("same account and region: the AMI itself", {}, {}, "use", B, None, False, False),
    ("another region: a copy", {}, {"region": "us-east-1"}, "copy", None, None, False, True),
    (
        "another region, encrypted: an encrypted copy",
        {"snapshots": (Snapshot("snap-1", True, "alias/aws/ebs"),)},
        {"region": "us-east-1"},
        "copy",
        None,
        None,
        True,
        True,
    ),
    ("another account: shared, then copied", {}, {"account": PROD}, "share_copy", None, PROD, False, True),
    (
        "another account and region: shared, then copied",
        {},
        {"account": PROD, "region": "us-east-1"},
        "share_copy",
        None,
        PROD,
        False,
        True,
    ),
    (
        "an earlier promotion's copy, available: used",
        {},
        {"region": "us-east-1", "existing": {"ImageId": C, "State": "available", "why": "an earlier promotion's copy"}},
        "reuse",
        C,
        None,
        False,
        False,
    ),
    (
        "an earlier copy still pending: waited for, not copied again",
        {},
        {"account": PROD, "existing": {"ImageId": C, "State": "pending", "why": "an earlier promotion's copy"}},
        "reuse",
        C,
        None,
        False,
        True,
    ),
    (
        "an encrypted AMI already copied to the other account: used",
        {"snapshots": (Snapshot("snap-1", True, "k"),)},
        {"account": PROD, "existing": {"ImageId": C, "State": "available", "why": "x"}},
        "reuse",
        C,
        None,
        False,
        False,
    ),
    (
        "unknown accounts (no STS answer), same region: the AMI itself",
        {"account": None, "image": dict(tagged(), OwnerId=None)},
        {"account": None},
        "use",
        B,
        None,
        False,
        False,
    ),
]


@pytest.mark.parametrize("name,src,dst,action,ami,shared,encrypted,waits", WAYS, ids=[w[0] for w in WAYS])
def test_how_the_ami_gets_there(name, src, dst, action, ami, shared, encrypted, waits):
    p = plan(Facts(source(**src), target(**dst)))
    assert (p.action, p.target_ami, p.share_with, p.encrypted) == (action, ami, shared, encrypted)
    assert any("wait until" in line for line in p.lines()) == waits
    assert p.origin.to_dict() == {
        "env": "staging",
        "region": "eu-west-1",
        "account": src.get("account", STAGING),
        "ami": B,
        "number": 7,
        "config_version": 3,
    }
    assert p.lines()[0] == f"promote {B} from staging v7 ({B} in eu-west-1) to production:"
    assert p.lines()[-1].startswith("  then release it in production with production's newest config version")


def test_a_copy_carries_the_lineage_tags_and_where_it_came_from():
    p = plan(Facts(source(), target(account=PROD, region="us-east-1")))
    assert p.tags == {
        **{k: v for k, v in TAGS.items() if k.startswith("rodeo:")},
        COPIED_FROM: f"{STAGING}/eu-west-1/{B}",
    }
    assert p.snapshots == ("snap-1",) and p.name == f"web-app-20261201 from {B}"
    assert p.description == f"{B} of staging (eu-west-1), promoted to production by Rodeo"
    assert (
        "share it with account 222222222222: launch permission on ami-bbbbbbbb, createVolumePermission on snap-1"
        in (p.lines()[1])
    )


def test_a_copy_in_the_same_account_shares_nothing():
    p = plan(Facts(source(), target(region="us-east-1")))
    assert (p.share_with, p.snapshots) == (None, ())


# (name, source changes, target changes, refusal reason, words in the message)
REFUSALS = [
    ("the same environment", {}, {"env": "staging"}, "same_env", "are both 'staging'"),
    (
        "another name for the same load balancer",
        {},
        {"load_balancer": "web-staging"},
        "same_env",
        "name the same load balancer",
    ),
    ("nothing serves in the source", {"live_ami": None, "image": None}, {}, "nothing_released", "nothing is released"),
    (
        "what serves was never released (the stack's placeholder)",
        {"entries": ()},
        {},
        "nothing_released",
        "no release recorded it",
    ),
    (
        "only a release that never served recorded it",
        {"entries": (entry(7, "interrupted"), entry(6, "rolled_back"))},
        {},
        "nothing_released",
        "no release recorded it",
    ),
    ("a release between steps", {"split": True}, {}, "in_progress", "under way in staging"),
    ("the live AMI is gone", {"image": None}, {}, "gone", "no longer exists"),
    ("not verified", {"image": tagged(**{"rodeo:verified": "false"})}, {}, "unverified", "rodeo:verified=false"),
    (
        "never verified",
        {"image": {"ImageId": B, "tags": {"rodeo:app": "web"}}},
        {},
        "unverified",
        "rodeo:verified=absent",
    ),
    (
        "its config release failed a gate after it served",
        {"entries": (entry(8, "rolled_back", reason="alarm(s) in ALARM: web-5xx"), entry(7, "released"))},
        {},
        "rolled_back",
        "its release v8 failed a gate and was rolled back (alarm(s) in ALARM: web-5xx)",
    ),
    (
        "a rollback away from it that was itself undone",
        {"entries": (entry(8, "rolled_back", ami=A, kind="rollback", from_ami=B), entry(7, "released"))},
        {},
        "rolled_back",
        "v8 rolled back from it to ami-aaaaaaaa",
    ),
    (
        "a rollback to it that failed a gate",
        {"entries": (entry(8, "rolled_back", kind="rollback", from_ami=A), entry(7, "released"))},
        {},
        "rolled_back",
        "a rollback v8 to it failed a gate and was undone",
    ),
    ("another app's AMI", {"image": tagged(**{"rodeo:app": "shop"})}, {}, "other_app", "baked for app 'shop'"),
    ("another image", {"image": tagged(**{"rodeo:image": "worker"})}, {}, "other_app", "an AMI of image 'worker'"),
    (
        "encrypted, to another account",
        {"snapshots": (Snapshot("snap-1", True, "arn:aws:kms:eu-west-1:111111111111:key/k"),)},
        {"account": PROD},
        "encrypted",
        "snapshots are encrypted (arn:aws:kms:eu-west-1:111111111111:key/k)",
    ),
]


@pytest.mark.parametrize("name,src,dst,reason,words", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals(name, src, dst, reason, words):
    with pytest.raises(PromoteError) as refused:
        plan(Facts(source(**src), target(**dst)))
    assert refused.value.reason == reason and words in refused.value.message, refused.value.message
    assert refused.value.hint


def test_the_same_environment_is_refused_before_anything_connects():
    with pytest.raises(PromoteError, match="both 'staging'") as refused:
        check_envs("staging", "staging")
    assert "release --config-only" in refused.value.hint
    check_envs("staging", "production")


# (name, ledger newest first, what undid B or None)
HISTORY = [
    ("released", [entry(7, "released")], None),
    ("a rollback restored it: the known-good one", [entry(9, "restored", kind="rollback", from_ami=A)], None),
    (
        "released again after a rollback away from it",
        [entry(9, "released"), entry(8, "restored", ami=A, kind="rollback", from_ami=B)],
        None,
    ),
    ("rolled back away from it", [entry(8, "restored", ami=A, kind="rollback", from_ami=B), entry(7, "released")], 8),
    ("a failed release of it", [entry(8, "rolled_back"), entry(7, "released")], 8),
    ("runs of other AMIs say nothing", [entry(9, "rolled_back", ami=C), entry(7, "released")], None),
    ("an interrupted run is skipped", [entry(9, "interrupted"), entry(8, "rolled_back"), entry(7, "released")], 8),
    ("a stopped release phase is not a rollback", [entry(8, "stopped"), entry(7, "released")], None),
    ("no run at all", [], None),
]


@pytest.mark.parametrize("name,entries,undone", HISTORY, ids=[h[0] for h in HISTORY])
def test_what_rolled_it_back(name, entries, undone):
    found = rolled_back(entries, B)
    assert (found or {}).get("number") == undone


@pytest.mark.parametrize(
    "name,copied",
    [
        ("web-app-20261201", f"web-app-20261201 from {B}"),
        ("web app (1) [x] ./-'@_", f"web app (1) [x] ./-'@_ from {B}"),
        ("web:app*1", f"web-app-1 from {B}"),
        ("x" * 200, "x" * (128 - 18) + f" from {B}"),
    ],
)
def test_copy_names_are_ones_copy_image_takes_and_never_the_sources(name, copied):
    assert copy_name(name, B) == copied and len(copied) <= 128


def test_the_plan_as_json_names_the_origin():
    p = plan(Facts(source(), target(region="us-east-1")))
    data = p.to_dict()
    assert data["origin"]["number"] == 7 and data["action"] == "copy" and data["target_ami"] is None
