"""The release plan as tables: a State and a target AMI in, a Plan out (no AWS)."""

from __future__ import annotations

import dataclasses

import pytest

from toolkit.config import Capacity, Release
from toolkit.errors import ReleaseError
from toolkit.release.planner import (
    SlotState,
    State,
    plan,
    restore_plan,
    resume_point,
    rollback_plan,
    rollback_target,
    start_capacity,
    violations,
)

REL = Release(
    load_balancer="web", slots={"blue": "web-blue", "green": "web-green"}, capacity=Capacity(2, 4, 2), pause_seconds=0
)
WARM = Release(load_balancer="web", slots={"blue": "web-blue", "green": "web-green"}, keep_old_slot_warm=True)
A, B, C = "ami-aaaaaaaa", "ami-bbbbbbbb", "ami-cccccccc"


def s(name, weight=0, n=0, ami=None, version=None, healthy=None):
    return SlotState(
        name,
        weight=weight,
        desired=n,
        instances=n,
        healthy=n if healthy is None else healthy,
        ami=ami,
        version=version,
        drain_seconds=30,
    )


def st(blue, green, latest=None):
    versions = [x for x in ((blue.version, blue.ami), (green.version, green.ami)) if x[0]]
    top = latest or (max(versions) if versions else (None, None))
    return State(blue, green, top[0], top[1])


LIVE_A = st(s("blue", 100, 2, A, 1), s("green", 0, 0, A, 1))
# (name, state, target, expected (outcome, resume, new, old, steps, reuse, clear, scale_old_down))
CASES = [
    ("fresh release", LIVE_A, B, ("release", "start", "green", "blue", [10, 50, 100], None, False, True)),
    (
        "crash after new version",
        st(s("blue", 100, 2, A, 1), s("green", 0, 0, A, 1), latest=(2, B)),
        B,
        ("release", "start", "green", "blue", [10, 50, 100], 2, False, True),
    ),
    (
        "crash after scale-up",
        st(s("blue", 100, 2, A, 1), s("green", 0, 2, B, 2)),
        B,
        ("release", "scale_up", "green", "blue", [10, 50, 100], 2, False, True),
    ),
    (
        "crash at 10%",
        st(s("blue", 90, 2, A, 1), s("green", 10, 2, B, 2)),
        B,
        ("release", "shift", "green", "blue", [10, 50, 100], 2, False, True),
    ),
    (
        "crash at 50%",
        st(s("blue", 50, 2, A, 1), s("green", 50, 2, B, 2)),
        B,
        ("release", "shift", "green", "blue", [50, 100], 2, False, True),
    ),
    (
        "odd weight resumes at the next step",
        st(s("blue", 63, 2, A, 1), s("green", 37, 2, B, 2)),
        B,
        ("release", "shift", "green", "blue", [50, 100], 2, False, True),
    ),
    (
        "crash at 100% before drain",
        st(s("blue", 0, 2, A, 1), s("green", 100, 2, B, 2)),
        B,
        ("release", "drain", "green", "blue", [], 2, False, True),
    ),
    (
        "already released",
        st(s("blue", 0, 0, A, 1), s("green", 100, 2, B, 2)),
        B,
        ("unchanged", "done", "green", "blue", [], 2, False, False),
    ),
    (
        "idle slot runs an older AMI",
        st(s("blue", 0, 2, A, 1), s("green", 100, 2, B, 2)),
        C,
        ("release", "start", "blue", "green", [10, 50, 100], None, True, True),
    ),
    (
        "split, releasing the older AMI reverts",
        st(s("blue", 50, 2, A, 1), s("green", 50, 2, B, 2)),
        A,
        ("release", "shift", "blue", "green", [100], 1, False, True),
    ),
    (
        "idle holds the AMI on an old version",
        st(s("blue", 0, 0, A, 1), s("green", 100, 2, B, 2)),
        A,
        ("release", "start", "blue", "green", [10, 50, 100], None, False, True),
    ),
    (
        "first release into an empty pair",
        st(s("blue", 100, 0, None, 1), s("green", 0, 0, None, 1)),
        B,
        ("release", "start", "green", "blue", [100], None, False, True),
    ),
]


