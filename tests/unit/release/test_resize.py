"""``invoke scale web=N`` as tables: the words, and the plan from the slots' state (no AWS)."""

from __future__ import annotations

import pytest

from toolkit.errors import ConfigError, ReleaseError
from toolkit.release.planner import SlotState, State
from toolkit.release.resize import Change, parse, plan

A = "ami-aaaaaaaa"


@pytest.mark.parametrize(
    "word, change",
    [("web=3", Change("=", 3)), ("web+1", Change("+", 1)), ("web-2", Change("-", 2)), (" web=0 ", Change("=", 0))],
)
def test_parse(word, change):
    assert parse(word) == change


@pytest.mark.parametrize(
    "word, message, hint",
    [
        ("web", "'web' is not a process and a count", "write it like web=3 (or web+1, web-1)"),
        ("web=x", "'web=x' is not a process and a count", "write it like web=3 (or web+1, web-1)"),
        (
            "web=2:standard-2x",
            "'web=2:standard-2x' is not a process and a count",
            "write web=2; the instances' type is release.instance_type in rodeo.yml",
        ),
        (
            "worker=2",
            "no process type 'worker': Rodeo's instances run one, web (the app behind the load balancer)",
            "write web=2",
        ),
    ],
)
def test_parse_refuses(word, message, hint):
    with pytest.raises(ConfigError) as refused:
        parse(word)
    assert (refused.value.message, refused.value.hint) == (message, hint)


def live(desired=2, lo=2, hi=4, split=False, ami=A):
    blue = SlotState("blue", 90 if split else 100, desired, desired, desired, ami, 1, min_size=lo, max_size=hi)
    green = SlotState("green", 10 if split else 0, 0, 0, 0, A, 2)
    return State(blue, green, 2, A)


PLANS = [
    ("up", live(), Change("=", 3), ("scale", "blue", 2, 3)),
    ("down to min", live(3), Change("=", 2), ("scale", "blue", 3, 2)),
    ("plus one", live(), Change("+", 1), ("scale", "blue", 2, 3)),
    ("minus one", live(3), Change("-", 1), ("scale", "blue", 3, 2)),
    ("same count", live(), Change("=", 2), ("unchanged", "blue", 2, 2)),
    ("to max", live(), Change("=", 4), ("scale", "blue", 2, 4)),
]


@pytest.mark.parametrize("name, state, change, expected", PLANS, ids=[p[0] for p in PLANS])
def test_plan(name, state, change, expected):
    p = plan(state, change, "web-blue")
    assert (p.outcome, p.slot, p.current, p.desired) == expected
    assert (p.group, p.min, p.max, p.ami) == ("web-blue", 2, 4, A)


@pytest.mark.parametrize(
    "state, change, error, message",
    [
        (live(), Change("=", 5), ConfigError, "web=5 is outside what web-blue allows: 2 to 4 instance(s)"),
        (live(), Change("-", 1), ConfigError, "web=1 is outside what web-blue allows: 2 to 4 instance(s)"),
        (
            live(split=True),
            Change("=", 3),
            ReleaseError,
            "a release is between steps (weights {'blue': 90, 'green': 10}): no slot holds all the traffic",
        ),
        (live(ami=None), Change("=", 3), ReleaseError, "nothing is released yet, so no slot serves to scale"),
    ],
)
def test_plan_refuses(state, change, error, message):
    with pytest.raises(error) as refused:
        plan(state, change, "web-blue")
    assert refused.value.message == message and refused.value.hint


def test_plan_lines_and_notes():
    p = plan(live(), Change("=", 3), "web-blue", targets=("cpu",), schedules=("night",))
    assert p.lines() == [
        f"scale web from 2 to 3 instance(s) of {A} in blue (group web-blue, min 2, max 4)",
        "  note: target tracking (cpu) resizes web-blue by load, and may change this count",
        "  note: the schedules (night) set its size at their times",
    ]
    assert plan(live(), Change("=", 2), "web-blue").lines() == [
        "nothing to scale: blue already runs web=2 (group web-blue, min 2, max 4)"
    ]


@pytest.mark.parametrize(
    "word, low, high, change",
    [
        ("3", "", "", Change("=", 3)),
        (" 12 ", "", "", Change("=", 12)),
        ("web=3", "2", "6", Change("=", 3, 2, 6)),
        ("", "", "8", Change("", 0, None, 8)),
    ],
)
def test_parse_a_bare_count_and_limits(word, low, high, change):
    assert parse(word, low, high) == change


@pytest.mark.parametrize(
    "word, low, high, message",
    [
        ("", "", "", "no count given"),
        ("3", "two", "", "--min 'two' is not a number of instances"),
        ("3", "", "-1", "--max '-1' is not a number of instances"),
        ("12345", "", "", "'12345' is not a process and a count"),
    ],
)
def test_parse_refuses_bad_limits(word, low, high, message):
    with pytest.raises(ConfigError) as refused:
        parse(word, low, high)
    assert refused.value.message == message and refused.value.hint


LIMITS = [
    # (name, change, expected (outcome, current, desired, min, max, from_min, from_max))
    ("raise the max and scale", Change("=", 6, None, 8), ("scale", 2, 6, 2, 8, 2, 4)),
    ("limits only: the count moves into them", Change("", 0, 3, 6), ("scale", 2, 3, 3, 6, 2, 4)),
    ("same limits, same count", Change("=", 2, 2, 4), ("unchanged", 2, 2, 2, 4, None, None)),
    ("at the floor", Change("=", 2), ("scale", 3, 2, 2, 4, None, None)),
]


@pytest.mark.parametrize("name, change, expected", LIMITS, ids=[x[0] for x in LIMITS])
def test_plan_with_limits(name, change, expected):
    state = live(3) if name == "at the floor" else live()
    p = plan(state, change, "web-blue", floor=2)
    assert (p.outcome, p.current, p.desired, p.min, p.max, p.from_min, p.from_max) == expected


@pytest.mark.parametrize(
    "change, message, hint",
    [
        (
            Change("=", 1, 1, 4),
            "--min 1 is below release.capacity.min (2)",
            "release.capacity.min is 2: a slot needs that many healthy instances to hold any traffic (the release's gates); "
            "give --min 2 or more, or lower release.capacity.min in rodeo.yml",
        ),
        (Change("=", 1, 0, 4), "--min 0 is below release.capacity.min (2)", None),
        (
            Change("-", 1),
            "web=1 is below release.capacity.min (2)",
            "release.capacity.min is 2: a slot needs that many healthy instances to hold any traffic (the release's gates), "
            "so fewer would stop the next release; scale to 2 or more, or lower release.capacity.min in rodeo.yml",
        ),
        (Change("", 0, 5, 3), "--min 5 is above --max 3", "give a minimum no larger than the maximum"),
        (
            Change("=", 6),
            "web=6 is outside what web-blue allows: 2 to 4 instance(s)",
            "scale within them, or change them with --min/--max",
        ),
    ],
)
def test_plan_refuses_below_the_floor_with_the_reason(change, message, hint):
    with pytest.raises(ConfigError) as refused:
        plan(live(), change, "web-blue", floor=2)
    assert refused.value.message == message
    assert hint is None or refused.value.hint == hint


def test_lines_with_new_limits():
    assert plan(live(), Change("", 0, 2, 8), "web-blue", floor=2).lines() == [
        f"keep web=2 of {A} in blue, new limits (group web-blue, min 2 -> 2, max 4 -> 8)"
    ]
