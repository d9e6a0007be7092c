"""Crash safety: a crash after each mutating AWS call in turn, then a rerun converges.

The crash is a botocore ``after-call`` hook that raises after the Nth mutating
call; from then on every call of that client set fails too, as if the process
were gone (so its ``finally`` cannot free the lock). The invariant (no weight
on a slot with fewer healthy targets than capacity.min) is checked after every
mutating call of both runs.
"""

from __future__ import annotations

import botocore.exceptions
import pytest

from tests.support.hooks import MUTATING, HookedAws
from toolkit import lock
from toolkit.aws import settling
from toolkit.errors import ReleaseError
from toolkit.release import ledger, rollout, slots

CALLS_IN_A_RELEASE = 15  # checked below: a clean release makes this many mutating calls
CALLS_IN_A_ROLLBACK = 11  # and a clean rollback of a finished release this many
CALLS_IN_A_REVERT = 10  # and a rollback of a release killed at 50% this many (its first lock put fails)


def _settling(parsed: dict | None, operation: str) -> bool:
    return "Error" in (parsed or {}) and settling(botocore.exceptions.ClientError(parsed, operation))


class Crash(Exception):
    """The simulated kill."""


class Watched(HookedAws):
    """Clients that check the invariant after each mutating call and may crash after the Nth."""

    HOOKS = (("before-call", "_before"), ("after-call", "_after"))

    def __init__(self, world, crash_after=None):
        super().__init__(region=world.aws.region, endpoint=world.aws.endpoint)
        self.world, self.crash_after, self.count, self.dead = world, crash_after, 0, False
        self.broken: list[str] = []

    def _before(self, model, **kwargs):
        if self.dead:
            raise Crash(f"process is gone (call {model.name})")

    def _after(self, model, parsed=None, **kwargs):
        if not model.name.startswith(MUTATING) or _settling(
            parsed, model.name
        ):  # refused: a template version made a moment ago
            return
        self.count += 1
        self.broken += [f"after call {self.count} ({model.name}): {v}" for v in self.world.invariant()]
        if self.crash_after is not None and self.count == self.crash_after:
            self.dead = True
            raise Crash(f"killed after {model.name}")


def test_the_invariant_sees_weight_on_a_slot_without_healthy_targets(world):
    """The watcher's oracle can fail: weight on green, which has no instance, is reported."""
    assert world.invariant() == []
    slots.set_weights(world.env, world.aws, {"blue": 90, "green": 10})
    assert world.invariant() == ["green has weight 10 with 0 healthy target(s), fewer than 2"]


def test_a_clean_release_makes_the_expected_mutating_calls(world):
    watched = Watched(world)
    rollout.release(world.cfg, watched, ami=world.ami(), reporter=world.reporter)
    assert watched.count == CALLS_IN_A_RELEASE and watched.broken == []


def crash_release(world, n):
    """A release of a new AMI killed after its Nth mutating call (no call broke the invariant); (that AMI, blue's before)."""
    ami = world.ami()
    base = world.state().blue.ami
    crashing = Watched(world, crash_after=n)
    try:
        rollout.release(world.cfg, crashing, ami=ami, reporter=world.reporter)
    except Crash:
        pass
    assert crashing.dead  # the last call frees the lock; its failure is only warned about
    assert crashing.broken == []
    return ami, base


@pytest.mark.parametrize("n", range(1, CALLS_IN_A_RELEASE + 1))
def test_rerun_after_a_crash_converges(world, n):
    ami, _ = crash_release(world, n)
    rerun = Watched(world)
    result = rollout.release(world.cfg, rerun, ami=ami, break_lock=True, reporter=world.reporter)
    assert rerun.broken == []
    assert result.outcome in ("released", "unchanged")
    after = world.state()
    assert after.weights == {"blue": 0, "green": 100}
    assert (after.green.ami, after.green.healthy, after.blue.desired, after.blue.instances) == (ami, 2, 0, 0)
    assert lock.holder(world.cfg, world.aws) is None
    assert all(e["outcome"] != "in_progress" for e in ledger.recent(world.cfg, world.aws))


