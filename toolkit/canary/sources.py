"""Where the canary analysis reads each slot's data, and how late each source delivers it.

A ``Source`` answers one question: per slot, what happened in [start, end].
Two implementations read what AWS keeps, through the same calls on AWS and
on the local stack (whose load balancer writes both, see README's
"Canary analysis"):

- ``accesslogs.AccessLogs``: the load balancer's access logs in S3, every
  request with its target group, status and response time (latency, errors);
- ``metrics.Metrics``: the team's named CloudWatch metrics per slot.

``window`` asks each and puts the answers together (a release's picture,
``toolkit.release.report``, reads ``access_logs`` alone); ``need_seconds`` is
how long a step must last on AWS for its data to arrive (``invoke doctor``
warns when ``release.pause_seconds`` leaves a step no time for it).
"""

from __future__ import annotations

from typing import Any, Protocol

from toolkit.canary import accesslogs, metrics
from toolkit.canary.samples import Series, Window
from toolkit.config import Analysis, JudgedMetric

# ALB access logs: one file per load balancer node every 5 minutes, "eventually consistent": the first file holding a
# step's requests is written up to 5 minutes after the step began, and a file covers 5 minutes.
ACCESS_LOG_INTERVAL = 300
# A step must last two intervals for one whole file of its own to have reached S3 when it ends.
ACCESS_LOG_NEED = 2 * ACCESS_LOG_INTERVAL
# CloudWatch: an ALB (and a standard-resolution metric) sends each minute's data after that minute.
METRIC_DELAY = 60


class Source(Protocol):
    """Each slot's data over a span of time, read from what AWS keeps."""

    def read(self, target_groups: dict[str, str], start: float, end: float) -> dict[str, Series]:
        """Per slot (``target_groups``: slot -> target group ARN), what reached AWS for [start, end]."""
        ...


def sources(aws: Any, analysis: Analysis, lb_arn: str, groups: dict[str, str]) -> list[Source]:
    """The sources ``analysis`` needs: the access logs for latency and errors, CloudWatch for named metrics.

    Reads where the access logs go (ReleaseError when they are off).
    """
    found: list[Source] = []
    if any(m in ("latency", "errors") for m in analysis.metrics):
        found.append(access_logs(aws, lb_arn))
    named = tuple(m for m in analysis.metrics if isinstance(m, JudgedMetric))
    if named:
        found.append(metrics.Metrics(aws, lb_arn, named, groups))
    return found


def access_logs(aws: Any, lb_arn: str) -> Source:
    """Every request of the load balancer's target groups, from its access logs (ReleaseError when they are off)."""
    bucket, prefix = accesslogs.where(aws, lb_arn)
    return accesslogs.AccessLogs(aws, lb_arn, bucket, prefix)


def window(
    found: list[Source], target_groups: dict[str, str], baseline: str, canary: str, start: float, end: float
) -> Window:
    """Both slots' data over [start, end], from every source."""
    requests: dict[str, tuple] = {baseline: (), canary: ()}
    named: dict[str, dict] = {baseline: {}, canary: {}}
    wanted = {slot: target_groups[slot] for slot in (baseline, canary)}
    for source in found:
        for slot, series in source.read(wanted, start, end).items():
            requests[slot] += series.requests
            named[slot].update(series.metrics)
    return Window(
        start,
        end,
        baseline,
        canary,
        Series(requests[baseline], named[baseline]),
        Series(requests[canary], named[canary]),
    )


def need_seconds(analysis: Analysis) -> dict[str, int]:
    """Per judged metric, the shortest step on AWS whose data can reach ``min_samples`` before the step ends."""
    need = {}
    for metric in analysis.metrics:
        if isinstance(metric, JudgedMetric):
            need[metric.name] = analysis.min_samples * metric.period + (METRIC_DELAY if metric.period >= 60 else 0)
        else:
            need[metric] = ACCESS_LOG_NEED
    return need
