"""``invoke scale web=N``: the serving slot's Auto Scaling group to N instances, within its limits.

Heroku's ``ps:scale`` in Rodeo's terms: ``web`` is the app behind the load
balancer, run by the slot that holds the traffic. ``parse`` reads the words,
``plan`` decides from the slots' State (pure, a table in the tests), and
``scale`` carries it out under the release lock (a release sizes the slots
itself), then waits until the group has that many healthy instances. The
group's minimum and maximum stay as they are (``release.capacity``, or what a
schedule of ``scaling:`` set): a count outside them is refused. The next
release starts its slot at least this large (``plan.start_capacity``).
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from typing import Any

from toolkit.config import Config
from toolkit.errors import ConfigError, ReleaseError
from toolkit.release import lock, rollout, slots
from toolkit.release.plan import State
from toolkit.ui import Reporter

PROCESS = "web"  # the one process type: the app behind the load balancer
WORD_RE = re.compile(r"^(?P<process>[a-z][a-z0-9_-]*)(?P<op>=|\+|-)(?P<count>\d{1,4})$")
FORM_HINT = "write it like web=3 (or web+1, web-1)"


@dataclass(frozen=True)
class Change:
    """``web=3`` (``op`` "="), ``web+1`` ("+") or ``web-1`` ("-")."""

    op: str
    count: int


@dataclass(frozen=True)
class ScalePlan:
    """What ``invoke scale`` does: the serving slot's group from ``current`` to ``desired`` instances."""

    outcome: str  # scale, unchanged
    slot: str
    group: str
    ami: str
    current: int
    desired: int
    min: int
    max: int
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        """The plan as a person reads it."""
        limits = f"(group {self.group}, min {self.min}, max {self.max})"
        if self.outcome == "unchanged":
            head = f"nothing to scale: {self.slot} already runs {PROCESS}={self.current} {limits}"
        else:
            head = f"scale {PROCESS} from {self.current} to {self.desired} instance(s) of {self.ami} in {self.slot} {limits}"
        return [head] + [f"  note: {n}" for n in self.notes]


@dataclass(frozen=True)
class ScaleResult:
    """What ``invoke scale`` did; ``to_dict`` is its ``--json``."""

    outcome: str  # scaled, unchanged, planned
    plan: ScalePlan
    healthy: int | None = None
    seconds: float | None = None

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "plan": self.plan.to_dict(), "healthy": self.healthy, "seconds": self.seconds}

    def lines(self) -> list[str]:
        if self.outcome == "planned":
            return self.plan.lines() + ["planned only: nothing was changed (run without --plan to scale)"]
        if self.outcome == "unchanged":
            return self.plan.lines()
        p = self.plan
        return [f"scaled {PROCESS} to {p.desired} in {self.seconds:.0f}s: {p.slot} runs {p.desired} healthy instance(s) of {p.ami} (was {p.current})"]


def parse(word: str) -> Change:
    """``web=3``, ``web+1``, ``web-1`` -> Change; ConfigError naming the form otherwise."""
    match = WORD_RE.match(word.strip())
    if match is None:
        sized = re.match(r"^\w+=\d+:", word)  # Heroku's web=2:standard-2x
        hint = "write web=2; the instances' type is release.instance_type in rodeo.yml" if sized else FORM_HINT
        raise ConfigError(f"{word!r} is not a process and a count", hint)
    if match["process"] != PROCESS:
        raise ConfigError(f"no process type {match['process']!r}: Rodeo's instances run one, {PROCESS} (the app behind the load balancer)",
                          f"write {PROCESS}{match['op']}{match['count']}")
    return Change(match["op"], int(match["count"]))


def plan(state: State, change: Change, group: str, targets: tuple[str, ...] = (), schedules: tuple[str, ...] = ()) -> ScalePlan:
    """The ScalePlan for ``change`` on the slot holding the traffic in ``state`` (``group`` is its Auto Scaling group).

    ``targets`` and ``schedules`` name the ``scaling:`` entries that resize
    the group by themselves (a note says so).
    """
    if state.split:
        raise ReleaseError(f"a release is between steps (weights {state.weights}): no slot holds all the traffic",
                           "finish it ('invoke release') or undo it ('invoke rollback'), then scale")
    live = state.active
    if not live.ami or live.weight == 0:
        raise ReleaseError("nothing is released yet, so no slot serves to scale", "release first: 'invoke deploy'")
    base = dict(slot=live.name, group=group, ami=live.ami, current=live.desired, min=live.min_size, max=live.max_size)
    desired = change.count if change.op == "=" else live.desired + (change.count if change.op == "+" else -change.count)
    if not live.min_size <= desired <= live.max_size:
        raise ConfigError(f"{PROCESS}={desired} is outside what {group} allows: {live.min_size} to {live.max_size} instance(s)",
                          "scale within them, or change release.capacity (min, max) in rodeo.yml; the next release gives the slot its limits")
    notes = []
    if targets:
        notes.append(f"target tracking ({', '.join(targets)}) resizes {group} by load, and may change this count")
    if schedules:
        notes.append(f"the schedules ({', '.join(schedules)}) set its size at their times")
    return ScalePlan("unchanged" if desired == live.desired else "scale", desired=desired, notes=tuple(notes), **base)


def scale(config: Config, aws: Any, change: Change, plan_only: bool = False, break_lock: bool = False,
          reporter: Reporter | None = None) -> ScaleResult:
    """Carry out the plan for ``change`` under the release lock; waits until the group runs that many healthy instances."""
    rel = slots.release_of(config)
    reporter = reporter or Reporter()
    env = slots.resolve(config, aws)
    if plan_only:
        return ScaleResult("planned", _plan(config, env, aws, change))
    held = lock.acquire(config, aws, f"scale {PROCESS} ({change.op}{change.count})", break_lock, reporter)
    try:
        p = _plan(config, env, aws, change)
        if p.outcome == "unchanged":
            return ScaleResult("unchanged", p)
        started = time.monotonic()
        lock.check(aws, held, f"scaling {p.slot}")
        with reporter.step(f"{p.slot} from {p.current} to {p.desired} instance(s)") as line:
            slots.set_capacity(env, aws, p.slot, p.desired, p.min, p.max)
            ok = slots.wait_in_service(env, aws, p.slot, p.desired, rel.health_timeout_seconds, lambda n, total: line.note(f"instances healthy {n}/{total}"))
            if not ok:
                healthy, total = slots.health(env, aws)[p.slot]
                raise ReleaseError(f"{p.slot} has {healthy}/{p.desired} healthy instance(s) ({total} in service) after {rel.health_timeout_seconds}s",
                                   f"see why with 'invoke logs --slot {p.slot}'; its group keeps trying to reach {p.desired}")
            line["result"] = f"instances healthy {p.desired}/{p.desired}"
        return ScaleResult("scaled", p, healthy=p.desired, seconds=round(time.monotonic() - started, 2))
    finally:
        rollout.free_lock(aws, held, reporter)


def _plan(config: Config, env: slots.Env, aws: Any, change: Change) -> ScalePlan:
    state = slots.read(env, aws)
    scaling = config.scaling
    targets = tuple(t.name for t in scaling.target_tracking) if scaling else ()
    schedules = tuple(s.name for s in scaling.schedules) if scaling else ()
    return plan(state, change, env.groups[state.active.name], targets, schedules)
