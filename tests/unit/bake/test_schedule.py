"""The schedule of a bake of several images is pure: tested as tables (issue 13, item 4)."""

from __future__ import annotations

import pytest

from toolkit.bake.schedule import Moves, check_jobs, next_moves, requested, schedule
from toolkit.errors import ConfigError

# rodeo.yml's images, in its order: two bases, children, a grandchild.
PARENTS = {"base": None, "app": "base", "worker": "base", "web": "app", "tools": None, "cli": "tools"}


@pytest.mark.parametrize(
    "wanted,jobs,waves",
    [
        (["app"], [("base", False), ("app", True)], [["base"], ["app"]]),
        # two children of one parent: the parent once, not named, first
        (["app", "worker"], [("base", False), ("app", True), ("worker", True)], [["base"], ["app", "worker"]]),
        # named out of order: parents first all the same, then rodeo.yml's order within a wave
        (["worker", "app", "base"], [("base", True), ("app", True), ("worker", True)], [["base"], ["app", "worker"]]),
        (
            ["web", "cli"],
            [("base", False), ("tools", False), ("app", False), ("cli", True), ("web", True)],
            [["base", "tools"], ["app", "cli"], ["web"]],
        ),
        (["tools", "base"], [("base", True), ("tools", True)], [["base", "tools"]]),
        # --all: every image, parents first
        (
            list(PARENTS),
            [("base", True), ("tools", True), ("app", True), ("worker", True), ("cli", True), ("web", True)],
            [["base", "tools"], ["app", "worker", "cli"], ["web"]],
        ),
    ],
)
def test_each_image_once_parents_first(wanted, jobs, waves):
    plan = schedule(PARENTS, wanted)
    assert [(j.image, j.requested) for j in plan.jobs] == jobs
    assert plan.waves() == waves
    assert all(j.parent == PARENTS[j.image] for j in plan.jobs)


def run(plan, ended=None, running=()):
    return next_moves(plan, ended or {}, running)


@pytest.mark.parametrize(
    "wanted,cap,ended,running,moves",
    [
        # at first only images without a parent start; independent ones together
        (["web", "cli"], 0, {}, (), Moves(("base", "tools"))),
        # a child starts when its parent's AMI is known: baked or reused
        (["web", "cli"], 0, {"base": "reused"}, ("tools",), Moves(("app",))),
        (["app", "worker"], 0, {"base": "baked"}, (), Moves(("app", "worker"))),
        (["app", "worker"], 0, {}, ("base",), Moves()),
        # --jobs caps the bakes at once; the first in the schedule's order go first
        (["app", "worker"], 1, {"base": "baked"}, (), Moves(("app",))),
        (["app", "worker"], 1, {"base": "baked"}, ("app",), Moves()),
        (["web", "cli"], 2, {}, (), Moves(("base", "tools"))),
        (["web", "cli"], 1, {}, (), Moves(("base",))),
        # a failed parent: its children and theirs are skipped, the rest go on
        (
            ["web", "worker", "cli"],
            0,
            {"base": "failed"},
            (),
            Moves(
                ("tools",),
                (
                    ("app", "its parent base failed"),
                    ("worker", "its parent base failed"),
                    ("web", "its parent app was skipped"),
                ),
            ),
        ),
        (
            ["web", "cli"],
            0,
            {"base": "baked", "tools": "failed"},
            (),
            Moves(("app",), (("cli", "its parent tools failed"),)),
        ),
        (["app"], 0, {"base": "interrupted"}, (), Moves((), (("app", "its parent base interrupted"),))),
        # a failed sibling changes nothing for the other
        (["app", "worker"], 0, {"base": "baked", "app": "failed"}, ("worker",), Moves()),
        # all ended: nothing to do
        (["app"], 0, {"base": "reused", "app": "baked"}, (), Moves()),
    ],
)
def test_next_moves(wanted, cap, ended, running, moves):
    assert run(schedule(PARENTS, wanted, cap), ended, running) == moves


def test_a_run_played_to_the_end_bakes_each_once_and_skips_below_a_failure():
    """Play the schedule as the executor does: every job ends exactly once, skipped ones never start."""
    plan = schedule(PARENTS, list(PARENTS), cap=2)
    fails = {"app"}
    ended, started, at_once = {}, [], 0
    running: list[str] = []
    while len(ended) < len(plan.jobs):
        moves = next_moves(plan, ended, running)
        for image, _ in moves.skip:
            ended[image] = "skipped"
        running += moves.start
        started += moves.start
        at_once = max(at_once, len(running))
        if running:
            done = running.pop(0)
            ended[done] = "failed" if done in fails else "baked"
    assert sorted(started) == sorted(set(started)) == ["app", "base", "cli", "tools", "worker"]
    assert ended == {
        "base": "baked",
        "tools": "baked",
        "app": "failed",
        "worker": "baked",
        "cli": "baked",
        "web": "skipped",
    }
    assert at_once == 2


@pytest.mark.parametrize(
    "images,everything,expected",
    [
        ("app", False, ["app"]),
        ("app,worker", False, ["app", "worker"]),
        (" app , worker ,app", False, ["app", "worker"]),
        ("", True, list(PARENTS)),
        ("app,", False, ConfigError("names an empty image")),
        (",", False, ConfigError("names an empty image")),
        ("app", True, ConfigError("--all and --image app both")),
    ],
)
def test_which_images_the_flags_name(images, everything, expected):
    if isinstance(expected, ConfigError):
        with pytest.raises(ConfigError, match=str(expected)):
            requested(images, everything, list(PARENTS))
    else:
        assert requested(images, everything, list(PARENTS)) == expected


def test_jobs_flag():
    assert check_jobs(0) == 0 and check_jobs(3) == 3
    with pytest.raises(ConfigError, match="--jobs -1 is not a number of bakes"):
        check_jobs(-1)


def test_a_run_says_one_line_per_failed_image_and_one_result_per_image():
    from toolkit.bake.parallel import BakeRun, ImageOutcome
    from toolkit.bake.pipeline import BakeResult

    reused = BakeResult(
        image="base",
        ami={"us-east-1": "ami-1"},
        source_ami="ami-0",
        tags={},
        cached=True,
        template="base.pkr.hcl",
        inputs_hash="h1",
    )
    run = BakeRun(
        (
            ImageOutcome("base", "reused", reused),
            ImageOutcome(
                "one", "failed", error="image test failed: test_x; no AMI was made", hint="fix the playbook or the test"
            ),
            ImageOutcome("below", "skipped", error="its parent one failed"),
        ),
        schedule(PARENTS | {"one": "base", "below": "one"}, ["below"], cap=2),
        12.34,
    )
    assert run.lines() == [
        "base: us-east-1 ami-1 (unchanged inputs; --force bakes anyway)",
        "✗ one: image test failed: test_x; no AMI was made",
        "    hint: fix the playbook or the test",
        "- below: skipped (its parent one failed)",
        "",
        "3 images in 12.3s (at most 2 at once): 1 reused, 1 failed, 1 skipped",
    ]
    data = run.to_dict()
    assert [(i["image"], i["status"], i["error"]) for i in data["images"]] == [
        ("base", "reused", None),
        ("one", "failed", "image test failed: test_x; no AMI was made"),
        ("below", "skipped", "its parent one failed"),
    ]
    assert (
        data["ok"] is False
        and data["images"][0]["result"]["ami"] == {"us-east-1": "ami-1"}
        and data["waves"] == [["base"], ["one"], ["below"]]
    )
    assert [o.image for o in run.unbaked] == ["one", "below"]
