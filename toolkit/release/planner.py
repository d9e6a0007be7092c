"""Release planning: pure functions from a snapshot of the slots to a Plan.

Nothing here talks to AWS. ``toolkit.release.slots`` reads a ``State`` (the
listener's weights, each slot's Auto Scaling group, target health and the
launch template version it is pinned to); ``plan`` decides what a release of
an AMI must still do from that state, so the same function serves a fresh
release, a rerun after a crash, a rollback and ``--plan``.

What a release puts in a slot is a pair: an AMI and a config version (the
config vars its instances load at boot, ``toolkit.configvars``; 0 is none).
A slot holds a release only when both match.

Which slot is "new" when traffic is split: the one pinned to the higher launch
template version. A release always pins its slot to the newest version (it
creates one, or reuses the newest when that already holds the AMI), so the
slot that started taking traffic last always holds the highest version.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from toolkit.config import Capacity, Release
from toolkit.errors import ReleaseError

SLOTS = ("blue", "green")
# Where a release stands, in the order it gets there.
POINTS = ("start", "scale_up", "shift", "drain", "done")


@dataclass(frozen=True)
class SlotState:
    """One slot as AWS sees it now."""

    name: str
    weight: int = 0
    desired: int = 0
    instances: int = 0  # InService instances of the slot's Auto Scaling group
    healthy: int = 0  # of those, healthy in the slot's target group
    ami: str | None = None  # AMI of the launch template version the group is pinned to
    version: int | None = None
    drain_seconds: int = 300  # the target group's deregistration delay
    min_size: int = 0  # the group's MinSize and MaxSize now (a schedule may have changed them)
    max_size: int = 0
    config: int = 0  # config version named by its launch template version's user data (0: none)

    def holds(self, ami: str | None, config: int) -> bool:
        """True when the slot is pinned to ``ami`` with config version ``config``."""
        return self.ami == ami and self.config == config


@dataclass(frozen=True)
class State:
    """Both slots, plus the launch template's newest version."""

    blue: SlotState
    green: SlotState
    latest_version: int | None = None
    latest_ami: str | None = None
    latest_config: int = 0

    def slot(self, name: str) -> SlotState:
        return self.blue if name == "blue" else self.green

    def other(self, name: str) -> SlotState:
        return self.green if name == "blue" else self.blue

    @property
    def split(self) -> bool:
        """True when both slots take traffic (a release is between steps)."""
        return self.blue.weight > 0 and self.green.weight > 0

    @property
    def active(self) -> SlotState:
        """The slot holding all traffic, or when split the older one."""
        if self.split:
            return min((self.blue, self.green), key=lambda s: s.version or 0)
        return self.blue if self.blue.weight > 0 or self.green.weight == 0 else self.green

    @property
    def weights(self) -> dict[str, int]:
        return {"blue": self.blue.weight, "green": self.green.weight}


@dataclass(frozen=True)
class Step:
    """One weight change: percent of traffic on each slot and their instance counts."""

    new_weight: int
    old_weight: int
    new_instances: int
    old_instances: int


@dataclass(frozen=True)
class Plan:
    """What a release still has to do; ``outcome`` is "release" or "unchanged"."""

    outcome: str
    resume: str
    new_slot: str
    old_slot: str
    from_ami: str | None
    to_ami: str
    reuse_version: int | None  # pin the new slot to this version; None: create one
    clear_new_first: bool  # the new slot runs another AMI: empty it before re-pinning
    capacity: Capacity
    steps: tuple[Step, ...]
    pause_seconds: int
    drain_seconds: int
    scale_old_down: bool
    rollback_target: str | None
    first_release: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    to_config: int = 0  # the config version released with to_ami
    from_config: int | None = None
    rollback_config: int | None = None
    kind: str = "release"  # or "rollback": the same moves, said in other words

    def to_dict(self) -> dict:
        """The plan as plain data (for --plan --json and the ledger)."""
        return asdict(self)


def start_capacity(release: Release, live: SlotState, scaled: Capacity | None = None) -> Capacity:
    """The new slot's sizes: what ``invoke scale`` set last (``scaled``), else ``release.capacity``, raised to what the live slot runs now.

    A release at peak (a schedule or a policy grew the live slot) must not
    start the new slot smaller: it takes the live slot's desired count, min
    and max when they are higher.
    """
    cap = scaled or release.capacity
    desired = max(cap.desired, live.desired)
    return Capacity(
        min=min(max(cap.min, live.min_size), desired), max=max(cap.max, live.max_size, desired), desired=desired
    )


def need_healthy(release: Release) -> int:
    """Healthy targets a slot must have to hold any weight (at least one)."""
    return max(release.capacity.min, 1)


