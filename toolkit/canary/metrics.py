"""The team's own CloudWatch metrics per slot, for the canary analysis (``release.analysis.metrics``).

Each named metric is read per slot with one ``GetMetricData`` call for all of
them: the slot's target group (``TargetGroup``, with ``LoadBalancer`` in
``AWS/ApplicationELB``) or its Auto Scaling group (``AutoScalingGroupName``)
tells the slots apart. Every datapoint in the window is one sample, as
Kayenta counts them: at a 60 s period a step of 10 minutes has 10, so a
metric that must reach ``min_samples`` in one step wants a high-resolution
period (1, 5, 10 or 30 s) that the app publishes at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from toolkit.canary.samples import Series
from toolkit.config import JudgedMetric

ALB_NAMESPACE = "AWS/ApplicationELB"


def dimension_value(arn: str) -> str:
    """An ELBv2 ARN as CloudWatch's dimension value: ``app/<name>/<id>`` or ``targetgroup/<name>/<id>``."""
    resource = arn.split(":", 5)[-1]
    return resource.split("/", 1)[-1] if resource.startswith("loadbalancer/") else resource


def query(metric: JudgedMetric, slot: str, where: dict[str, str], index: int) -> dict:
    """One ``MetricDataQueries`` entry: ``metric`` for one slot (``where``: the dimensions telling it apart)."""
    return {
        "Id": f"m{index}",
        "Label": f"{metric.name}/{slot}",
        "MetricStat": {
            "Metric": {
                "Namespace": metric.namespace,
                "MetricName": metric.metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in where.items()],
            },
            "Period": metric.period,
            "Stat": metric.statistic,
        },
        "ReturnData": True,
    }


def dimensions(metric: JudgedMetric, lb_arn: str, target_group: str, group: str) -> dict[str, str]:
    """What tells one slot's datapoints apart: its Auto Scaling group, or its target group (and load balancer)."""
    if metric.dimension == "AutoScalingGroupName":
        return {"AutoScalingGroupName": group}
    found = {"TargetGroup": dimension_value(target_group)}
    if metric.namespace == ALB_NAMESPACE:
        found["LoadBalancer"] = dimension_value(lb_arn)
    return found


@dataclass
class Metrics:
    """Named CloudWatch metrics of each slot."""

    aws: Any
    lb_arn: str
    metrics: tuple[JudgedMetric, ...]
    groups: dict[str, str]  # slot -> Auto Scaling group name

    def read(self, target_groups: dict[str, str], start: float, end: float) -> dict[str, Series]:
        """Per slot, each metric's datapoints in [start, end]."""
        queries, labels = [], {}
        for metric in self.metrics:
            for slot, arn in target_groups.items():
                where = dimensions(metric, self.lb_arn, arn, self.groups.get(slot, ""))
                queries.append(query(metric, slot, where, len(queries)))
                labels[queries[-1]["Id"]] = (slot, metric.name)
        found: dict[str, dict[str, list[float]]] = {slot: {} for slot in target_groups}
        if not queries:
            return {slot: Series() for slot in target_groups}
        args = {
            "MetricDataQueries": queries,
            "StartTime": datetime.fromtimestamp(start, timezone.utc),
            "EndTime": datetime.fromtimestamp(end, timezone.utc),
        }
        for page in self.aws.client("cloudwatch").get_paginator("get_metric_data").paginate(**args):
            for result in page.get("MetricDataResults", []):
                slot, name = labels[result["Id"]]
                found[slot].setdefault(name, []).extend(float(v) for v in result.get("Values", []))
        return {slot: Series(metrics={k: tuple(v) for k, v in named.items()}) for slot, named in found.items()}