@pytest.mark.parametrize("name,state,target,expected", CASES, ids=[c[0] for c in CASES])
def test_plan_table(name, state, target, expected):
    p = plan(state, REL, target)
    got = (
        p.outcome,
        p.resume,
        p.new_slot,
        p.old_slot,
        [x.new_weight for x in p.steps],
        p.reuse_version,
        p.clear_new_first,
        p.scale_old_down,
    )
    assert got == expected
    assert all(x.new_weight + x.old_weight == 100 for x in p.steps)


def test_plan_details():
    p = plan(LIVE_A, REL, B)
    assert (p.from_ami, p.to_ami, p.rollback_target, p.drain_seconds) == (A, B, A, 30)
    assert [(x.new_instances, x.old_instances) for x in p.steps] == [(2, 2)] * 3
    assert plan(LIVE_A, REL, B, steps=(100,)).steps[0].new_weight == 100
    first = plan(st(s("blue", 100, 0, None, 1), s("green", 0, 0, None, 1)), REL, B)
    assert first.first_release and first.rollback_target is None


@pytest.mark.parametrize(
    "state,resume",
    [
        (st(s("blue", 0, 2, A, 1), s("green", 100, 2, B, 2)), "unchanged"),  # old kept warm: nothing to do
        (LIVE_A, "release"),
    ],
)
def test_keep_warm(state, resume):
    p = plan(state, WARM, B)
    assert p.outcome == ("unchanged" if resume == "unchanged" else "release")
    assert not p.scale_old_down


@pytest.mark.parametrize(
    "state,target,error",
    [
        (st(s("blue", 50, 2, A, 1), s("green", 50, 2, B, 2)), C, "half done"),
        (st(s("blue", 0, 2, A, 1), s("green", 0, 2, B, 2)), B, "no traffic"),
    ],
)
def test_plan_refuses(state, target, error):
    with pytest.raises(ReleaseError, match=error):
        plan(state, REL, target)


@pytest.mark.parametrize("steps", [(50, 10, 100), (10, 50), (0, 100), (10, 10, 100), ()])
def test_bad_steps(steps):
    with pytest.raises(ReleaseError, match="increase and end at 100"):
        plan(LIVE_A, REL, B, steps=steps or (1, 2))


@pytest.mark.parametrize(
    "state,target,point",
    [
        (LIVE_A, B, ("start", "green")),
        (st(s("blue", 50, 2, A, 1), s("green", 50, 2, B, 2)), B, ("shift", "green")),
        (st(s("blue", 0, 2, A, 1), s("green", 100, 2, B, 2)), B, ("drain", "green")),
        (st(s("blue", 0, 0, A, 1), s("green", 100, 2, B, 2)), B, ("done", "green")),
    ],
)
def test_resume_point(state, target, point):
    assert resume_point(state, target, REL) == point


RELEASED_B = [{"outcome": "released", "from_ami": A, "to_ami": B}]
ROLLBACKS = [
    ("after a release", st(s("blue", 0, 0, A, 1), s("green", 100, 2, B, 2)), RELEASED_B, (A, "blue", [100], "start")),
    (
        "mid release",
        st(s("blue", 50, 2, A, 1), s("green", 50, 2, B, 2)),
        [{"outcome": "in_progress", "from_ami": A, "to_ami": B}],
        (A, "blue", [100], "shift"),
    ),
    (
        "release never reached traffic",
        st(s("blue", 100, 2, A, 1), s("green", 0, 2, B, 2)),
        [{"outcome": "interrupted", "from_ami": A, "to_ami": B}],
        (A, "blue", [], "drain"),
    ),
    (
        "ledger empty, idle slot knows",
        st(s("blue", 0, 0, A, 1), s("green", 100, 2, B, 2)),
        [],
        (A, "blue", [100], "start"),
    ),
]


@pytest.mark.parametrize("name,state,history,expected", ROLLBACKS, ids=[r[0] for r in ROLLBACKS])
def test_rollback_plan(name, state, history, expected):
    p = rollback_plan(state, REL, history)
    assert (p.to_ami, p.new_slot, [x.new_weight for x in p.steps], p.resume) == expected
    assert p.scale_old_down