def violations(state: State, release: Release) -> list[str]:
    """Slots that hold weight with too few healthy targets (the invariant), as messages."""
    return violations_of(
        {s.name: s.weight for s in (state.blue, state.green)},
        {s.name: s.healthy for s in (state.blue, state.green)},
        release,
    )


def violations_of(weights: dict[str, int], healthy: dict[str, int], release: Release) -> list[str]:
    """``violations`` from each slot's weight and healthy targets alone (what a watcher reads after every call)."""
    need = need_healthy(release)
    return [
        f"{slot} has weight {weights[slot]} with {healthy[slot]} healthy target(s), fewer than {need}"
        for slot in SLOTS
        if weights[slot] > 0 and healthy[slot] < need
    ]


def resume_point(state: State, ami: str, release: Release, config: int = 0) -> tuple[str, str]:
    """Where a release of ``ami`` with config version ``config`` stands in ``state``: ``(point, new_slot)``.

    ``point`` is one of POINTS. A split state that belongs to another AMI is an
    error unless ``ami`` is the older slot's (then it is undone: a revert).
    """
    if state.blue.weight <= 0 and state.green.weight <= 0:
        raise ReleaseError(
            "the listener sends no traffic to either slot (both weights are 0)",
            "set the weights in the listener's forward action, or run 'invoke setup'",
        )
    if state.split:
        old = state.active
        new = state.other(old.name)
        if new.holds(ami, config):
            return "shift", new.name
        if old.holds(ami, config):
            return "shift", old.name  # a revert: all weight back to the older slot
        raise ReleaseError(
            f"a release of {new.ami} into {new.name} is half done (weights {state.weights})",
            f"finish it with 'invoke release --ami {new.ami}' or undo it with 'invoke rollback'",
        )
    live = state.active
    idle = state.other(live.name)
    if live.holds(ami, config):
        return ("drain" if idle.desired > 0 or idle.instances > 0 else "done"), live.name
    if idle.holds(ami, config) and idle.version == state.latest_version and (idle.desired > 0 or idle.instances > 0):
        return "scale_up", idle.name
    return "start", idle.name


def plan(
    state: State,
    release: Release,
    ami: str,
    steps: tuple[int, ...] | None = None,
    abandon: bool = False,
    config: int = 0,
    scaled: Capacity | None = None,
) -> Plan:
    """The Plan that takes ``state`` to ``ami`` with config version ``config`` holding all traffic.

    ``steps`` overrides ``release.steps`` (a rollback moves in one step, 100).
    ``abandon`` scales the other slot down even when it is to be kept warm
    (a rollback discarding a release that never finished). ``scaled`` is the
    size ``invoke scale`` set last: the new slot starts at it. Releasing the AMI
    that already holds all traffic, with the other slot settled, is
    ``outcome="unchanged"``.
    """
    steps = tuple(steps or release.steps)
    _check_steps(steps)
    point, new_name = resume_point(state, ami, release, config)
    new, old = state.slot(new_name), state.other(new_name)
    revert = state.split and new.version is not None and old.version is not None and new.version < old.version
    keep_warm = release.keep_old_slot_warm and not revert and not abandon
    notes: list[str] = []
    if point == "done" or (point == "drain" and keep_warm):
        return _plan(
            release,
            "unchanged",
            "done",
            new,
            old,
            ami,
            (),
            False,
            scale_old_down=False,
            notes=("already released: nothing to do",),
            config=config,
            scaled=scaled,
        )
    first = point in ("start", "scale_up") and old.desired == 0 and old.instances == 0
    if first:
        steps = (100,)
        notes.append(f"first release: {old.name} is empty, so traffic moves in one step")
    if point == "shift":
        steps = tuple(s for s in steps if s >= new.weight) or (100,)
        if revert:
            steps = (100,)
            notes.append(f"undoing the half-done release in {old.name}")
    elif point == "drain":
        steps = ()
    reuse = None
    if point in ("start", "scale_up"):
        if new.holds(ami, config) and new.version is not None and new.version == state.latest_version:
            reuse = new.version
        elif state.latest_ami == ami and state.latest_config == config:
            reuse = state.latest_version
    elif new.version is not None:
        reuse = new.version
    clear = point == "start" and not new.holds(ami, config) and (new.desired > 0 or new.instances > 0)
    cap = start_capacity(release, old, scaled)
    if point in ("start", "scale_up") and scaled is not None:
        notes.append(
            f"{new.name} starts at {cap.desired} (min {cap.min}, max {cap.max}): the size 'invoke scale' set"
            + (f", raised to what {old.name} runs now ({old.desired})" if cap != scaled else "")
        )
    elif point in ("start", "scale_up") and cap != release.capacity:
        notes.append(
            f"{old.name} runs {old.desired} now (min {old.min_size}, max {old.max_size}): {new.name} starts at {cap.desired} "
            f"(min {cap.min}, max {cap.max}) instead of release.capacity"
        )
    boxed = one_box(release, point, new, steps, first)
    if boxed:
        notes.append(
            f"one box first: {steps[0]}% of traffic goes to one instance of {new.name}; "
            f"the rest of it starts once that step's watch has passed"
        )
    made = _plan(
        release,
        "release",
        point,
        new,
        old,
        ami,
        steps,
        clear,
        reuse=reuse,
        scale_old_down=not keep_warm,
        first=first,
        notes=tuple(notes),
        config=config,
        scaled=scaled,
    )
    if boxed:
        made = replace(made, steps=(replace(made.steps[0], new_instances=1), *made.steps[1:]))
    return made


