"""How long each weight step must be watched for the release's alarms to be able to fire (pure).

A gate alarm protects a step only if it can reach ALARM before the step ends.
From the moment a bad build starts answering 5xx, a CloudWatch metric alarm
needs, at the latest:

- ``Period × DatapointsToAlarm``: the breaching datapoints it counts (an
  "M out of N" alarm needs M of them; EvaluationPeriods only widens the window);
- one publication delay, for standard-resolution metrics (``Period`` of 60 s
  or more): Elastic Load Balancing "measures and sends its metrics in
  60-second intervals", so a minute's datapoint reaches CloudWatch up to a
  minute after the minute it counts
  (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html).
  PUBLICATION_DELAY is that figure, 60 s. Reports of ALB alarms firing 3-4
  minutes after the errors began exist; this is a floor, not a promise. A
  10 s or 30 s period only works with a high-resolution metric, published as
  it is measured: no delay is added for those;
- one evaluation interval: CloudWatch evaluates an alarm every 10 s when its
  period is 10 or 30 s, else every minute
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html).

So an ALB 5xx alarm of one 60 s datapoint needs 180 s; the local stack's
seeded alarm (a 10 s period, one datapoint) needs 20 s. A release whose
``pause_seconds`` is shorter than the slowest alarm's time is refused with a
hint, on every stack alike (a rollback is never refused: it moves back to a
known build in one step). Composite alarms have no period of their own and
are not counted; their children, when listed in ``release.alarms``, are.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.errors import ReleaseError

PUBLICATION_DELAY = 60  # seconds: ELB sends a minute's metrics after that minute (see above)
HIGH_RESOLUTION_BELOW = 60  # a period under 60 s (10 or 30) needs a high-resolution metric
EVALUATION_INTERVAL = {True: 10, False: 60}  # seconds between CloudWatch's evaluations: high resolution or not


@dataclass(frozen=True)
class AlarmTiming:
    """What decides how fast a metric alarm can fire: its name, period and datapoints."""

    name: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int | None = None  # None: all of evaluation_periods

    def seconds_to_fire(self) -> int:
        """The longest time from the first bad request until this alarm can be in ALARM."""
        return sum(self.parts().values())

    def parts(self) -> dict[str, int]:
        """``seconds_to_fire`` in its parts: datapoints, publication, evaluation."""
        high_resolution = self.period < HIGH_RESOLUTION_BELOW
        return {
            "datapoints": self.period * (self.datapoints_to_alarm or self.evaluation_periods),
            "publication": 0 if high_resolution else PUBLICATION_DELAY,
            "evaluation": EVALUATION_INTERVAL[high_resolution],
        }


def timing(alarm: dict) -> AlarmTiming | None:
    """The timing of one alarm as DescribeAlarms returns it; None for a composite alarm (no period of its own).

    A metric math alarm's period is the longest period among its metrics.
    """
    if "AlarmRule" in alarm:
        return None
    period = alarm.get("Period") or max(
        (m.get("MetricStat", {}).get("Period") or m.get("Period") or 0 for m in alarm.get("Metrics", [])), default=0
    )
    if not period:
        return None
    return AlarmTiming(
        alarm["AlarmName"], int(period), int(alarm.get("EvaluationPeriods") or 1), alarm.get("DatapointsToAlarm")
    )


def check(pause_seconds: int, alarms: list[AlarmTiming]) -> None:
    """ReleaseError when a step's watch (``pause_seconds``) ends before one of ``alarms`` could fire."""
    if not alarms:
        return
    slowest = max(alarms, key=lambda a: a.seconds_to_fire())
    need = slowest.seconds_to_fire()
    if pause_seconds >= need:
        return
    parts = slowest.parts()
    raise ReleaseError(
        f"release.pause_seconds {pause_seconds} is shorter than alarm {slowest.name} needs to fire: {need}s "
        f"({slowest.datapoints_to_alarm or slowest.evaluation_periods} datapoint(s) of {slowest.period}s, {parts['publication']}s to publish, "
        f"{parts['evaluation']}s to evaluate); a bad step would be over before it could",
        f"set release.pause_seconds to at least {need} in rodeo.yml, or give the alarm a shorter period or fewer datapoints to alarm",
    )
