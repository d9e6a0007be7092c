"""CloudWatch metric alarms, evaluated the way CloudWatch does it (pure).

moto stores alarms and datapoints but never evaluates them. ``evaluate``
takes an alarm's definition and its metric's samples and says which state
the alarm is in now. The ``evaluation_periods`` periods are the ones ending
now (sliding windows, so a short period reacts within a tick; CloudWatch
uses periods aligned to the clock and evaluates once a period, or once a
minute); ``datapoints_to_alarm`` of them (default: all) must breach.
A period with no sample is treated as ``treat_missing_data`` says:

- ``notBreaching``: a good period; ``breaching``: a bad one;
- ``ignore``: not counted; with no sample at all the state stays as it is;
- ``missing`` (CloudWatch's default): not counted; with no sample at all the
  alarm is ``INSUFFICIENT_DATA``.
"""

from __future__ import annotations

from dataclasses import dataclass

OK, ALARM, INSUFFICIENT = "OK", "ALARM", "INSUFFICIENT_DATA"
STATISTICS = ("Sum", "SampleCount", "Average", "Minimum", "Maximum")
COMPARE = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}


@dataclass(frozen=True)
class Sample:
    """One datapoint (or a set of them: ``count`` values summing to ``total``), at ``time`` (epoch seconds)."""

    time: float
    total: float
    count: float = 1.0
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class AlarmSpec:
    """What evaluation needs from an alarm's definition."""

    statistic: str
    period: int
    evaluation_periods: int
    threshold: float
    comparison: str
    treat_missing_data: str = "missing"
    datapoints_to_alarm: int | None = None

    @property
    def window(self) -> float:
        """How far back evaluation looks, in seconds."""
        return float(self.period * self.evaluation_periods)


def can_evaluate(spec: AlarmSpec) -> bool:
    """True for the alarms ``evaluate`` understands (a plain statistic and comparison, a positive period)."""
    return (
        spec.statistic in STATISTICS and spec.comparison in COMPARE and spec.period > 0 and spec.evaluation_periods > 0
    )


def statistic(samples: list[Sample], name: str) -> float | None:
    """``name`` over ``samples`` (None when there are none)."""
    if not samples:
        return None
    total, count = sum(s.total for s in samples), sum(s.count for s in samples)
    if name == "Sum":
        return total
    if name == "SampleCount":
        return count
    if name == "Average":
        return total / count if count else None
    lows = [s.low if s.low is not None else s.total / (s.count or 1) for s in samples]
    highs = [s.high if s.high is not None else s.total / (s.count or 1) for s in samples]
    return min(lows) if name == "Minimum" else max(highs)


def evaluate(samples: list[Sample], spec: AlarmSpec, now: float, current: str = OK) -> str:
    """The alarm's state at ``now`` from ``samples`` of its metric (``current``: its state before)."""
    breaching = good = 0
    for i in range(spec.evaluation_periods):
        end, start = now - i * spec.period, now - (i + 1) * spec.period
        value = statistic([s for s in samples if start < s.time <= end], spec.statistic)
        if value is None:
            if spec.treat_missing_data == "notBreaching":
                good += 1
            elif spec.treat_missing_data == "breaching":
                breaching += 1
            continue
        if COMPARE[spec.comparison](value, spec.threshold):
            breaching += 1
        else:
            good += 1
    if breaching + good == 0:
        return current if spec.treat_missing_data == "ignore" else INSUFFICIENT
    needed = spec.datapoints_to_alarm or spec.evaluation_periods
    return ALARM if breaching >= needed else OK