def test_rollback_never_picks_a_failed_release():
    state = st(s("blue", 100, 2, A, 3), s("green", 0, 0, B, 2))
    with pytest.raises(ReleaseError, match="nothing to roll back to"):
        rollback_target(state, [{"outcome": "rolled_back", "from_ami": A, "to_ami": B}])


def test_violations():
    ok = st(s("blue", 90, 2, A, 1), s("green", 10, 2, B, 2))
    bad = st(s("blue", 90, 2, A, 1), s("green", 10, 2, B, 2, healthy=1))
    idle_unhealthy = st(s("blue", 100, 2, A, 1), s("green", 0, 2, B, 2, healthy=0))
    assert violations(ok, REL) == [] and violations(idle_unhealthy, REL) == []
    assert violations(bad, REL) == ["green has weight 10 with 1 healthy target(s), fewer than 2"]


# --- rollback: every ledger/slot combination, one sentence ------------------------------------
# `invoke rollback` restores the AMI that was live before the last release that moved traffic
# (or was in progress), and a rerun of a killed rollback finishes that same rollback.
X = "ami-99999999"  # live before A


def rel(frm, to, outcome, steps=None, resume="start"):
    steps = [10, 50, 100] if steps is None and outcome == "released" else (steps or [])
    return {"kind": "release", "from_ami": frm, "to_ami": to, "outcome": outcome, "steps": steps, "resume": resume}


def rb(frm, to, outcome, steps=()):
    return {
        "kind": "rollback",
        "from_ami": frm,
        "to_ami": to,
        "outcome": outcome,
        "steps": list(steps),
        "resume": "start",
    }


