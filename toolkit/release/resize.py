"""``invoke scale web=N`` (or ``N``, ``--min``, ``--max``): the serving slot's Auto Scaling group to N instances, kept until changed.

Heroku's ``ps:scale`` in Rodeo's terms: ``web`` is the app behind the load
balancer, run by the slot that holds the traffic. ``parse`` reads the words,
``plan`` decides from the slots' State (pure, a table in the tests), and
``scale`` carries it out under the release lock (a release sizes the slots
itself), then waits until the group has that many healthy instances. The
group's minimum and maximum stay as they are (``release.capacity``, or what a
schedule of ``scaling:`` set) unless ``--min``/``--max`` change them: a count
outside them is refused, and so is one below ``release.capacity.min`` (the
gates need that many healthy instances for a slot to hold any traffic). What
was set is recorded (``toolkit.release.scaled``): the next release starts
its slot at it, and the schedules and target tracking of ``scaling:`` keep
resizing the group at their times.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from typing import Any

from toolkit import lock
from toolkit.config import Config
from toolkit.errors import ConfigError, ReleaseError
from toolkit.release import ledger, rollout, scaled, slots
from toolkit.release.planner import State
from toolkit.ui import Reporter

PROCESS = "web"  # the one process type: the app behind the load balancer
WORD_RE = re.compile(r"^(?P<process>[a-z][a-z0-9_-]*)(?P<op>=|\+|-)(?P<count>\d{1,4})$")
FORM_HINT = "write it like web=3 (or web+1, web-1)"


@dataclass(frozen=True)
class Change:
    """``web=3`` or ``3`` (``op`` "="), ``web+1`` ("+"), ``web-1`` ("-"), or no count (``op`` "": ``--min``/``--max`` only)."""

    op: str
    count: int
    min: int | None = None  # --min, --max: the group's new limits (None: as they are)
    max: int | None = None


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
    from_min: int | None = None  # the limits before, when --min/--max change them
    from_max: int | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def lines(self) -> list[str]:
        """The plan as a person reads it."""
        limits = f"(group {self.group}, min {self.min}, max {self.max})"
        if self.from_min is not None:
            limits = f"(group {self.group}, min {self.from_min} -> {self.min}, max {self.from_max} -> {self.max})"
        if self.outcome == "unchanged":
            head = f"nothing to scale: {self.slot} already runs {PROCESS}={self.current} {limits}"
        elif self.current == self.desired:
            head = f"keep {PROCESS}={self.current} of {self.ami} in {self.slot}, new limits {limits}"
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
        return [
            f"scaled {PROCESS} to {p.desired} in {self.seconds:.0f}s: {p.slot} runs {p.desired} healthy instance(s) of {p.ami} (was {p.current}), "
            f"min {p.min}, max {p.max}; the next release starts at it"
        ]


def parse(word: str, low: str = "", high: str = "") -> Change:
    """``web=3``, ``3``, ``web+1``, ``web-1`` (``""`` with ``--min``/``--max`` only) and the words of those flags -> Change;
    ConfigError naming the form otherwise."""
    minimum, maximum = _limit("--min", low), _limit("--max", high)
    if not word.strip():
        if minimum is None and maximum is None:
            raise ConfigError("no count given", f"{FORM_HINT}, or change the limits with --min/--max")
        return Change("", 0, minimum, maximum)
    if word.strip().isdigit() and len(word.strip()) <= 4:
        return Change("=", int(word), minimum, maximum)
    match = WORD_RE.match(word.strip())
    if match is None:
        sized = re.match(r"^\w+=\d+:", word)  # Heroku's web=2:standard-2x
        hint = "write web=2; the instances' type is release.instance_type in rodeo.yml" if sized else FORM_HINT
        raise ConfigError(f"{word!r} is not a process and a count", hint)
    if match["process"] != PROCESS:
        raise ConfigError(
            f"no process type {match['process']!r}: Rodeo's instances run one, {PROCESS} (the app behind the load balancer)",
            f"write {PROCESS}{match['op']}{match['count']}",
        )
    return Change(match["op"], int(match["count"]), minimum, maximum)


def _limit(flag: str, word: str) -> int | None:
    if not word.strip():
        return None
    if not word.strip().isdigit() or len(word.strip()) > 4:
        raise ConfigError(f"{flag} {word!r} is not a number of instances", f"give {flag} from 0 to 9999")
    return int(word)


def plan(
    state: State,
    change: Change,
    group: str,
    targets: tuple[str, ...] = (),
    schedules: tuple[str, ...] = (),
    floor: int = 0,
) -> ScalePlan:
    """The ScalePlan for ``change`` on the slot holding the traffic in ``state`` (``group`` is its Auto Scaling group).

    ``targets`` and ``schedules`` name the ``scaling:`` entries that resize
    the group by themselves (a note says so). ``floor`` is
    ``release.capacity.min``: no count or minimum below it.
    """
    if state.split:
        raise ReleaseError(
            f"a release is between steps (weights {state.weights}): no slot holds all the traffic",
            "finish it ('invoke release') or undo it ('invoke rollback'), then scale",
        )
    live = state.active
    if not live.ami or live.weight == 0:
        raise ReleaseError("nothing is released yet, so no slot serves to scale", "release first: 'invoke deploy'")
    lo = live.min_size if change.min is None else change.min
    hi = live.max_size if change.max is None else change.max
    base = dict(slot=live.name, group=group, ami=live.ami, current=live.desired, min=lo, max=hi)
    if (lo, hi) != (live.min_size, live.max_size):
        base.update(from_min=live.min_size, from_max=live.max_size)
    # No count (--min/--max only): the count it runs, moved into the new limits.
    desired = {"=": change.count, "+": live.desired + change.count, "-": live.desired - change.count}.get(
        change.op, min(max(live.desired, lo), hi)
    )
    why = f"release.capacity.min is {floor}: a slot needs that many healthy instances to hold any traffic (the release's gates)"
    if change.min is not None and change.min < floor:
        raise ConfigError(
            f"--min {change.min} is below release.capacity.min ({floor})",
            f"{why}; give --min {floor} or more, or lower release.capacity.min in rodeo.yml",
        )
    if desired < floor:
        raise ConfigError(
            f"{PROCESS}={desired} is below release.capacity.min ({floor})",
            f"{why}, so fewer would stop the next release; scale to {floor} or more, or lower release.capacity.min in rodeo.yml",
        )
    if lo > hi:
        raise ConfigError(f"--min {lo} is above --max {hi}", "give a minimum no larger than the maximum")
    if not lo <= desired <= hi:
        raise ConfigError(
            f"{PROCESS}={desired} is outside what {group} allows: {lo} to {hi} instance(s)",
            "scale within them, or change them with --min/--max",
        )
    notes = []
    if targets:
        notes.append(f"target tracking ({', '.join(targets)}) resizes {group} by load, and may change this count")
    if schedules:
        notes.append(f"the schedules ({', '.join(schedules)}) set its size at their times")
    same = desired == live.desired and (lo, hi) == (live.min_size, live.max_size)
    return ScalePlan("unchanged" if same else "scale", desired=desired, notes=tuple(notes), **base)


def scale(
    config: Config,
    aws: Any,
    change: Change,
    plan_only: bool = False,
    break_lock: bool = False,
    reporter: Reporter | None = None,
) -> ScaleResult:
    """Carry out the plan for ``change`` under the release lock; waits until the group runs that many healthy instances."""
    rel = slots.release_of(config)
    reporter = reporter or Reporter()
    env = slots.resolve(config, aws)
    if plan_only:
        return ScaleResult("planned", _plan(config, env, aws, change))
    held = lock.acquire(config, aws, f"scale {PROCESS} ({change.op}{change.count})", break_lock, reporter)
    try:
        p = _plan(config, env, aws, change)
        kept = scaled.Scaled(p.desired, p.min, p.max, lock.whoami(), ledger.now())
        if p.outcome == "unchanged":
            scaled.record(config, aws, kept)  # the size serves already: kept from now on too
            return ScaleResult("unchanged", p)
        started = time.monotonic()
        lock.check(aws, held, f"scaling {p.slot}")
        with reporter.step(f"{p.slot} from {p.current} to {p.desired} instance(s)") as line:
            scaled.record(
                config, aws, kept
            )  # before the group changes: a kill after it still leaves the next release the new size
            slots.set_capacity(env, aws, p.slot, p.desired, p.min, p.max)
            ok = slots.wait_in_service(
                env,
                aws,
                p.slot,
                p.desired,
                rel.health_timeout_seconds,
                lambda n, total: line.note(f"instances healthy {n}/{total}"),
            )
            if not ok:
                healthy, total = slots.health(env, aws)[p.slot]
                raise ReleaseError(
                    f"{p.slot} has {healthy}/{p.desired} healthy instance(s) ({total} in service) after {rel.health_timeout_seconds}s",
                    f"see why with 'invoke logs --slot {p.slot}'; its group keeps trying to reach {p.desired}",
                )
            line["result"] = f"instances healthy {p.desired}/{p.desired}"
        return ScaleResult("scaled", p, healthy=p.desired, seconds=round(time.monotonic() - started, 2))
    finally:
        rollout.free_lock(aws, held, reporter)


def _plan(config: Config, env: slots.Env, aws: Any, change: Change) -> ScalePlan:
    state = slots.read(env, aws)
    scaling = config.scaling
    targets = tuple(t.name for t in scaling.target_tracking) if scaling else ()
    schedules = tuple(s.name for s in scaling.schedules) if scaling else ()
    return plan(
        state, change, env.groups[state.active.name], targets, schedules, floor=slots.release_of(config).capacity.min
    )
