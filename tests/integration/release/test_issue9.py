"""Issue 9, one test per case: rollback and the lock after kill -9, other apps' AMIs, gate reaction.

Kills are in-process (``test_crash.Watched``): after the Nth mutating AWS call
every call fails, as if the process were gone. Cases that need a real process
(a live holder, a zombie) start one.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.integration.release.test_crash import Crash, Watched
from toolkit import lock, procs, table
from toolkit.errors import ImageError, LockError, LockLost, ReleaseError
from toolkit.release import ledger, rollout


def _kill(world, n, action, **kwargs):
    crashing = Watched(world, crash_after=n)
    try:
        action(world.cfg, crashing, reporter=world.reporter, **kwargs)
    except Crash:
        pass
    assert crashing.dead and crashing.broken == []


def _two_releases(world):
    """base -> A released into green; returns (A, B), B not released yet."""
    a = world.ami()
    rollout.release(world.cfg, world.aws, ami=a, reporter=world.reporter)
    return a, world.ami()


def test_case1_rerun_of_a_rollback_killed_at_100_keeps_the_rolled_back_ami_out(world):
    base = world.state().blue.ami
    x = world.ami()
    rollout.release(world.cfg, world.aws, ami=x, reporter=world.reporter)
    _kill(world, 7, rollout.rollback)  # right after "weight 100%" (ModifyListener)
    result = rollout.rollback(world.cfg, Watched(world), break_lock=True, reporter=world.reporter)
    assert result.ami == base != x
    after = world.state()
    assert after.active.ami == base and after.active.weight == 100 and after.green.desired == 0


@pytest.mark.parametrize("n", [3, 4], ids=["after-ledger-start", "after-new-version"])
def test_case2_rollback_of_a_release_killed_before_scaling_keeps_the_live_release(world, n):
    a, b = _two_releases(world)
    _kill(world, n, rollout.release, ami=b)
    result = rollout.rollback(world.cfg, Watched(world), break_lock=True, reporter=world.reporter)
    assert result.ami == a and result.outcome == "unchanged"
    after = world.state()
    assert (after.green.weight, after.green.ami, after.blue.desired, after.blue.instances) == (100, a, 0, 0)


def test_case2_rollback_of_a_release_killed_after_scaling_cleans_up_its_slot(world):
    a, b = _two_releases(world)
    _kill(world, 5, rollout.release, ami=b)  # after "pinned to launch template version": blue scaling up with B
    result = rollout.rollback(world.cfg, Watched(world), break_lock=True, reporter=world.reporter)
    assert result.ami == a
    after = world.state()
    assert (after.green.weight, after.green.ami, after.blue.desired) == (100, a, 0)


def test_case3_second_rollback_never_deploys_an_ami_that_took_no_traffic(world):
    a, b = _two_releases(world)
    _kill(world, 5, rollout.release, ami=b)
    rollout.rollback(world.cfg, Watched(world), break_lock=True, reporter=world.reporter)
    second = Watched(world)
    result = rollout.rollback(world.cfg, second, reporter=world.reporter)
    assert (result.outcome, result.ami) == ("unchanged", a) and second.broken == []
    after = world.state()
    assert after.active.ami == a and b not in (
        after.blue.ami if after.blue.desired else None,
        after.green.ami if after.green.desired else None,
    )


def test_case5_break_lock_refuses_while_the_holder_runs_here(world):
    holder = subprocess.Popen(["sleep", "60"])
    try:
        _fake_lock(world, holder.pid)
        with pytest.raises(LockError) as caught:
            rollout.release(world.cfg, world.aws, ami=world.ami(), break_lock=True, reporter=world.reporter)
        assert f"pid {holder.pid}" in caught.value.message and "still running" in caught.value.message
        assert lock.holder(world.cfg, world.aws)["pid"] == str(holder.pid)
    finally:
        holder.kill()
        holder.wait()


def test_case5_a_holder_whose_lock_was_broken_stops_before_its_next_change(world):
    ami = world.ami()
    watched = Watched(world)
    taken = []

    def break_it(model, **kwargs):  # another host breaks the lock right after the 10% weight change
        if model.name == "ModifyListener" and not taken and not watched.dead:
            taken.append(lock.acquire(world.cfg, world.observer, "release elsewhere", break_lock=True))

    watched.client("elbv2").meta.events.register("after-call", break_it)
    with pytest.raises(LockLost, match="lost the lock"):
        rollout.release(world.cfg, watched, ami=ami, reporter=world.reporter)
    after = world.state()
    assert after.weights == {"blue": 90, "green": 10} and after.blue.desired == 2  # nothing changed after the break
    assert watched.broken == [] and lock.holder(world.cfg, world.aws)["token"] == taken[0].token
    lock.free(world.observer, taken[0])
    result = rollout.release(world.cfg, Watched(world), ami=ami, reporter=world.reporter)
    assert result.outcome == "released" and world.state().green.weight == 100


def test_case6_an_ami_of_another_app_is_refused_before_anything_changes(world):
    other = world.ami()
    world.aws.client("ec2").create_tags(Resources=[other], Tags=[{"Key": "rodeo:app", "Value": "billing"}])
    before = world.state()
    with pytest.raises(ImageError, match="baked for app 'billing'") as caught:
        rollout.release(world.cfg, world.aws, ami=other, reporter=world.reporter)
    assert "invoke bake" in caught.value.hint
    with pytest.raises(ImageError, match="image 'base', not 'app'"):
        rollout.release(world.cfg, world.aws, ami=world.ami(image="base"), reporter=world.reporter)
    assert (
        world.state() == before
        and ledger.recent(world.cfg, world.aws) == []
        and lock.holder(world.cfg, world.aws) is None
    )


def test_case7_a_zombie_holder_counts_as_dead(world):
    zombie = subprocess.Popen(["true"])
    started = procs.started(zombie.pid)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(") ", 1)[-1][:1] != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        _fake_lock(world, zombie.pid, started)
        result = rollout.release(
            world.cfg, world.aws, ami=world.ami(), reporter=world.reporter
        )  # no --break-lock needed
        assert result.outcome == "released"
    finally:
        zombie.wait()


PAUSE = 30  # seconds of the 50% step's watch in case 9


def test_case9_weight_leaves_a_failed_slot_during_the_pause_not_after_it(make_world):
    """The watch checks the gates during the pause (every second), not only when it ends.

    The reaction time itself is a figure for bench/crash.py, not a timed test:
    this asserts only that weight left before the pause was over (a long pause: a passing run never waits it out).
    """
    world = make_world(pause_seconds=PAUSE, steps=(50, 100))
    moved_at, failed_at, back_at = [], [], []

    def fail_soon(model, params, **kwargs):
        if model.name != "ModifyListener":
            return
        weights = {t["Weight"] for t in params["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]}
        if weights == {50} and not moved_at:
            moved_at.append(time.monotonic())

            def stop():
                time.sleep(0.5)
                ids = [
                    i["InstanceId"]
                    for i in world.observer.client("autoscaling").describe_auto_scaling_groups(
                        AutoScalingGroupNames=[f"{world.cfg.app}-green"]
                    )["AutoScalingGroups"][0]["Instances"]
                ]
                world.observer.client("ec2").stop_instances(InstanceIds=ids)
                failed_at.append(time.monotonic())

            threading.Thread(target=stop, daemon=True).start()
        elif failed_at and weights == {0, 100}:
            back_at.append(time.monotonic())

    world.aws.client("elbv2").meta.events.register("before-parameter-build", fail_soon)
    with pytest.raises(ReleaseError, match="rolled back after .*: .*healthy"):
        rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    assert (len(moved_at), len(failed_at), len(back_at)) == (1, 1, 1)
    # Checked only when the pause ran out, the weight would have come back PAUSE seconds or more after it moved.
    assert back_at[0] - moved_at[0] < PAUSE, (
        f"weight came back {back_at[0] - moved_at[0]:.2f}s after it moved: the pause ran out first"
    )


def _fake_lock(world, pid, started=None):
    held = {
        "by": lock.whoami(),
        "pid": str(pid),
        "pid_started": started or procs.started(pid) or "",
        "since": "2026-01-01T00:00:00+00:00",
        "purpose": "release of ami-elsewhere",
        "token": "t" * 32,
    }
    world.aws.client("dynamodb").put_item(
        TableName=table.table_name(world.cfg), Item=dict(lock.key(world.cfg), **{k: {"S": v} for k, v in held.items()})
    )
