"""Crash safety: a crash after each mutating AWS call in turn, then a rerun converges.

The crash is a botocore ``after-call`` hook that raises after the Nth mutating
call; from then on every call of that client set fails too, as if the process
were gone (so its ``finally`` cannot free the lock). The invariant (no weight
on a slot with fewer healthy targets than capacity.min) is checked after every
mutating call of both runs.
"""

from __future__ import annotations

import pytest

from toolkit.release import ledger

from toolkit.release import lock

from toolkit.release import rollout
from toolkit.aws import Aws

MUTATING = ("Create", "Update", "Modify", "Delete", "Put", "Set", "Attach", "Register", "Deregister", "Terminate")
CALLS_IN_A_RELEASE = 14  # checked below: a clean release makes this many mutating calls


class Crash(Exception):
    """The simulated kill."""


class Watched(Aws):
    """Clients that check the invariant after each mutating call and may crash after the Nth."""

    def __init__(self, world, crash_after=None):
        super().__init__(region=world.aws.region, endpoint=world.aws.endpoint, local=True)
        self.world, self.crash_after, self.count, self.dead = world, crash_after, 0, False
        self.broken: list[str] = []

    def client(self, service, region=None):
        fresh = (service, region or self.region) not in self._clients
        client = super().client(service, region)
        if fresh:
            client.meta.events.register("before-call", self._before)
            client.meta.events.register("after-call", self._after)
        return client

    def _before(self, model, **kwargs):
        if self.dead:
            raise Crash(f"process is gone (call {model.name})")

    def _after(self, model, **kwargs):
        if not model.name.startswith(MUTATING):
            return
        self.count += 1
        self.broken += [f"after call {self.count} ({model.name}): {v}" for v in self.world.invariant()]
        if self.crash_after is not None and self.count == self.crash_after:
            self.dead = True
            raise Crash(f"killed after {model.name}")


def test_a_clean_release_makes_the_expected_mutating_calls(world):
    watched = Watched(world)
    rollout.release(world.cfg, watched, ami=world.ami(), reporter=world.reporter)
    assert watched.count == CALLS_IN_A_RELEASE and watched.broken == []


def _crash(world, n):
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
    ami, _ = _crash(world, n)
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
    _, base = _crash(world, n)
    rerun = Watched(world)
    try:
        rollout.rollback(world.cfg, rerun, break_lock=True, reporter=world.reporter)
    except Exception as exc:  # the crash came before anything moved: nothing to roll back
        assert "nothing to roll back to" in str(exc)
    assert rerun.broken == []
    after = world.state()
    assert after.weights == {"blue": 100, "green": 0}
    assert (after.blue.ami, after.blue.healthy, after.green.desired, after.green.instances) == (base, 2, 0, 0)