A_TO_B = rel(A, B, "released")
B_LIVE = st(s("blue", 0, 0, A, 1), s("green", 100, 2, B, 2))
A_BACK = st(s("blue", 100, 2, A, 3), s("green", 0, 0, B, 2))  # a finished rollback: A re-pinned to v3
# (name, config, state, ledger newest first, expected: (target, outcome, new slot, steps, resume, scale other down) or an error)
ROLLBACK_TABLE = [
    ("fresh: nothing released yet", REL, LIVE_A, [], "nothing to roll back to"),
    ("first release recorded", REL, B_LIVE, [rel(None, B, "released")], "nothing to roll back to"),
    ("after a good release", REL, B_LIVE, [A_TO_B], (A, "release", "blue", [100], "start", True)),
    (
        "after a good release, legacy entry",
        REL,
        B_LIVE,
        [{"outcome": "released", "from_ami": A, "to_ami": B}],
        (A, "release", "blue", [100], "start", True),
    ),
    ("ledger empty, idle slot is older", REL, B_LIVE, [], (A, "release", "blue", [100], "start", True)),
    # a release killed at each point (its entry in_progress, or closed as interrupted by a later run)
    (
        "release killed before its new version",
        REL,
        LIVE_A,
        [rel(A, B, "in_progress"), rel(X, A, "released")],
        (A, "unchanged", "blue", [], "done", False),
    ),
    (
        "release killed after its new version",
        REL,
        st(s("blue", 100, 2, A, 1), s("green", 0, 0, A, 1), latest=(2, B)),
        [rel(A, B, "interrupted"), rel(X, A, "released")],
        (A, "unchanged", "blue", [], "done", False),
    ),
    (
        "release killed after scale-up",
        REL,
        st(s("blue", 100, 2, A, 1), s("green", 0, 2, B, 2)),
        [rel(A, B, "in_progress"), rel(X, A, "released")],
        (A, "release", "blue", [], "drain", True),
    ),
    (
        "release killed at 10%",
        REL,
        st(s("blue", 90, 2, A, 1), s("green", 10, 2, B, 2)),
        [rel(A, B, "in_progress", [10])],
        (A, "release", "blue", [100], "shift", True),
    ),
    (
        "release killed at 50%, odd weight",
        REL,
        st(s("blue", 63, 2, A, 1), s("green", 37, 2, B, 2)),
        [rel(A, B, "interrupted", [10])],
        (A, "release", "blue", [100], "shift", True),
    ),
    (
        "release killed at 100% before drain",
        REL,
        st(s("blue", 0, 2, A, 1), s("green", 100, 2, B, 2)),
        [rel(A, B, "in_progress", [10, 50])],
        (A, "release", "blue", [100], "start", True),
    ),
    (
        "release killed at 100%, closed as released",
        REL,
        st(s("blue", 0, 2, A, 1), s("green", 100, 2, B, 2)),
        [rel(A, B, "released", [10, 50])],
        (A, "release", "blue", [100], "start", True),
    ),
    # a rollback of A->B killed at each point, then rerun: always A, never B
    (
        "rollback killed before any change",
        REL,
        B_LIVE,
        [rb(B, A, "in_progress"), A_TO_B],
        (A, "release", "blue", [100], "start", True),
    ),
    (
        "rollback killed after its new version",
        REL,
        st(s("blue", 0, 0, A, 1), s("green", 100, 2, B, 2), latest=(3, A)),
        [rb(B, A, "interrupted"), A_TO_B],
        (A, "release", "blue", [100], "start", True),
    ),
    (
        "rollback killed after scale-up",
        REL,
        st(s("blue", 0, 2, A, 3), s("green", 100, 2, B, 2)),
        [rb(B, A, "in_progress"), A_TO_B],
        (A, "release", "blue", [100], "scale_up", True),
    ),
    (
        "rollback killed at 100%",
        REL,
        st(s("blue", 100, 2, A, 3), s("green", 0, 2, B, 2)),
        [rb(B, A, "in_progress", [100]), A_TO_B],
        (A, "release", "blue", [], "drain", True),
    ),
    (
        "rollback killed at 100%, closed as released",
        REL,
        st(s("blue", 100, 2, A, 3), s("green", 0, 2, B, 2)),
        [rb(B, A, "released", [100]), A_TO_B],
        (A, "release", "blue", [], "drain", True),
    ),
    (
        "rollback finished",
        REL,
        A_BACK,
        [rb(B, A, "released", [100]), A_TO_B],
        (A, "unchanged", "blue", [], "done", False),
    ),
    (
        "rollback of a half-done release killed after its weight change",
        REL,
        st(s("blue", 100, 2, A, 1), s("green", 0, 2, B, 2)),
        [rb(B, A, "in_progress", [100]), rel(A, B, "interrupted", [10])],
        (A, "release", "blue", [], "drain", True),
    ),
    # a second rollback never deploys an AMI that never took traffic
    (
        "second rollback after a release killed before traffic",
        REL,
        st(s("blue", 100, 2, A, 1), s("green", 0, 0, B, 2)),
        [rb(B, A, "released"), rel(A, B, "interrupted"), rel(X, A, "released")],
        (A, "unchanged", "blue", [], "done", False),
    ),
    (
        "cleanup run of the live AMI does not count",
        REL,
        st(s("blue", 100, 2, A, 1), s("green", 0, 0, B, 2)),
        [rel(B, A, "released", [], resume="drain"), rel(A, B, "interrupted")],
        (A, "unchanged", "blue", [], "done", False),
    ),
    (
        "release that rolled itself back before traffic does not count",
        REL,
        B_LIVE,
        [rel(B, C, "rolled_back", []), A_TO_B],
        (A, "release", "blue", [100], "start", True),
    ),
    (
        "release that rolled itself back after traffic counts",
        REL,
        B_LIVE,
        [rel(B, C, "rolled_back", [10]), A_TO_B],
        (B, "unchanged", "green", [], "done", False),
    ),
    (
        "only a failed release recorded",
        REL,
        st(s("blue", 100, 2, A, 3), s("green", 0, 0, B, 2)),
        [rel(A, B, "rolled_back", [])],
        "nothing to roll back to",
    ),
    # the old slot kept warm
    (
        "warm: after a good release",
        WARM,
        st(s("blue", 0, 2, A, 1), s("green", 100, 2, B, 2)),
        [A_TO_B],
        (A, "release", "blue", [100], "start", False),
    ),
    (
        "warm: rollback finished, B stays warm",
        WARM,
        st(s("blue", 100, 2, A, 3), s("green", 0, 2, B, 2)),
        [rb(B, A, "released", [100]), A_TO_B],
        (A, "unchanged", "blue", [], "done", False),
    ),
    (
        "warm: a release killed before traffic is scaled down",
        WARM,
        st(s("blue", 100, 2, A, 1), s("green", 0, 2, B, 2)),
        [rel(A, B, "in_progress")],
        (A, "release", "blue", [], "drain", True),
    ),
]