def one_box(release: Release, point: str, new: SlotState, steps: tuple[int, ...], first: bool) -> bool:
    """True when the first of ``steps`` is a one-box step (``release.one_box``): one new instance takes its share.

    Only the configured first step, and only while the new slot is not past
    one instance (a rerun after a kill during the one-box watch boxes again;
    one past it goes on at full size). A first release has no old slot to
    compare one box with: it moves in one step.
    """
    return (
        release.one_box
        and not first
        and bool(steps)
        and steps[0] == release.steps[0] < 100
        and (point in ("start", "scale_up") or new.desired <= 1)
    )


def _plan(
    release: Release,
    outcome: str,
    point: str,
    new: SlotState,
    old: SlotState,
    ami: str,
    steps: tuple[int, ...],
    clear: bool,
    reuse: int | None = None,
    scale_old_down: bool = True,
    first: bool = False,
    notes: tuple[str, ...] = (),
    config: int = 0,
    scaled: Capacity | None = None,
) -> Plan:
    capacity = start_capacity(release, old, scaled)
    return Plan(
        outcome=outcome,
        resume=point,
        new_slot=new.name,
        old_slot=old.name,
        from_ami=old.ami if outcome == "release" else new.ami,
        to_ami=ami,
        reuse_version=reuse if outcome == "release" else new.version,
        clear_new_first=clear,
        capacity=capacity,
        steps=tuple(Step(s, 100 - s, capacity.desired, old.instances) for s in steps),
        pause_seconds=release.pause_seconds,
        drain_seconds=old.drain_seconds if scale_old_down and outcome == "release" else 0,
        scale_old_down=scale_old_down and outcome == "release",
        rollback_target=None if first else (old.ami if outcome == "release" else None),
        first_release=first,
        notes=notes,
        to_config=config,
        from_config=old.config if outcome == "release" else new.config,
        rollback_config=None if first else (old.config if outcome == "release" else None),
    )


def _check_steps(steps: tuple[int, ...]) -> None:
    if not steps or steps[-1] != 100 or any(not 0 < s <= 100 for s in steps) or list(steps) != sorted(set(steps)):
        raise ReleaseError(
            f"steps {list(steps)} must increase and end at 100", "write percentages of traffic like [10, 50, 100]"
        )


UNFINISHED = ("in_progress", "interrupted")


def moved_traffic(entry: dict) -> bool:
    """True for a ledger entry of a release that moved traffic, or that was in progress when it ended.

    Rollbacks never count (a rollback undoes a release; it is not one), nor do
    runs that only drained the other slot (``resume == "drain"``: they finish a
    release that has its own entry), nor a release that rolled itself back
    before any weight moved. Being closed after a crash ("interrupted", or
    "released" when its AMI held all traffic) does not change the answer, so a
    rerun sees the same last release as the run that was killed.
    """
    if entry.get("kind", "release") != "release" or entry.get("resume") == "drain":
        return False
    return entry.get("outcome") in ("released", *UNFINISHED) or bool(entry.get("steps"))


def last_release(history: list[dict]) -> dict | None:
    """The newest ledger entry (``history`` is newest first) that ``moved_traffic``, or None."""
    return next((e for e in history if moved_traffic(e)), None)


def rollback_target(state: State, history: list[dict]) -> str:
    """The AMI ``invoke rollback`` restores (see ``rollback_release``)."""
    return rollback_release(state, history)[0]


