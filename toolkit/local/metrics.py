"""The load balancer's counts as ALB metrics (pure).

HAProxy's ``show stat`` counters are totals since its process started;
``deltas`` turns two reads into what happened in between (a smaller total
means HAProxy restarted: the new total is the delta). ``alb_datums`` turns
one such delta into CloudWatch datums under ``AWS/ApplicationELB``, as an ALB
reports them (``classic_datums``: a Classic ELB's, under ``AWS/ELB``):

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


# --- Classic ELB (AWS/ELB) ----------------------------------------------------------------------------------------

CLASSIC_NAMESPACE = "AWS/ELB"
BACKEND_CODES = (("hrsp_2xx", "HTTPCode_Backend_2XX"), ("hrsp_3xx", "HTTPCode_Backend_3XX"))
BACKEND_CODES += (("hrsp_4xx", "HTTPCode_Backend_4XX"), ("hrsp_5xx", "HTTPCode_Backend_5XX"))


def classic_datums(
    delta: dict[tuple[str, str], dict[str, int]],
    name: str,
    frontends: list[str],
    backends: list[str],
    hosts: tuple[int, int],
) -> list[dict]:
    """CloudWatch ``MetricData`` of Classic ELB ``name`` for one delta, dimension ``LoadBalancerName``.

    ``frontends`` and ``backends`` are its listeners' and instance ports' HAProxy names, ``hosts`` its (healthy,
    unhealthy) registered instances. As a Classic ELB reports them
    (https://docs.aws.amazon.com/elasticloadbalancing/latest/classic/elb-cloudwatch-metrics.html): ``RequestCount``,
    ``HTTPCode_Backend_nXX`` (answered by its instances), ``HTTPCode_ELB_5XX`` (made by the load balancer: no
    instance in service, a broken connection), ``Latency`` (seconds), each when non-zero; ``HealthyHostCount``
    and ``UnHealthyHostCount`` whenever it has registered instances.
    """
    dims = [{"Name": "LoadBalancerName", "Value": name}]
    requests = sum(delta.get((fe, "FRONTEND"), {}).get("req_tot", 0) for fe in frontends)
    all_5xx = sum(delta.get((fe, "FRONTEND"), {}).get("hrsp_5xx", 0) for fe in frontends)
    servers = {
        be: [v for (px, sv), v in delta.items() if px == be and sv not in ("BACKEND", "FRONTEND")] for be in backends
    }
    rows = [v for found in servers.values() for v in found]
    counts = [("RequestCount", requests)] + [(metric, sum(v.get(c, 0) for v in rows)) for c, metric in BACKEND_CODES]
    counts.append(("HTTPCode_ELB_5XX", max(all_5xx - sum(v.get("hrsp_5xx", 0) for v in rows), 0)))
    datums = [
        {"MetricName": metric, "Dimensions": dims, "Value": float(value), "Unit": "Count"}
        for metric, value in counts
        if value
    ]
    answered, seconds = 0, 0.0
    for be, found in servers.items():
        count = sum(_answered(v) for v in found)
        answered += count
        seconds += count * delta.get((be, "BACKEND"), {}).get("rtime", 0) / 1000.0
    if answered:
        timing = _timing(dims, answered, seconds)
        datums.append(dict(timing, MetricName="Latency"))
    if sum(hosts):
        datums += [
            {"MetricName": "HealthyHostCount", "Dimensions": dims, "Value": float(hosts[0]), "Unit": "Count"},
            {"MetricName": "UnHealthyHostCount", "Dimensions": dims, "Value": float(hosts[1]), "Unit": "Count"},
        ]
    return datums