@pytest.mark.parametrize("name,config,state,history,expected", ROLLBACK_TABLE, ids=[r[0] for r in ROLLBACK_TABLE])
def test_rollback_table(name, config, state, history, expected):
    if isinstance(expected, str):
        with pytest.raises(ReleaseError, match=expected):
            rollback_plan(state, config, history)
        return
    p = rollback_plan(state, config, history)
    assert (p.to_ami, p.outcome, p.new_slot, [x.new_weight for x in p.steps], p.resume, p.scale_old_down) == expected
    assert p.to_ami in (A, B, X)


@pytest.mark.parametrize(
    "name,config,state,history,expected",
    [r for r in ROLLBACK_TABLE if not isinstance(r[4], str)],
    ids=[r[0] for r in ROLLBACK_TABLE if not isinstance(r[4], str)],
)
def test_closing_entries_never_changes_the_target(name, config, state, history, expected):
    """What the next run's bookkeeping does to unfinished entries (interrupted, or released) changes nothing."""
    for closed in ("interrupted", "released"):
        again = [dict(e, outcome=closed) if e["outcome"] == "in_progress" else e for e in history]
        assert rollback_plan(state, config, again).to_ami == expected[0]


# --- config vars: a release is an (AMI, config version) pair ------------------------------------


def sc(name, weight=0, n=0, ami=None, version=None, config=0):
    return SlotState(
        name,
        weight=weight,
        desired=n,
        instances=n,
        healthy=n,
        ami=ami,
        version=version,
        drain_seconds=30,
        config=config,
    )


def stc(blue, green, latest=None):
    """A State whose launch template's newest version is ``latest`` = (version, ami, config), or the slots' highest."""
    top = latest or max((x.version, x.ami, x.config) for x in (blue, green) if x.version)
    return State(blue, green, *top)


A1 = stc(sc("blue", 100, 2, A, 1, config=1), sc("green", 0, 0, A, 1, config=1))
# (name, state, target (ami, config), expected (outcome, resume, new, old, steps, reuse, clear, from_config, rollback_config))
CONFIG_CASES = [
    (
        "same AMI, new config: a full release",
        A1,
        (A, 2),
        ("release", "start", "green", "blue", [10, 50, 100], None, False, 1, 1),
    ),
    ("same AMI and config: nothing to do", A1, (A, 1), ("unchanged", "done", "blue", "green", [], 1, False, 1, None)),
    ("new AMI, same config", A1, (B, 1), ("release", "start", "green", "blue", [10, 50, 100], None, False, 1, 1)),
    (
        "crash after the new version of a config release: reused",
        stc(sc("blue", 100, 2, A, 1, 1), sc("green", 0, 0, A, 1, 1), latest=(2, A, 2)),
        (A, 2),
        ("release", "start", "green", "blue", [10, 50, 100], 2, False, 1, 1),
    ),
    (
        "newest version has the AMI but another config: not reused",
        stc(sc("blue", 100, 2, A, 1, 1), sc("green", 0, 0, A, 1, 1), latest=(2, A, 3)),
        (A, 2),
        ("release", "start", "green", "blue", [10, 50, 100], None, False, 1, 1),
    ),
    (
        "idle slot runs the AMI with an older config: emptied first",
        stc(sc("blue", 0, 2, A, 1, 1), sc("green", 100, 2, A, 2, 2)),
        (A, 3),
        ("release", "start", "blue", "green", [10, 50, 100], None, True, 2, 2),
    ),
    (
        "crash after scale-up of a config release",
        stc(sc("blue", 100, 2, A, 1, 1), sc("green", 0, 2, A, 2, 2)),
        (A, 2),
        ("release", "scale_up", "green", "blue", [10, 50, 100], 2, False, 1, 1),
    ),
    (
        "crash at 50% of a config release",
        stc(sc("blue", 50, 2, A, 1, 1), sc("green", 50, 2, A, 2, 2)),
        (A, 2),
        ("release", "shift", "green", "blue", [50, 100], 2, False, 1, 1),
    ),
    (
        "split, the older pair reverts",
        stc(sc("blue", 50, 2, A, 1, 1), sc("green", 50, 2, A, 2, 2)),
        (A, 1),
        ("release", "shift", "blue", "green", [100], 1, False, 2, 2),
    ),
    (
        "slots before config vars (no user data) hold config 0",
        LIVE_A,
        (A, 0),
        ("unchanged", "done", "blue", "green", [], 1, False, 0, None),
    ),
]


