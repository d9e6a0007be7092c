"""EC2 Auto Scaling's zone balance and default termination policy (toolkit.local.zones), as tables."""

from __future__ import annotations

import pytest

from toolkit.local.zones import Member, launch_subnets, termination_order

SUBNETS = [("subnet-a", "us-east-1a"), ("subnet-b", "us-east-1b")]


@pytest.mark.parametrize(
    "zones_now, count, launched",
    [
        ([], 4, ["subnet-a", "subnet-b", "subnet-a", "subnet-b"]),  # alternately, the first-listed zone first
        (["us-east-1a", "us-east-1a"], 3, ["subnet-b", "subnet-b", "subnet-a"]),  # the emptier zone catches up
        (["us-east-1b"], 1, ["subnet-a"]),
    ],
)
def test_each_new_instance_goes_to_the_zone_with_the_fewest(zones_now, count, launched):
    members = [Member(f"i-{n}", zone) for n, zone in enumerate(zones_now)]
    assert launch_subnets(SUBNETS, members, count) == launched


def test_a_zone_with_two_subnets_launches_in_its_first():
    subnets = [("subnet-a1", "us-east-1a"), ("subnet-a2", "us-east-1a"), ("subnet-b", "us-east-1b")]
    assert launch_subnets(subnets, [], 3) == ["subnet-a1", "subnet-b", "subnet-a1"]


def m(iid: str, zone: str, template: str = "lt-1", version: int = 2, age: float = 60.0, protected: bool = False):
    return Member(iid, f"us-east-1{zone}", template, version, age, protected)


@pytest.mark.parametrize(
    "members, count, ended",
    [
        # the fullest zone first, even when the other zone's instance is older
        ([m("i-1", "a"), m("i-2", "a"), m("i-3", "b", age=3000)], 1, ["i-1"]),
        # balanced zones: then by the policy; removing one unbalances, so the next comes from the other zone
        (
            [m("i-1", "a", age=100), m("i-2", "b", age=200), m("i-3", "a", age=50), m("i-4", "b", age=10)],
            2,
            ["i-2", "i-1"],
        ),
        # another launch template's instance before the group's own, in the chosen zone
        ([m("i-1", "a"), m("i-2", "a", template="lt-old")], 1, ["i-2"]),
        # the oldest version of the group's template before newer ones
        ([m("i-1", "a", version=3), m("i-2", "a", version=2, age=5)], 1, ["i-2"]),
        # then the one closest to its next billing hour (3590 s into its hour, against 60 s and 3650 s: 50 s in)
        ([m("i-1", "a", age=60), m("i-2", "a", age=3590), m("i-3", "a", age=3650)], 1, ["i-2"]),
        # a protected instance is never ended; its zone still counts for balance
        ([m("i-1", "a", protected=True), m("i-2", "a", protected=True), m("i-3", "b")], 2, ["i-3"]),
        # all ended, in the policy's order
        ([m("i-1", "a"), m("i-2", "b")], 2, ["i-1", "i-2"]),
    ],
)
def test_the_default_termination_policy(members, count, ended):
    assert termination_order(members, count, "lt-1") == ended


def test_a_zone_is_lost_and_back_in_the_live_stacks_file(tmp_path):
    from toolkit.local.zones import lose, lost_zones

    assert lost_zones(tmp_path) == frozenset() and lost_zones(None) == frozenset()
    assert lose(tmp_path, "us-east-1a") == {"us-east-1a"}
    assert lose(tmp_path, "us-east-1b") == {"us-east-1a", "us-east-1b"} == lost_zones(tmp_path)
    assert lose(tmp_path, "us-east-1a", lost=False) == {"us-east-1b"} == lost_zones(tmp_path)


def test_no_instance_is_launched_in_a_lost_zone():
    assert launch_subnets(SUBNETS, [], 3, lost=frozenset({"us-east-1a"})) == ["subnet-b"] * 3
    assert launch_subnets(SUBNETS, [], 2, lost=frozenset({"us-east-1a", "us-east-1b"})) == []


def test_there_is_no_zone_to_lose_without_a_live_stack(tmp_path):
    from toolkit.errors import StackError
    from toolkit.local import stack

    with pytest.raises(StackError) as refused:
        stack.fail_zone(stack.Stack(state_dir=tmp_path, cache_dir=tmp_path), "us-east-1", "us-east-1a")
    assert (refused.value.message, refused.value.hint) == (
        "no live local stack runs: there is no zone to lose",
        "invoke local.up (RODEO_LOCAL_LIVE=1)",
    )
