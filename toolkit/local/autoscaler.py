"""Scheduled actions as EC2 Auto Scaling runs them (pure: no clock, no moto).

moto stores scheduled actions and never runs them; the live stack's
``toolkit.local.scaler`` asks this module, each tick, which of a group's
actions came due between two readings of the stack's clock
(``toolkit.local.clock``) and what the group's sizes become. AWS's rules
(PutScheduledUpdateGroupAction, DescribeScheduledActions and the scheduled
scaling guide):

- a recurring action fires at each time its Unix cron ``Recurrence`` names in
  its ``TimeZone`` (default ``Etc/UTC``; daylight saving followed, see
  ``toolkit.cron.fire_times``); with a ``StartTime`` it fires then too, and
  never before it; with an ``EndTime`` never after it, and it is gone once
  that has passed;
- a one-time action (no recurrence) fires at its ``StartTime``, then is gone
  (DescribeScheduledActions lists only actions that have not run or not
  reached their end time);
- while the group's ``ScheduledActions`` process is suspended, actions whose
  time passes are skipped, not run late;
- firing sets the sizes the action gives; a desired capacity it does not give
  is brought within the new minimum and maximum (as UpdateAutoScalingGroup
  does); one it gives outside them, or a minimum above the maximum, fails the
  action and leaves the group as it was;
- several actions due in one window run in time order (AWS guarantees the
  order of one group's actions).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime

from toolkit import cron

UTC_ZONE = "Etc/UTC"
PROCESS = "ScheduledActions"


@dataclass(frozen=True)
class Scheduled:
    """One scheduled action, as the group holds it (times are aware datetimes)."""

    name: str
    recurrence: str | None = None
    time_zone: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    min: int | None = None
    max: int | None = None
    desired: int | None = None


@dataclass(frozen=True)
class Sizes:
    """A group's minimum, maximum and desired capacity."""

    min: int
    max: int
    desired: int


@dataclass(frozen=True)
class Outcome:
    """What a window of time did to one group."""

    sizes: Sizes
    ran: tuple[tuple[datetime, str], ...] = ()  # (when, action name), in order
    failed: tuple[tuple[datetime, str, str], ...] = ()  # (when, action name, why)
    skipped: tuple[tuple[datetime, str], ...] = ()  # due while ScheduledActions was suspended
    finished: frozenset[str] = field(default_factory=frozenset)  # actions that are gone now


class Unreadable(ValueError):
    """An action's recurrence or time zone that this module cannot read (AWS would have refused it)."""


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> cron.Cron:
    return cron.parse(text)


def fire_times(action: Scheduled, since: datetime, now: datetime) -> list[datetime]:
    """When ``action`` fires in ``(since, now]``, earliest first; Unreadable for a cron or zone it cannot read."""
    if action.recurrence is None:
        return [action.start] if action.start is not None and since < action.start <= now else []
    low = since if action.start is None else max(since, action.start)
    high = now if action.end is None else min(now, action.end)
    times = []
    if action.start is not None and since < action.start <= high:
        times.append(action.start)
    if low < high:
        try:
            times += cron.fire_times(_parsed(action.recurrence), action.time_zone or UTC_ZONE, low, high)
        except (cron.CronError, ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise Unreadable(f"{action.name}: {exc}") from exc
    return sorted(set(times))


def finished(action: Scheduled, now: datetime) -> bool:
    """True once ``action`` will never fire again: a one-time action past its time, a recurring one past its end."""
    if action.recurrence is None:
        return action.start is None or action.start <= now
    return action.end is not None and action.end <= now


def resize(sizes: Sizes, action: Scheduled) -> Sizes:
    """The group's sizes after ``action`` runs; ValueError (AWS's words) when the action fails."""
    low = sizes.min if action.min is None else action.min
    high = sizes.max if action.max is None else action.max
    if low > high:
        raise ValueError(f"Max bound, {high}, must be greater than or equal to min bound, {low}")
    if action.desired is None:
        return Sizes(low, high, min(max(sizes.desired, low), high))
    if not low <= action.desired <= high:
        raise ValueError(
            f"Desired capacity:{action.desired} must be between the specified min size:{low} and max size:{high}"
        )
    return Sizes(low, high, action.desired)


def run(sizes: Sizes, actions: list[Scheduled], since: datetime, now: datetime, suspended: bool) -> Outcome:
    """What ``actions`` of one group do between two clock readings ``since`` (exclusive) and ``now``.

    ``suspended``: the group's ``ScheduledActions`` process is suspended (its
    due actions are skipped). An action whose cron or zone cannot be read
    fails at each reading it is looked at, and changes nothing.
    """
    due: list[tuple[datetime, Scheduled]] = []
    failed: list[tuple[datetime, str, str]] = []
    for action in actions:
        try:
            due += [(at, action) for at in fire_times(action, since, now)]
        except Unreadable as exc:
            failed.append((now, action.name, str(exc)))
    due.sort(key=lambda d: (d[0], d[1].name))
    gone = frozenset(a.name for a in actions if finished(a, now))
    if suspended:
        return Outcome(sizes, failed=tuple(failed), skipped=tuple((at, a.name) for at, a in due), finished=gone)
    ran = []
    for at, action in due:
        try:
            sizes = resize(sizes, action)
        except ValueError as exc:
            failed.append((at, action.name, str(exc)))
            continue
        ran.append((at, action.name))
    return Outcome(sizes, ran=tuple(ran), failed=tuple(failed), finished=gone)