@pytest.mark.parametrize("name,state,target,expected", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_plan_table_with_config(name, state, target, expected):
    p = plan(state, REL, target[0], config=target[1])
    got = (
        p.outcome,
        p.resume,
        p.new_slot,
        p.old_slot,
        [x.new_weight for x in p.steps],
        p.reuse_version,
        p.clear_new_first,
        p.from_config,
        p.rollback_config,
    )
    assert got == expected
    assert p.to_config == target[1]


def test_a_half_done_release_of_another_config_is_refused():
    with pytest.raises(ReleaseError, match="half done"):
        plan(stc(sc("blue", 50, 2, A, 1, 1), sc("green", 50, 2, A, 2, 2)), REL, A, config=3)


def relc(frm, frm_cfg, to, to_cfg, outcome="released", steps=None):
    return dict(rel(frm, to, outcome, steps), from_config_version=frm_cfg, config_version=to_cfg)


# (name, state, ledger newest first, expected (ami, config, outcome, new slot, steps, resume))
CONFIG_ROLLBACKS = [
    (
        "after a config-only release: the old config on the same AMI",
        stc(sc("blue", 0, 0, A, 1, 1), sc("green", 100, 2, A, 2, 2)),
        [relc(A, 1, A, 2)],
        (A, 1, "release", "blue", [100], "start"),
    ),
    (
        "after an AMI release: the old AMI with the config it ran",
        stc(sc("blue", 0, 0, A, 1, 2), sc("green", 100, 2, B, 2, 2)),
        [relc(A, 2, B, 2)],
        (A, 2, "release", "blue", [100], "start"),
    ),
    (
        "both changed: both restored",
        stc(sc("blue", 0, 0, A, 1, 1), sc("green", 100, 2, B, 2, 2)),
        [relc(A, 1, B, 2)],
        (A, 1, "release", "blue", [100], "start"),
    ),
    (
        "a ledger entry from before config vars restores config 0",
        B_LIVE,
        [A_TO_B],
        (A, 0, "release", "blue", [100], "start"),
    ),
    (
        "split config release: the older pair",
        stc(sc("blue", 90, 2, A, 1, 1), sc("green", 10, 2, A, 2, 2)),
        [relc(A, 1, A, 2, "in_progress", [10])],
        (A, 1, "release", "blue", [100], "shift"),
    ),
    (
        "rollback finished: nothing to do",
        stc(sc("blue", 100, 2, A, 3, 1), sc("green", 0, 0, A, 2, 2)),
        [rb(A, A, "released", [100]), relc(A, 1, A, 2)],
        (A, 1, "unchanged", "blue", [], "done"),
    ),
    (
        "ledger empty, the idle slot's older pair",
        stc(sc("blue", 0, 0, A, 1, 1), sc("green", 100, 2, A, 2, 2)),
        [],
        (A, 1, "release", "blue", [100], "start"),
    ),
]


@pytest.mark.parametrize("name,state,history,expected", CONFIG_ROLLBACKS, ids=[r[0] for r in CONFIG_ROLLBACKS])
def test_rollback_restores_ami_and_config(name, state, history, expected):
    p = rollback_plan(state, REL, history)
    assert (p.to_ami, p.to_config, p.outcome, p.new_slot, [x.new_weight for x in p.steps], p.resume) == expected


def test_describe_names_the_config_versions():
    from toolkit.release.planner import describe

    lines = describe(plan(A1, REL, A, config=2))
    assert lines[0].startswith(f"release {A} with config v2 into green (live now: blue with {A}, config v1)")
    assert lines[-1] == f"  rollback target: {A} with config v1"
    assert describe(plan(A1, REL, A, config=1)) == [
        f"{A} with config v1 already holds all traffic in blue: nothing to do"
    ]


# A rollback's target with the config version that holds what it restores (a copy, made the newest): same moves, that config.
RESTORES = [
    (
        "rollback with a copied config",
        lambda s: rollback_plan(s, REL, RELEASED_B, target=(A, 3)),
        ("blue", [100], "start", A, 3, "rollback"),
    ),
    (
        "rollback --to an older release",
        lambda s: restore_plan(s, REL, C, 1),
        ("blue", [100], "start", C, 1, "rollback"),
    ),
    ("rollback --to what serves", lambda s: restore_plan(s, REL, B, 0), ("green", [], "done", B, 0, "rollback")),
]


@pytest.mark.parametrize("name,make,expected", RESTORES, ids=[r[0] for r in RESTORES])
def test_rollback_to_a_chosen_release(name, make, expected):
    p = make(st(s("blue", 0, 0, A, 1), s("green", 100, 2, B, 2)))
    assert (p.new_slot, [x.new_weight for x in p.steps], p.resume, p.to_ami, p.to_config, p.kind) == expected
    assert p.rollback_target is None


def test_rollback_to_refuses_a_half_done_release_of_something_else():
    with pytest.raises(ReleaseError, match="half done"):
        restore_plan(st(s("blue", 50, 2, A, 1), s("green", 50, 2, B, 2)), REL, C, 0)


# The size `invoke scale` set: the next release starts its slot at it, raised to what the live slot runs now.
SCALED = [
    ("nothing scaled: release.capacity", None, 2, Capacity(2, 4, 2)),
    ("scaled up", Capacity(2, 8, 5), 5, Capacity(2, 8, 5)),
    ("scaled to the floor", Capacity(2, 4, 2), 2, Capacity(2, 4, 2)),
    ("a schedule grew the live slot since", Capacity(2, 4, 3), 4, Capacity(2, 4, 4)),
]


@pytest.mark.parametrize("name,scaled,live_desired,expected", SCALED, ids=[x[0] for x in SCALED])
def test_a_release_starts_at_the_scaled_size(name, scaled, live_desired, expected):
    live = SlotState("blue", 100, live_desired, live_desired, live_desired, A, 1, min_size=2, max_size=4)
    assert start_capacity(REL, live, scaled) == expected
    p = plan(State(live, s("green", 0, 0, A, 1), 1, A), REL, B, scaled=scaled)
    assert p.capacity == expected and all(x.new_instances == expected.desired for x in p.steps)
    assert any("the size 'invoke scale' set" in n for n in p.notes) == (scaled is not None)


BOXED = dataclasses.replace(REL, one_box=True)


@pytest.mark.parametrize(
    "state, counts",
    [
        # A fresh release: one box at 10%, then the slot's size.
        (State(s("blue", 100, 2, A, 1), s("green"), 1, A), [(10, 1), (50, 2), (100, 2)]),
        # Killed during the one-box watch (green at 10% on one instance): the box again, then grow.
        (State(s("blue", 90, 2, A, 1), s("green", 10, 1, B, 2), 2, B), [(10, 1), (50, 2), (100, 2)]),
        # Killed after growing: past the box, it goes on at full size.
        (State(s("blue", 90, 2, A, 1), s("green", 10, 2, B, 2), 2, B), [(10, 2), (50, 2), (100, 2)]),
        # Killed at 50%: no box.
        (State(s("blue", 50, 2, A, 1), s("green", 50, 2, B, 2), 2, B), [(50, 2), (100, 2)]),
        # A first release moves in one step, without a box.
        (State(s("blue", 100, 0), s("green"), None, None), [(100, 2)]),
    ],
)
def test_one_box_is_the_first_step_only_while_the_new_slot_runs_one_instance(state, counts):
    made = plan(state, BOXED, B)
    assert [(step.new_weight, step.new_instances) for step in made.steps] == counts
