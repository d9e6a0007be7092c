"""The runner of several bakes, with stand-in bakes (no Packer, no AWS): threads, skips, Ctrl-C."""

from __future__ import annotations

import signal
import threading

import pytest

from toolkit.bake.parallel import _Runner
from toolkit.bake.pipeline import BakeResult
from toolkit.bake.schedule import schedule
from toolkit.cancel import Cancel
from toolkit.errors import VerifyError
from toolkit.ui import Board, Silent

PARENTS = {"base": None, "one": "base", "two": "base", "bad": "base", "below": "bad", "later": "one"}


def result(image: str, parent: BakeResult | None = None) -> BakeResult:
    return BakeResult(
        image=image,
        ami={"us-east-1": f"ami-{image}"},
        source_ami=parent.ami["us-east-1"] if parent else "ami-seed",
        tags={},
        cached=False,
        template=f"{image}.pkr.hcl",
        inputs_hash=image,
    )


def runner(wanted: list[str], cap: int = 0) -> _Runner:
    plan = schedule(PARENTS, wanted, cap)
    return _Runner(plan, Board(Silent(), [job.image for job in plan.jobs]), Cancel())


def test_independent_images_run_at_once_on_their_parent_and_a_failure_skips_only_its_children():
    both = threading.Barrier(2, timeout=10)  # one and two must be running at the same time to pass it
    started: list[str] = []

    def bake_one(job, parent, lane, cancel):
        started.append(job.image)
        if job.image in ("one", "two"):
            assert parent is not None and parent.image == "base"
            both.wait()
        if job.image == "bad":
            raise VerifyError("image test failed: test_x; no AMI was made", "fix the playbook or the test")
        return result(job.image, parent)

    ended = runner(["one", "two", "below", "later"]).run(bake_one)
    assert {image: o.status for image, o in ended.items()} == {
        "base": "baked",
        "one": "baked",
        "two": "baked",
        "bad": "failed",
        "below": "skipped",
        "later": "baked",
    }
    assert sorted(started) == ["bad", "base", "later", "one", "two"] and started[0] == "base"
    assert ended["later"].result.source_ami == "ami-one"
    assert ended["below"].error == "its parent bad failed" and ended["bad"].kind is VerifyError


def test_jobs_caps_the_bakes_at_once():
    running, most = [], []
    lock = threading.Lock()

    def bake_one(job, parent, lane, cancel):
        with lock:
            running.append(job.image)
            most.append(len(running))
        cancel.wait(0.05)
        with lock:
            running.remove(job.image)
        return result(job.image, parent)

    ended = runner(["one", "two", "bad"], cap=1).run(bake_one)
    assert set(ended) == {"base", "one", "two", "bad"} and max(most) == 1


def test_ctrl_c_stops_every_running_bake_waits_for_their_clean_up_and_starts_no_other():
    cleaned: list[str] = []
    waiting = threading.Barrier(3, timeout=10)

    def bake_one(job, parent, lane, cancel):
        if job.image == "base":
            return result("base")
        try:
            waiting.wait()
            if job.image == "one":  # both children run: Ctrl-C now, as a terminal sends it, to the main thread
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
            cancel.wait(10)
            cancel.check()
            return result(job.image, parent)
        finally:
            cleaned.append(job.image)

    r = runner(["one", "two", "later"], cap=0)
    gate = threading.Thread(target=waiting.wait)  # the third party: releases both children at once
    gate.start()
    with pytest.raises(KeyboardInterrupt):
        r.run(bake_one)
    gate.join()
    assert sorted(cleaned) == ["one", "two"] and not r.threads
    assert {image: o.status for image, o in r.ended.items()} == {
        "base": "baked",
        "one": "interrupted",
        "two": "interrupted",
        "later": "interrupted",
    }
    assert r.ended["later"].error == "not started"


def test_cancel_calls_back_whoever_is_registered_even_when_already_set():
    cancel, seen = Cancel(), []
    with cancel.on_set(lambda: seen.append("a")):
        cancel.set()
        cancel.set()
    assert seen == ["a", "a"]  # again on a second set: callbacks must not mind
    with cancel.on_set(lambda: seen.append("late")):
        pass
    assert seen[-1] == "late"  # registered after the stop: called at once
    with pytest.raises(KeyboardInterrupt):
        cancel.check()
    assert cancel.wait(0) is True
