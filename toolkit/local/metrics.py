"""The load balancer's counts as ALB metrics (pure).

HAProxy's ``show stat`` counters are totals since its process started;
``deltas`` turns two reads into what happened in between (a smaller total
means HAProxy restarted: the new total is the delta). ``alb_datums`` turns
one such delta into CloudWatch datums under ``AWS/ApplicationELB``, as an ALB
reports them:

- per target group (dimensions ``LoadBalancer`` + ``TargetGroup``):
  ``RequestCount`` (the backend's requests), ``RequestCountPerTarget`` (them
  divided among the group's healthy targets, when it has any: what target
  tracking on ``ALBRequestCountPerTarget`` reads), ``HTTPCode_Target_5XX_Count``
  (5xx answered by its servers), ``HTTPCode_ELB_5XX_Count`` (5xx HAProxy made
  itself for that backend: no server up, a broken connection),
  ``TargetResponseTime`` (seconds; HAProxy's running average ``rtime``,
  weighted by the responses in the delta);
- per load balancer (``LoadBalancer`` only): the frontend's requests, the sum
  of its target groups' target 5xx, the rest of its 5xx as ELB 5xx (which
  includes the 503 of a listener whose groups have no weight), and the
  response time averaged over its groups.

Like an ALB, a count that is zero is not reported (an alarm with
``TreatMissingData=notBreaching`` reads that as fine).
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE = "AWS/ApplicationELB"
COUNTERS = ("req_tot", "hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")


@dataclass(frozen=True)
class Names:
    """What HAProxy's proxy names stand for: ELBv2 dimension values."""

    groups: dict  # backend name -> (LoadBalancer value, TargetGroup value)
    balancers: dict  # frontend name -> LoadBalancer value


def counters(rows: list[dict]) -> dict[tuple[str, str], dict[str, int]]:
    """``show stat`` rows (every row: frontends, backends, servers) as (pxname, svname) -> counters (+ ``rtime``)."""
    found = {}
    for row in rows:
        values = {name: _int(row.get(name)) for name in COUNTERS}
        values["rtime"] = _int(row.get("rtime"))
        found[(row.get("pxname", ""), row.get("svname", ""))] = values
    return found


def deltas(before: dict, now: dict) -> dict[tuple[str, str], dict[str, int]]:
    """What each counter grew by between two reads; a total that went down restarted from 0."""
    grown = {}
    for key, values in now.items():
        old = before.get(key, {})
        grown[key] = {
            name: (v - old.get(name, 0) if v >= old.get(name, 0) else v)
            for name, v in values.items()
            if name != "rtime"
        }
        grown[key]["rtime"] = values.get("rtime", 0)
    return grown


def alb_datums(
    delta: dict[tuple[str, str], dict[str, int]], names: Names, healthy: dict[str, int] | None = None
) -> list[dict]:
    """CloudWatch ``MetricData`` entries for one delta (only what is non-zero); ``healthy``: backend -> healthy targets."""
    datums: list[dict] = []
    per_lb: dict[str, dict] = {}
    for backend, (lb, tg) in sorted(names.groups.items()):
        row = delta.get((backend, "BACKEND"))
        if row is None:
            continue
        target_5xx = sum(
            v.get("hrsp_5xx", 0) for (px, sv), v in delta.items() if px == backend and sv not in ("BACKEND", "FRONTEND")
        )
        elb_5xx = max(row["hrsp_5xx"] - target_5xx, 0)
        answered = max(_answered(row) - elb_5xx, 0)  # by its targets
        dims = [{"Name": "LoadBalancer", "Value": lb}, {"Name": "TargetGroup", "Value": tg}]
        datums += _counts(dims, row["req_tot"], target_5xx, elb_5xx)
        serving = (healthy or {}).get(backend, 0)
        if serving and row["req_tot"]:
            datums.append(
                {
                    "MetricName": "RequestCountPerTarget",
                    "Dimensions": dims,
                    "Value": row["req_tot"] / serving,
                    "Unit": "Count",
                }
            )
        if answered:
            datums.append(_timing(dims, answered, answered * row["rtime"] / 1000.0))
        lb_sum = per_lb.setdefault(lb, {"target_5xx": 0, "answered": 0, "seconds": 0.0})
        lb_sum["target_5xx"] += target_5xx
        lb_sum["answered"] += answered
        lb_sum["seconds"] += answered * row.get("rtime", 0) / 1000.0
    for frontend, lb in sorted(names.balancers.items()):
        row = delta.get((frontend, "FRONTEND"))
        if row is None:
            continue
        got = per_lb.get(lb, {"target_5xx": 0, "answered": 0, "seconds": 0.0})
        dims = [{"Name": "LoadBalancer", "Value": lb}]
        datums += _counts(dims, row["req_tot"], got["target_5xx"], max(row["hrsp_5xx"] - got["target_5xx"], 0))
        if got["answered"]:
            datums.append(_timing(dims, got["answered"], got["seconds"]))
    return datums


def _counts(dims: list[dict], requests: int, target_5xx: int, elb_5xx: int) -> list[dict]:
    named = (("RequestCount", requests), ("HTTPCode_Target_5XX_Count", target_5xx), ("HTTPCode_ELB_5XX_Count", elb_5xx))
    return [
        {"MetricName": name, "Dimensions": dims, "Value": float(value), "Unit": "Count"}
        for name, value in named
        if value > 0
    ]


def _timing(dims: list[dict], count: int, seconds: float) -> dict:
    mean = seconds / count
    stats = {"SampleCount": float(count), "Sum": seconds, "Minimum": mean, "Maximum": mean}
    return {"MetricName": "TargetResponseTime", "Dimensions": dims, "StatisticValues": stats, "Unit": "Seconds"}


def _answered(row: dict) -> int:
    return sum(row.get(name, 0) for name in COUNTERS if name.startswith("hrsp_"))


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
