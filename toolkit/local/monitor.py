"""The live stack's CloudWatch: the load balancer's metrics in, alarm states out.

Each controller tick, ``Monitor.step`` turns HAProxy's ``show stat`` into ALB
metrics, and Classic ELB ones (``AWS/ELB``) (``toolkit.local.metrics``), and adds them to moto's CloudWatch, then
evaluates every metric alarm moto holds, in every account and region
(``toolkit.local.alarms``), on whatever data its metric has: the load
balancer's, or anyone's ``put_metric_data``. A changed state is written
through moto's ``Alarm.update_state`` (history kept).

New datapoints are read from moto's list once and kept in an index per
metric (``metric_key``: its account and region, namespace, name and
dimensions: an alarm reads its own region's data only, as CloudWatch's),
trimmed to the longest alarm window, so a tick costs little however
long the stack runs. A state someone set by hand (``set_alarm_state``) holds
for one period of the alarm, as on AWS it holds until the next evaluation.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from datetime import datetime, timezone

from toolkit.canary.metrics import dimension_value
from toolkit.local import alarms, classiclive, metrics
from toolkit.local.motostate import (
    LOCK,
    World,
    backend_name,
    cloudwatch_regions,
    forwarded,
    put_metrics,
)

MAX_WINDOW = 86400.0
log = logging.getLogger("rodeo.live")


class Monitor:
    """Counters between ticks, the datapoint index, and which alarm states were ours."""

    def __init__(self) -> None:
        self.before: dict = {}
        self.read: dict[int, int] = {}  # id(moto backend) -> datapoints indexed
        self.samples: dict[tuple, list[alarms.Sample]] = defaultdict(list)
        self.wrote: dict[str, datetime] = {}  # alarm ARN -> state_updated_timestamp we set

    def step(
        self,
        world: World,
        rows: list[dict],
        frontends: dict,
        now: float,
        healthy: dict[str, int] | None = None,
        hosts: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        """Publish what the load balancer did since the last tick, then evaluate the alarms (``healthy``: backend ->
        its healthy targets, for ``RequestCountPerTarget``; ``hosts``: Classic ELB ARN -> (healthy, unhealthy))."""
        self.publish(world, rows, frontends, healthy, hosts)
        self.evaluate(now)

    # --- metrics in -------------------------------------------------------------------

    def publish(
        self,
        world: World,
        rows: list[dict],
        frontends: dict,
        healthy: dict[str, int] | None = None,
        hosts: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        current = metrics.counters(rows)
        delta = metrics.deltas(self.before, current)
        self.before = current
        for lb_arn, names in names_by_balancer(world, frontends).items():
            datums = metrics.alb_datums(delta, names, healthy)
            if datums:
                put_metrics(lb_arn, metrics.NAMESPACE, datums)
        for arn, (name, fes, bes) in classic_names(world, frontends).items():
            datums = metrics.classic_datums(delta, name, fes, bes, (hosts or {}).get(arn, (0, 0)))
            if datums:
                put_metrics(arn, metrics.CLASSIC_NAMESPACE, datums)

    # --- alarms out -------------------------------------------------------------------

    def evaluate(self, now: float) -> None:
        with LOCK:  # reads moto's datapoints and alarms, and sets alarm states, between two requests
            self._evaluate(now)

    def _evaluate(self, now: float) -> None:
        for backend in cloudwatch_regions():
            self._index(backend)
            for alarm in list(backend.alarms.values()):
                spec = spec_of(alarm)
                if spec is None or self._held(alarm, spec, now):
                    continue
                key = metric_key(backend, alarm.namespace, alarm.metric_name, alarm.dimensions)
                state = alarms.evaluate(self.samples.get(key, []), spec, now, alarm.state_value)
                if state != alarm.state_value:
                    alarm.update_state(
                        reason(alarm, spec, state),
                        json.dumps({"version": "1.0", "evaluator": "rodeo local stack"}),
                        state,
                    )
                    self.wrote[alarm.alarm_arn] = alarm.state_updated_timestamp
                    log.info("alarm %s is %s", alarm.name, state)
        self._trim(now)

    def _held(self, alarm, spec: alarms.AlarmSpec, now: float) -> bool:
        """True while a state set by someone else (``set_alarm_state``) is younger than one period."""
        stamp = alarm.state_updated_timestamp
        ours = self.wrote.get(alarm.alarm_arn) == stamp
        return bool(alarm.history) and not ours and epoch(stamp) + spec.period > now

    def _index(self, backend) -> None:
        data = backend.metric_data
        start = self.read.get(id(backend), 0)
        if start > len(data):  # moto was reset: read it all again
            start = 0
            self.samples.clear()
        for datum in data[start:]:
            self.samples[metric_key(backend, datum.namespace, datum.name, datum.dimensions)].append(sample_of(datum))
        self.read[id(backend)] = len(data)

    def _trim(self, now: float) -> None:
        for key, found in self.samples.items():
            if found and found[0].time < now - MAX_WINDOW:
                self.samples[key] = [s for s in found if s.time >= now - MAX_WINDOW]


def metric_key(backend, namespace: str, name: str, dimensions) -> tuple:
    """A metric's key in the index: ``(account, region, namespace, name, frozenset of (dimension, value))``
    (``backend``: the moto backend of its account and region; ``dimensions``: moto's, each with ``name`` and ``value``)."""
    return (backend.account_id, backend.region_name, namespace, name, frozenset((d.name, d.value) for d in dimensions))


def names_by_balancer(world: World, frontends: dict) -> dict[str, metrics.Names]:
    """Per load balancer ARN: its frontends' and its target groups' dimension values (every group a listener forwards to)."""
    found: dict[str, metrics.Names] = {}
    for arn, (lb, listener) in world.listeners.items():
        names = found.setdefault(lb.arn, metrics.Names(groups={}, balancers={}))
        lb_value = dimension_value(lb.arn)
        if arn in frontends:
            names.balancers[frontends[arn].name] = lb_value
        for tg_arn in forwarded(listener):  # its default action's and its rules' (a review app's is a rule's only)
            tg = world.target_groups.get(tg_arn)
            if tg is not None:
                names.groups[backend_name(tg)] = (lb_value, dimension_value(tg_arn))
    return found


def classic_names(world: World, frontends: dict) -> dict[str, tuple[str, list[str], list[str]]]:
    """Per Classic ELB ARN: its name, its listeners' frontends and its backends (``toolkit.local.classiclive``)."""
    found: dict[str, tuple[str, list[str], list[str]]] = {}
    for arn, lb, listener, backend in classiclive.listeners_of(world):
        name, fes, bes = found.setdefault(arn, (lb.name, [], []))
        frontend = frontends.get(f"{arn}#{listener.load_balancer_port}")
        if frontend is not None:
            fes.append(frontend.name)
        if backend not in bes:
            bes.append(backend)
    return found


def spec_of(alarm) -> alarms.AlarmSpec | None:
    """A moto alarm's definition, or None for one this stack does not evaluate (metric math, percentiles)."""
    if alarm.metric_data_queries or not alarm.metric_name or not alarm.statistic:
        return None
    spec = alarms.AlarmSpec(
        statistic=alarm.statistic,
        period=int(alarm.period or 0),
        evaluation_periods=int(alarm.evaluation_periods or 0),
        threshold=float(alarm.threshold),
        comparison=alarm.comparison_operator,
        treat_missing_data=alarm.treat_missing_data or "missing",
        datapoints_to_alarm=int(alarm.datapoints_to_alarm) if alarm.datapoints_to_alarm else None,
    )
    return spec if alarms.can_evaluate(spec) else None


def sample_of(datum) -> alarms.Sample:
    if hasattr(datum, "sum"):
        return alarms.Sample(
            epoch(datum.timestamp), float(datum.sum), float(datum.sample_count), float(datum.min), float(datum.max)
        )
    return alarms.Sample(epoch(datum.timestamp), float(datum.value))


def epoch(stamp) -> float:
    """A moto timestamp (naive UTC, aware, or ISO text) in epoch seconds."""
    if isinstance(stamp, str):
        stamp = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


def reason(alarm, spec: alarms.AlarmSpec, state: str) -> str:
    if state == alarms.INSUFFICIENT:
        return f"Insufficient Data: no datapoints of {alarm.metric_name} in the last {spec.evaluation_periods} period(s) of {spec.period}s"
    verb = "breached" if state == alarms.ALARM else "did not breach"
    return (
        f"Threshold Crossed: the {spec.statistic} of {alarm.metric_name} over the last {spec.evaluation_periods} period(s) of "
        f"{spec.period}s {verb} {spec.comparison} {spec.threshold:g} (evaluated by the local stack)"
    )
