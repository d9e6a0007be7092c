"""The release phase's decisions as tables: whether a rerun runs the command again, and the --plan line."""

from __future__ import annotations

import pytest

from toolkit.config import Capacity, Release
from toolkit.release import phase
from toolkit.release.planner import SlotState, State, plan, rollback_plan

CMD = "bin/migrate"
REL = Release(
    load_balancer="web",
    slots={"blue": "web-blue", "green": "web-green"},
    capacity=Capacity(2, 4, 2),
    pause_seconds=0,
    release_command=CMD,
)


def attempt(ident, outcome="interrupted", status=None, ami="ami-2", config=3, command=CMD, kind="release", run_id="r"):
    entry = {"id": ident, "kind": kind, "to_ami": ami, "config_version": config, "outcome": outcome}
    if status:
        entry["release_phase"] = {"status": status, "run_id": run_id, "command": command}
    return entry


THIS = attempt("now", outcome="in_progress")
DECISIONS = [
    ("a first attempt runs it", [THIS], ("run", None)),
    ("killed after it succeeded: not again", [THIS, attempt("a", status="succeeded")], ("done", "a")),
    ("killed while it ran: check its end", [THIS, attempt("a", status="started")], ("check", "a")),
    ("killed before it started: run", [THIS, attempt("a")], ("run", None)),
    (
        "the newest record wins over an older success",
        [THIS, attempt("b", status="started", run_id="b"), attempt("a", status="succeeded")],
        ("check", "b"),
    ),
    (
        "an attempt killed before its record, after a success",
        [THIS, attempt("b"), attempt("a", status="succeeded")],
        ("done", "a"),
    ),
    (
        "a failed phase ended that release: a new attempt runs it",
        [THIS, attempt("a", outcome="stopped", status="failed")],
        ("run", None),
    ),
    (
        "a rolled-back release (a gate): run again",
        [THIS, attempt("a", outcome="rolled_back", status="succeeded")],
        ("run", None),
    ),
    (
        "a released one earlier (a later rollback, then this)",
        [THIS, attempt("a", outcome="released", status="succeeded")],
        ("run", None),
    ),
    ("another AMI's attempt", [THIS, attempt("a", ami="ami-9", status="succeeded")], ("run", None)),
    ("another config version's attempt", [THIS, attempt("a", config=2, status="succeeded")], ("run", None)),
    ("another command's attempt", [THIS, attempt("a", command="bin/other", status="succeeded")], ("run", None)),
    (
        "a rollback's entry in between",
        [THIS, attempt("r", kind="rollback"), attempt("a", status="succeeded")],
        ("run", None),
    ),
    (
        "the walk stops at the first other entry",
        [THIS, attempt("x", ami="ami-9"), attempt("a", status="succeeded")],
        ("run", None),
    ),
]


@pytest.mark.parametrize("name,history,expected", DECISIONS, ids=[r[0] for r in DECISIONS])
def test_decide(name, history, expected):
    what, record = phase.decide(history, "now", "ami-2", 3, CMD)
    assert (what, record and next(e["id"] for e in history if e.get("release_phase") is record)) == expected


def slot(name, weight=0, n=0, ami=None, version=None, config=0):
    return SlotState(
        name=name,
        weight=weight,
        desired=n,
        instances=n,
        healthy=n,
        ami=ami,
        version=version,
        min_size=0,
        max_size=4,
        config=config,
    )


LIVE = State(slot("blue", 100, 2, "ami-1", 1, 2), slot("green"), 1, "ami-1", 2)
SPLIT = State(slot("blue", 90, 2, "ami-1", 1, 2), slot("green", 10, 2, "ami-2", 2, 3), 2, "ami-2", 3)
LINE = (
    "  release phase: 'bin/migrate' on a one-off instance of ami-2 with config v3 (timeout 600s), before any weight moves; "
    "not again if an interrupted attempt of this release finished it"
)
PLAN_LINES = [
    ("a fresh release runs it", plan(LIVE, REL, "ami-2", config=3), CMD, [LINE]),
    ("no release_command", plan(LIVE, REL, "ami-2", config=3), None, []),
    ("weights moved already: it ran", plan(SPLIT, REL, "ami-2", config=3), CMD, []),
    ("nothing to release", plan(LIVE, REL, "ami-1", config=2), CMD, []),
    ("a rollback never runs it", rollback_plan(SPLIT, REL, []), CMD, []),
]


@pytest.mark.parametrize("name,p,command,lines", PLAN_LINES, ids=[r[0] for r in PLAN_LINES])
def test_plan_line(name, p, command, lines):
    assert phase.describe(p, command, 600) == lines


BARE = Release(load_balancer="web", slots={"blue": "web-blue", "green": "web-green"})
MIGRATE = {"rodeo:release-command": "python manage.py migrate"}
SHELL = ("bin/migrate", ("/bin/sh", "-c", "bin/migrate"), "release.release_command")
PROCFILE = ("python manage.py migrate", (phase.PROCFILE_RUNNER,), "the image's Procfile")
COMMANDS = [
    ("rodeo.yml's command", REL, {}, SHELL),
    ("rodeo.yml's wins over the Procfile's", REL, MIGRATE, SHELL),
    ("the Procfile's, run by the image's runner", BARE, MIGRATE, PROCFILE),
    ("a Procfile without a release: line", BARE, {"rodeo:release-command": " "}, None),
    ("an image not baked from a Procfile", BARE, {"rodeo:app": "web"}, None),
]


@pytest.mark.parametrize("name,rel,tags,expected", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_which_command_the_release_phase_runs(name, rel, tags, expected):
    given = phase.command(rel, tags)
    assert (given and (given.text, given.argv, given.source)) == expected


def test_the_plan_line_says_when_the_command_comes_from_the_procfile():
    line = phase.describe(plan(LIVE, REL, "ami-2", config=3), "python manage.py migrate", 600, "the image's Procfile")
    assert line[0].startswith("  release phase: 'python manage.py migrate' (from the image's Procfile) on a one-off")
