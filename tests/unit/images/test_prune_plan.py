"""The prune plan as tables: AMIs and what is in use in, what goes and why the rest stays out (no AWS)."""

from __future__ import annotations

import pytest

from toolkit.errors import ConfigError
from toolkit.images.prune import plan_prune

E, W = "us-east-1", "us-west-2"


def img(ami, n, region=E, source=None, state="available", twin_of=None):
    """An AMI built at minute ``n`` (a copy shares its twin's hash and built-at)."""
    n = twin_of if twin_of is not None else n
    tags = {
        "rodeo:app": "web",
        "rodeo:image": "app",
        "rodeo:built-at": f"2026-11-01T00:{n:02d}:00Z",
        "rodeo:inputs-hash": f"h{n}",
    }
    if source:
        tags["rodeo:source-ami"] = source
    return {
        "ImageId": ami,
        "Region": region,
        "State": state,
        "CreationDate": f"2026-11-01T00:{n:02d}:05.000Z",
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
        "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": f"snap-{ami[4:]}"}}],
    }


FIVE = [img(f"ami-{i}", i) for i in range(1, 6)]  # ami-5 is the newest

# (name, images, keep, in_use, expected deleted, expected {kept: reasons})
CASES = [
    (
        "keep newest 3",
        FIVE,
        3,
        {},
        ["ami-2", "ami-1"],
        {"ami-5": ["newest 3"], "ami-4": ["newest 3"], "ami-3": ["newest 3"]},
    ),
    ("keep more than exist", FIVE[:2], 5, {}, [], {"ami-2": ["newest 5"], "ami-1": ["newest 5"]}),
    (
        "in use survives with its reason",
        FIVE,
        2,
        {"ami-1": "in launch template v4", "ami-2": "in release ledger"},
        ["ami-3"],
        {
            "ami-5": ["newest 2"],
            "ami-4": ["newest 2"],
            "ami-2": ["in release ledger"],
            "ami-1": ["in launch template v4"],
        },
    ),
    (
        "newest and in use lists both reasons",
        FIVE,
        1,
        {"ami-5": "pinned by slot group web-blue"},
        ["ami-4", "ami-3", "ami-2", "ami-1"],
        {"ami-5": ["newest 1", "pinned by slot group web-blue"]},
    ),
    ("built-at orders, not the id", [img("ami-b", 1), img("ami-a", 9)], 1, {}, ["ami-b"], {"ami-a": ["newest 1"]}),
    (
        "parent of a kept AMI survives",
        [img("ami-1", 1), img("ami-2", 2), img("ami-3", 3, source="ami-1")],
        1,
        {},
        ["ami-2"],
        {"ami-3": ["newest 1"], "ami-1": ["parent of ami-3"]},
    ),
    (
        "parent of a deleted AMI goes",
        [img("ami-1", 1), img("ami-2", 2, source="ami-1"), img("ami-3", 3)],
        1,
        {},
        ["ami-2", "ami-1"],
        {"ami-3": ["newest 1"]},
    ),
    (
        "parents chain through in-use",
        [img("ami-1", 1), img("ami-2", 2, source="ami-1"), img("ami-3", 3)],
        1,
        {"ami-2": "in release ledger"},
        [],
        {"ami-3": ["newest 1"], "ami-2": ["in release ledger"], "ami-1": ["parent of ami-2"]},
    ),
    (
        "pending stays and does not count",
        [img("ami-1", 1), img("ami-2", 2), img("ami-3", 3, state="pending")],
        1,
        {},
        ["ami-1"],
        {"ami-3": ["pending (still being made)"], "ami-2": ["newest 1"]},
    ),
    (
        "failed goes and does not count",
        [img("ami-1", 1), img("ami-2", 2, state="failed")],
        1,
        {},
        ["ami-2"],
        {"ami-1": ["newest 1"]},
    ),
    ("no AMIs", [], 3, {}, [], {}),
]


@pytest.mark.parametrize("name,images,keep,used,deleted,kept", CASES, ids=[c[0] for c in CASES])
def test_plan_table(name, images, keep, used, deleted, kept):
    p = plan_prune(images, keep, used)
    assert [e.ami for e in p.delete] == deleted
    assert {e.ami: list(e.reasons) for e in p.keep} == kept
    assert p.keep_newest == keep


# Two builds copied to us-west-2: copies pair with their source by inputs-hash and built-at.
REGIONS = [
    img("ami-e1", 1),
    img("ami-w1", 0, W, twin_of=1),
    img("ami-e2", 2),
    img("ami-w2", 0, W, twin_of=2),
    img("ami-e3", 3),
    img("ami-w3", 0, W, twin_of=3),
]


def test_copies_go_and_stay_with_their_twin():
    p = plan_prune(REGIONS, 1, {"ami-e1": "in launch template v2"})
    assert sorted((e.ami, e.region) for e in p.delete) == [("ami-e2", E), ("ami-w2", W)]
    reasons = {e.ami: list(e.reasons) for e in p.keep}
    assert reasons == {
        "ami-e3": ["newest 1"],
        "ami-w3": ["newest 1"],
        "ami-e1": ["in launch template v2"],
        "ami-w1": ["in launch template v2 (as its twin ami-e1 in us-east-1)"],
    }


def test_parent_copy_protected_through_its_twin():
    images = [img("ami-b1", 1), img("ami-wb1", 0, W, twin_of=1), img("ami-b2", 2)]
    p = plan_prune(images, 1, {"ami-b1": "parent of ami-app9 (app)"})
    assert [e.ami for e in p.delete] == []
    assert (
        dict((e.ami, e.reasons[0]) for e in p.keep)["ami-wb1"]
        == "parent of ami-app9 (app) (as its twin ami-b1 in us-east-1)"
    )


def test_untagged_amis_are_their_own_build():
    bare = [
        {"ImageId": "ami-x", "Region": E, "CreationDate": "2026-01-01T00:00:00.000Z"},
        {"ImageId": "ami-y", "Region": E, "CreationDate": "2026-02-01T00:00:00.000Z"},
    ]
    p = plan_prune(bare, 1, {})
    assert [e.ami for e in p.delete] == ["ami-x"] and [e.ami for e in p.keep] == ["ami-y"]


def test_entries_carry_snapshots_and_dates():
    p = plan_prune(FIVE, 4, {})
    (gone,) = p.delete
    assert (gone.ami, gone.region, gone.snapshots, gone.built_at) == ("ami-1", E, ("snap-1",), "2026-11-01T00:01:00Z")
    assert p.as_dict()["delete"][0]["snapshots"] == ["snap-1"]


@pytest.mark.parametrize("keep", [0, -1])
def test_keep_below_one_is_refused(keep):
    with pytest.raises(ConfigError) as err:
        plan_prune(FIVE, keep, {})
    assert "--keep" in err.value.message and "at least 1" in err.value.hint