@pytest.mark.parametrize("n", range(1, CALLS_IN_A_RELEASE + 1))
def test_rollback_after_a_crash_restores_the_previous_release(world, n):
    _, base = crash_release(world, n)
    rerun = Watched(world)
    try:
        rollout.rollback(world.cfg, rerun, break_lock=True, reporter=world.reporter)
    except ReleaseError as exc:  # the crash came before anything moved: nothing to roll back
        assert "nothing to roll back to" in str(exc)
    assert rerun.broken == []
    after = world.state()
    assert after.weights == {"blue": 100, "green": 0}
    assert (after.blue.ami, after.blue.healthy, after.green.desired, after.green.instances) == (base, 2, 0, 0)


def test_a_clean_rollback_makes_the_expected_mutating_calls(world):
    rollout.release(world.cfg, world.aws, ami=world.ami(), reporter=world.reporter)
    watched = Watched(world)
    rollout.rollback(world.cfg, watched, reporter=world.reporter)
    assert watched.count == CALLS_IN_A_ROLLBACK and watched.broken == []


def test_a_clean_revert_makes_the_expected_mutating_calls(world):
    crash_release(world, 8)
    watched = Watched(world)
    rollout.rollback(world.cfg, watched, break_lock=True, reporter=world.reporter)
    assert watched.count == CALLS_IN_A_REVERT and watched.broken == []


def _crash_rollback(world, n):
    """Release a new AMI to the end, then kill ``invoke rollback`` after its Nth mutating call."""
    base = world.state().blue.ami
    ami = world.ami()
    rollout.release(world.cfg, world.aws, ami=ami, reporter=world.reporter)
    crashing = Watched(world, crash_after=n)
    try:
        rollout.rollback(world.cfg, crashing, reporter=world.reporter)
    except Crash:
        pass
    assert crashing.dead and crashing.broken == []  # a crash freeing the lock is only warned about
    return ami, base


@pytest.mark.parametrize("n", range(1, CALLS_IN_A_ROLLBACK + 1))
def test_rerun_of_a_killed_rollback_finishes_it(world, n):
    """Issue 9, case 1: the rerun restores the same AMI, never the one it was rolling back."""
    ami, base = _crash_rollback(world, n)
    rerun = Watched(world)
    result = rollout.rollback(world.cfg, rerun, break_lock=True, reporter=world.reporter)
    assert rerun.broken == []
    assert result.ami == base and result.outcome in ("restored", "unchanged")
    after = world.state()
    assert after.weights == {"blue": 100, "green": 0}
    assert (after.blue.ami, after.blue.healthy, after.green.desired, after.green.instances) == (base, 2, 0, 0)
    again = rollout.rollback(world.cfg, Watched(world), reporter=world.reporter)  # and once more: still the same
    assert (again.outcome, again.ami) == ("unchanged", base)
    assert lock.holder(world.cfg, world.aws) is None
    assert all(e["outcome"] != "in_progress" for e in ledger.recent(world.cfg, world.aws))


@pytest.mark.parametrize("n", range(1, CALLS_IN_A_ROLLBACK + 1))
def test_release_after_a_killed_rollback_converges(world, n):
    """The other command: releasing the AMI the killed rollback was removing puts it back in full."""
    ami, _ = _crash_rollback(world, n)
    rerun = Watched(world)
    result = rollout.release(world.cfg, rerun, ami=ami, break_lock=True, reporter=world.reporter)
    assert rerun.broken == []
    assert result.outcome in ("released", "unchanged")
    after = world.state()
    live, idle = after.active, after.other(after.active.name)
    assert (live.weight, live.ami, live.healthy, idle.desired, idle.instances) == (100, ami, 2, 0, 0)


@pytest.mark.parametrize("m", range(1, CALLS_IN_A_REVERT + 1))
def test_killed_rollback_of_a_killed_release(world, m):
    """A release killed at 50%, the rollback undoing it killed after each call, then rollback again."""
    _, base = crash_release(world, 8)  # after the 50% weight change
    assert world.state().split
    crashing = Watched(world, crash_after=m)
    try:
        rollout.rollback(world.cfg, crashing, break_lock=True, reporter=world.reporter)
    except Crash:
        pass
    assert crashing.dead and crashing.broken == []
    rerun = Watched(world)
    result = rollout.rollback(world.cfg, rerun, break_lock=True, reporter=world.reporter)
    assert rerun.broken == [] and result.ami == base
    after = world.state()
    assert after.weights == {"blue": 100, "green": 0}
    assert (after.blue.ami, after.blue.healthy, after.green.desired, after.green.instances) == (base, 2, 0, 0)