def rollback_release(state: State, history: list[dict]) -> tuple[str, int]:
    """The (AMI, config version) ``invoke rollback`` restores: the pair live before the last release that moved traffic.

    Traffic split (a release between steps): the older slot's AMI and config,
    which the state shows holding traffic now. Otherwise the ``from_ami`` and
    ``from_config_version`` of ``last_release``: what held all traffic when
    that release began.
    Only with no release in the ledger at all is the idle slot used, and only
    when it is pinned to an older launch template version than the live one
    (so it held traffic before the live slot did). Never an AMI that did not
    take traffic.
    """
    if state.split and state.active.ami:
        return state.active.ami, state.active.config
    live, idle = state.active, state.other(state.active.name)
    last = last_release(history)
    if last is not None:
        if last.get("from_ami"):
            return last["from_ami"], int(last.get("from_config_version") or 0)  # entries before config vars: none
        raise ReleaseError(
            f"nothing to roll back to: the last release, of {last.get('to_ami')}, was the first one",
            "release a known-good AMI with 'invoke release --ami ...'",
        )
    releases = [e for e in history if e.get("kind", "release") == "release"]
    if (
        not releases
        and idle.ami
        and not idle.holds(live.ami, live.config)
        and (idle.version or 0) < (live.version or 0)
    ):
        return idle.ami, idle.config
    raise ReleaseError(
        f"nothing to roll back to: no release that moved traffic to {live.ami} is recorded",
        "release a known-good AMI with 'invoke release --ami ...'",
    )


def rollback_plan(
    state: State,
    release: Release,
    history: list[dict],
    target: tuple[str, int] | None = None,
    scaled: Capacity | None = None,
) -> Plan:
    """The Plan of ``invoke rollback``, from the state and the ledger (newest first).

    The target is ``rollback_target``. Split traffic: all of it back to the
    older slot in one step, the newer scaled down. Target already live: the
    other slot is scaled down when it holds a release that never finished
    (killed or rolled back), else nothing to do (a finished rollback, or its
    rerun). Otherwise the target comes back in one step. The ledger's own
    rollback entries are never read, so a rerun of a killed rollback plans the
    same rollback from wherever the kill left the slots. ``target`` overrides
    the (AMI, config version) restored: the same AMI with the config version
    that holds ``rollback_release``'s config as the newest (a rollback's copy).
    """
    target, config = target or rollback_release(state, history)
    if state.split:
        p = plan(state, release, target, steps=(100,), config=config, scaled=scaled)
    elif state.active.holds(target, config):
        last = last_release(history)
        p = plan(
            state,
            release,
            target,
            abandon=last is None or last.get("outcome") != "released",
            config=config,
            scaled=scaled,
        )
    else:
        p = plan(state, release, target, steps=(100,), config=config, scaled=scaled)
    return replace(p, kind="rollback", rollback_target=None, rollback_config=None)


def restore_plan(state: State, release: Release, ami: str, config: int, scaled: Capacity | None = None) -> Plan:
    """The Plan of ``invoke rollback --to vN``: release vN's AMI with ``config`` in one step, as a rollback.

    Like any release it resumes where a killed run stopped; a half-done
    release of something else is refused (finish or undo it first).
    """
    return replace(
        plan(state, release, ami, steps=(100,), config=config, scaled=scaled),
        kind="rollback",
        rollback_target=None,
        rollback_config=None,
    )


def describe(plan: Plan) -> list[str]:
    """The plan as lines a person reads (for --plan)."""
    if plan.outcome == "unchanged":
        return [
            f"{plan.to_ami} with config v{plan.to_config} already holds all traffic in {plan.new_slot}: nothing to do"
        ]
    what = (
        f"roll back to {plan.to_ami} with config v{plan.to_config} in"
        if plan.kind == "rollback"
        else f"release {plan.to_ami} with config v{plan.to_config} into"
    )
    lines = [
        f"{what} {plan.new_slot} (live now: {plan.old_slot} with {plan.from_ami or 'nothing'}, config v{plan.from_config or 0}), resuming at: {plan.resume}"
    ]
    if plan.resume in ("start", "scale_up"):
        if plan.clear_new_first:
            lines.append(f"  empty {plan.new_slot} first (it holds another AMI)")
        version = (
            f"launch template version {plan.reuse_version}"
            if plan.reuse_version
            else "a new launch template version (IMDSv2 required)"
        )
        lines.append(
            f"  scale {plan.new_slot} to {plan.capacity.desired} (min {plan.capacity.min}, max {plan.capacity.max}) with {version}, wait until all healthy"
        )
    for step in plan.steps:
        lines.append(
            f"  weight {plan.new_slot} {step.new_weight}% / {plan.old_slot} {step.old_weight}%  ({step.new_instances} + {step.old_instances} instances), watch {plan.pause_seconds}s"
        )
    if plan.scale_old_down:
        lines.append(f"  drain {plan.old_slot} (up to {plan.drain_seconds}s) and scale it to 0")
    elif plan.steps:
        lines.append(f"  keep {plan.old_slot} warm for a fast rollback")
    if plan.kind == "release":
        lines.append(
            f"  rollback target: {plan.rollback_target or 'none'}"
            + (f" with config v{plan.rollback_config or 0}" if plan.rollback_target else "")
        )
    lines.extend(f"  note: {n}" for n in plan.notes)
    return lines
