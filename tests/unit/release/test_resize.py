"""``invoke scale web=N`` as tables: the words, and the plan from the slots' state (no AWS)."""

from __future__ import annotations

import pytest

from toolkit.errors import ConfigError, ReleaseError
from toolkit.release.plan import SlotState, State
from toolkit.release.resize import Change, parse, plan

A = "ami-aaaaaaaa"


@pytest.mark.parametrize("word, change", [("web=3", Change("=", 3)), ("web+1", Change("+", 1)), ("web-2", Change("-", 2)), (" web=0 ", Change("=", 0))])
def test_parse(word, change):
    assert parse(word) == change


@pytest.mark.parametrize("word, message, hint", [
    ("web", "'web' is not a process and a count", "write it like web=3 (or web+1, web-1)"),
    ("web=x", "'web=x' is not a process and a count", "write it like web=3 (or web+1, web-1)"),
    ("web=2:standard-2x", "'web=2:standard-2x' is not a process and a count", "write web=2; the instances' type is release.instance_type in rodeo.yml"),
    ("worker=2", "no process type 'worker': Rodeo's instances run one, web (the app behind the load balancer)", "write web=2"),
])
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


@pytest.mark.parametrize("state, change, error, message", [
    (live(), Change("=", 5), ConfigError, "web=5 is outside what web-blue allows: 2 to 4 instance(s)"),
    (live(), Change("-", 1), ConfigError, "web=1 is outside what web-blue allows: 2 to 4 instance(s)"),
    (live(split=True), Change("=", 3), ReleaseError, "a release is between steps (weights {'blue': 90, 'green': 10}): no slot holds all the traffic"),
    (live(ami=None), Change("=", 3), ReleaseError, "nothing is released yet, so no slot serves to scale"),
])
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
    assert plan(live(), Change("=", 2), "web-blue").lines() == ["nothing to scale: blue already runs web=2 (group web-blue, min 2, max 4)"]
