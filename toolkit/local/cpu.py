"""The instances' CPU as EC2 reports it: ``AWS/EC2`` ``CPUUtilization``, read from each instance's cgroup.

Each booted instance runs in a control group of its own
(``toolkit.local.cgroups``); the unified hierarchy's ``cpu.stat`` counts the
CPU time of every process in it (``usage_usec``). Once a period, the
``Meter`` turns the growth of that count into a percentage of the
instance type's vCPUs, as EC2 does (at most 100), and into datums:

- per instance (dimension ``InstanceId``);
- per Auto Scaling group (dimension ``AutoScalingGroupName``): the average
  over its instances that were measured for the whole period, the metric
  target tracking on ``ASGAverageCPUUtilization`` reads.

An instance measured for the first time has no period yet: it is reported
from its second period on (EC2's first datapoint also comes a period after
launch). The period is the stack's target tracking period
(``toolkit.local.scaler.tracking_period``: AWS's 60 s, a few seconds in tests
and benchmarks), as with EC2's detailed monitoring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

NAMESPACE = "AWS/EC2"
METRIC = "CPUUtilization"


def usage_of(cpu_stat: str) -> int | None:
    """``usage_usec`` (microseconds of CPU) from a cgroup2 ``cpu.stat``, or None when it has none."""
    for line in cpu_stat.splitlines():
        name, _, value = line.partition(" ")
        if name == "usage_usec" and value.strip().isdigit():
            return int(value)
    return None


def read_usage(folders: list[Path]) -> int | None:
    """The CPU an instance's cgroup has used (microseconds), from the first of its folders with a ``cpu.stat``."""
    for folder in folders:
        try:
            return usage_of((folder / "cpu.stat").read_text())
        except OSError:
            continue
    return None


def percent(used_usec: int, seconds: float, vcpus: int) -> float:
    """CPU used over ``seconds`` as a percentage of ``vcpus`` (0 to 100, as EC2 reports ``CPUUtilization``)."""
    if seconds <= 0:
        return 0.0
    return max(0.0, min(100.0, used_usec / 1e6 / seconds / max(vcpus, 1) * 100.0))


def datums(percents: dict[str, float], groups: dict[str, str]) -> list[dict]:
    """``MetricData`` entries: each instance's percentage, and each group's average over its measured instances."""
    out = [_datum("InstanceId", iid, value) for iid, value in sorted(percents.items())]
    by_group: dict[str, list[float]] = {}
    for iid, value in percents.items():
        if iid in groups:
            by_group.setdefault(groups[iid], []).append(value)
    out += [_datum("AutoScalingGroupName", g, sum(v) / len(v)) for g, v in sorted(by_group.items())]
    return out


def _datum(dimension: str, value: str, figure: float) -> dict:
    return {
        "MetricName": METRIC,
        "Dimensions": [{"Name": dimension, "Value": value}],
        "Value": round(figure, 3),
        "Unit": "Percent",
    }


@dataclass
class Meter:
    """The last reading of each instance, and when the last period ended."""

    period: float
    last: dict[str, tuple[float, int]] = field(default_factory=dict)  # instance id -> (when, usage_usec)
    ended: float | None = None

    def due(self, now: float) -> bool:
        """True when a period has ended since the last ``step`` (the first call starts the first period)."""
        if self.ended is None:
            self.ended = now
        return now - self.ended >= self.period

    def step(self, now: float, usage: dict[str, int | None], vcpus: dict[str, int]) -> dict[str, float]:
        """Each instance's percentage over the period ending ``now``, from its ``usage`` (read now); an instance read
        for the first time starts its first period."""
        percents = {}
        for iid, used in usage.items():
            if used is None:
                continue
            before = self.last.get(iid)
            if before is not None:
                percents[iid] = percent(used - before[1], now - before[0], vcpus.get(iid, 1))
            self.last[iid] = (now, used)
        for gone in set(self.last) - set(usage):
            del self.last[gone]
        self.ended = now
        return percents
