"""The words of a release and a rollback, as tables: what was tried, what serves now and why, said once; outcome names stay in --json."""

from __future__ import annotations

import pytest

from toolkit.config import Capacity, Release
from toolkit.release.planner import SlotState, State, describe, plan, rollback_plan
from toolkit.release.result import ReleaseResult

A, B = "ami-aaaaaaaa", "ami-bbbbbbbb"


def result(outcome, kind="release", **kw):
    base = dict(
        ami=B,
        git_sha=None,
        active_slot="green",
        previous_slot="blue",
        from_ami=A,
        config_version=3,
        from_config=2,
        steps=[10, 50, 100],
        seconds=17.2,
    )
    return ReleaseResult(outcome=outcome, kind=kind, **{**base, **kw})


LINES = [
    (
        "released",
        result("released", app_version="1.2.0"),
        [
            "released ami-bbbbbbbb (app 1.2.0, config v3) in 17s: green serves it now, in place of ami-aaaaaaaa (config v2)"
        ],
    ),
    (
        "config only",
        result("released", ami=A, from_ami=A),
        ["released ami-aaaaaaaa (config v3) in 17s: green serves it now, in place of ami-aaaaaaaa (config v2)"],
    ),
    (
        "first release",
        result("released", from_ami=None, from_config=None),
        ["released ami-bbbbbbbb (config v3) in 17s: green serves it now"],
    ),
    (
        "rolled back back",
        result(
            "released",
            kind="rollback",
            ami=A,
            config_version=2,
            from_ami=B,
            from_config=3,
            active_slot="blue",
            steps=[100],
        ),
        ["rolled back to ami-aaaaaaaa (config v2) in 17s: blue serves it again, in place of ami-bbbbbbbb (config v3)"],
    ),
    (
        "nothing to release",
        result("unchanged", seconds=None, steps=[]),
        ["nothing to release: ami-bbbbbbbb (config v3) already serves from green"],
    ),
    (
        "nothing to roll back",
        result("unchanged", kind="rollback", seconds=None, steps=[]),
        ["nothing to roll back: ami-bbbbbbbb (config v3) already serves from green"],
    ),
    (
        "planned rollback",
        result("planned", kind="rollback"),
        ["planned only: nothing was changed (run without --plan to roll back)"],
    ),
    ("rolled back: the error says it", result("rolled_back", active_slot="blue", steps=[10], reason="alarm"), []),
]


@pytest.mark.parametrize("name,res,expected", LINES, ids=[c[0] for c in LINES])
def test_lines(name, res, expected):
    assert res.lines() == expected
    assert not any(word in " ".join(res.lines()) for word in ("rolled_back", "unchanged", "released:", "active in"))


MESSAGES = [
    (
        "release rolled back at a step",
        result(
            "rolled_back",
            active_slot="blue",
            steps=[10, 50],
            reason="alarm(s) in ALARM: web-5xx (while watching)",
            app_version="1.2.0",
        ),
        "release of ami-bbbbbbbb (app 1.2.0, config v3) rolled back after 17s at 50% of traffic: alarm(s) in ALARM: web-5xx (while watching); "
        "blue serves ami-aaaaaaaa (config v2), as before",
    ),
    (
        "release rolled back before traffic",
        result("rolled_back", active_slot="blue", steps=[], reason="green has 0/2 healthy instance(s)"),
        "release of ami-bbbbbbbb (config v3) rolled back after 17s before it took any traffic: green has 0/2 healthy instance(s); "
        "blue serves ami-aaaaaaaa (config v2), as before",
    ),
    (
        "first release rolled back",
        result("rolled_back", active_slot="blue", steps=[], from_ami=None, from_config=None, reason="r"),
        "release of ami-bbbbbbbb (config v3) rolled back after 17s before it took any traffic: r; nothing served before it, and nothing serves now",
    ),
    (
        "rollback undone",
        result(
            "rolled_back",
            kind="rollback",
            ami=A,
            config_version=2,
            from_ami=B,
            from_config=3,
            active_slot="green",
            steps=[100],
            reason="r",
        ),
        "rollback to ami-aaaaaaaa (config v2) was undone after 17s at 100% of traffic: r; green serves ami-bbbbbbbb (config v3), as before",
    ),
]


@pytest.mark.parametrize("name,res,expected", MESSAGES, ids=[c[0] for c in MESSAGES])
def test_a_rolled_back_run_is_one_sentence(name, res, expected):
    assert res.rolled_back_message() == expected
    assert res.to_dict()["outcome"] == "rolled_back"  # the name stays in --json


REL = Release(
    load_balancer="web", slots={"blue": "web-blue", "green": "web-green"}, capacity=Capacity(2, 4, 2), pause_seconds=0
)


def test_a_rollback_plan_says_roll_back_and_names_no_rollback_target():
    live_b = State(
        SlotState("blue", 0, 0, 0, 0, A, 1, config=2), SlotState("green", 100, 2, 2, 2, B, 2, config=3), 2, B, 3
    )
    history = [
        {
            "kind": "release",
            "to_ami": B,
            "from_ami": A,
            "from_config_version": 2,
            "config_version": 3,
            "outcome": "released",
            "steps": [100],
        }
    ]
    lines = describe(rollback_plan(live_b, REL, history))
    assert (
        lines[0] == f"roll back to {A} with config v2 in blue (live now: green with {B}, config v3), resuming at: start"
    )
    assert not any("rollback target" in line for line in lines) and not any(
        line.startswith("release") for line in lines
    )
    assert describe(plan(live_b, REL, A, config=2))[-1] == f"  rollback target: {B} with config v3"
