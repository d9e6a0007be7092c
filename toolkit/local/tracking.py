"""Target tracking on ``ALBRequestCountPerTarget`` and ``ASGAverageCPUUtilization``, decided as EC2 Auto Scaling
decides it (pure).

A target tracking policy is two CloudWatch alarms AWS makes and manages: a
high one (the metric above the target for ``HIGH_PERIODS`` consecutive
periods) that scales out, and a low one (below ``LOW_FACTOR`` x the target
for ``LOW_PERIODS`` periods) that scales in. A period with no datapoint (an
ALB reports no count of zero) is missing: the alarm has insufficient data
and nothing scales. The metric is the Sum per period of the target group's
``RequestCountPerTarget`` (requests divided among its healthy targets), or
the Average per period of the group's ``AWS/EC2`` ``CPUUtilization``
(``toolkit.local.cpu``).

What a policy wants, from the latest period's value ``v`` and the group's
instances that finished their warm-up ``n``: ``ceil(n x v / target)``, the
smallest capacity that brings the metric to the target or below.

- Scale out when the high alarm holds and that is more than the group's
  desired capacity: an instance still warming up counts toward the desired
  capacity but not ``n``, so one alarm seen twice does not launch twice.
- Scale in when the low alarm holds, no instance is warming up (AWS blocks
  dynamic scale-in until warm-up ends), the policy does not disable scale-in,
  and that is less than the desired capacity.
- Several policies: any one that wants more scales out (the largest wins);
  the group scales in only when every policy with scale-in enabled wants
  less (to the largest of them).
- Never past the group's minimum or maximum; nothing at all while the
  group's ``AlarmNotification`` process is suspended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PERIOD = 60.0  # seconds: ALB metrics are standard resolution, target tracking reads 1-minute periods
HIGH_PERIODS = 3
LOW_PERIODS = 15
LOW_FACTOR = 0.9
PROCESS = "AlarmNotification"
METRIC = "ALBRequestCountPerTarget"
CPU = "ASGAverageCPUUtilization"
AVERAGED = frozenset({CPU})  # read as the Average per period; the others as the Sum


@dataclass(frozen=True)
class Tracker:
    """One target tracking policy on ``ALBRequestCountPerTarget`` or ``ASGAverageCPUUtilization``."""

    name: str
    target: float
    label: str  # ResourceLabel: app/<lb>/<id>/targetgroup/<tg>/<id> (request count); the group's name (CPU)
    disable_scale_in: bool = False
    warmup: float = 300.0  # seconds: EstimatedInstanceWarmup, else the group's default warm-up, else its cooldown
    metric: str = METRIC

    @property
    def averaged(self) -> bool:
        """True when its metric is read as the Average per period (CPU); else as the Sum (request count)."""
        return self.metric in AVERAGED


@dataclass(frozen=True)
class Want:
    """What one policy wants now: a capacity (or None: no change), and whether it is one to scale in."""

    capacity: int | None
    scale_in: bool = False


def periods(
    samples: list[tuple[float, float]], now: float, period: float, count: int, average: bool = False
) -> list[float | None]:
    """The Sum (``average``: the Average) of ``samples`` ((epoch seconds, value)) in each of the ``count`` periods
    ending ``now``, oldest first; None for a period without a sample."""
    sums: list[float | None] = [None] * count
    counts = [0] * count
    start = now - count * period
    for at, value in samples:
        if start < at <= now:
            i = min(math.ceil((at - start) / period) - 1, count - 1)
            sums[i] = (sums[i] or 0.0) + value
            counts[i] += 1
    if average:
        return [None if total is None else total / n for total, n in zip(sums, counts)]
    return sums


def alarm(values: list[float | None], target: float) -> str | None:
    """``"high"``, ``"low"`` or None from the periods' values (oldest first; at least ``LOW_PERIODS`` of them)."""
    high = values[-HIGH_PERIODS:]
    if len(high) == HIGH_PERIODS and all(v is not None and v > target for v in high):
        return "high"
    low = values[-LOW_PERIODS:]
    if len(low) == LOW_PERIODS and all(v is not None and v < target * LOW_FACTOR for v in low):
        return "low"
    return None


def want(tracker: Tracker, values: list[float | None], desired: int, warmed: int, warming: int) -> Want:
    """What ``tracker`` wants of a group at ``desired``, with ``warmed`` instances past warm-up and ``warming`` in it."""
    state = alarm(values, tracker.target)
    if state is None:
        return Want(None, scale_in=not tracker.disable_scale_in)
    needed = math.ceil(warmed * values[-1] / tracker.target)
    if state == "high":
        return Want(needed if needed > desired else None)
    if tracker.disable_scale_in or warming:
        return Want(None, scale_in=not tracker.disable_scale_in)
    return Want(needed if needed < desired else None, scale_in=True)


def decide(wants: list[Want], desired: int, low: int, high: int) -> int | None:
    """The group's new desired capacity from every policy's want (within ``low``..``high``), or None: unchanged."""
    out = [w.capacity for w in wants if w.capacity is not None and w.capacity > desired]
    if out:
        new = min(max(out), high)
        return new if new != desired else None
    voters = [w for w in wants if w.scale_in]
    if not voters or any(w.capacity is None or w.capacity >= desired for w in voters):
        return None
    new = max(max(w.capacity for w in voters), low)
    return new if new != desired else None
