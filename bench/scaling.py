"""Scaling by load and by clock, measured: instances over time and failed requests on the live local stack.

Run (root, Linux; boots real instances): .venv/bin/python bench/scaling.py [--period 5] [--low 20] [--high 200]
    [--metric cpu --cpu-target 10]

Starts a live local stack (tests/integration/local/test_live.py's load
balancer, target groups with a 3 s deregistration delay, the sample app's
AMI), a group of 1 to 4 instances with a target tracking policy on
``ALBRequestCountPerTarget`` (target: 50 requests/s per target, as requests
per period; ``EstimatedInstanceWarmup`` 20 s), and runs a bounded loopback
load through three phases:

  ramp up    ``--low`` requests/s, then ``--high``: the high alarm (3 periods
             over the target) scales out in proportion, the new instances boot
             and pass their checks before they take requests;
  ramp down  ``--low`` again: after the warm-up and 15 low periods the group
             scales in, each instance drained before it stops;
  night      a schedule at 22:00 Berlin (min 1, desired 1) on a group moved
             back to 3, with the stack's clock moved to 22:00:01.

``--metric cpu``: the policy tracks ``ASGAverageCPUUtilization`` instead
(``--cpu-target`` percent of the instance type's vCPUs), the group's
``CPUUtilization`` the stack measures in each instance's cgroup
(``toolkit.local.cpu``): the load's CPU in the app scales the group out, and
the quiet phase back in.

Periods are ``--period`` seconds (``RODEO_LOCAL_SCALING_PERIOD``; AWS's are
60 s, so its reactions take 12 times as long). Prints, every second: the
load's rate, the group's desired capacity, its instances, its healthy
targets, failed requests so far; then per phase the seconds until the group's
desired capacity changed ("decide") and until its instances and healthy
targets matched it ("done"), and the failed requests, with the load average
before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.local.conftest import CACHE  # noqa: E402
from tests.integration.local.test_live import Live  # noqa: E402
from tests.support import livebuilds  # noqa: E402
from tests.support.load import Load  # noqa: E402
from toolkit.hosts import sandbox  # noqa: E402
from toolkit.local import clock, stack  # noqa: E402
from toolkit.local.environment import LocalEnvironment  # noqa: E402
from toolkit.local.scaler import PERIOD_ENV  # noqa: E402
from toolkit.release.scaling import resource_label  # noqa: E402

REGION = "us-east-1"
GROUP = "live-blue"
PER_TARGET_RATE = 50  # requests/s per target the policy aims at
WARMUP = 20
POLICY = "rodeo-tracking"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Watch:
    """Samples the group once a second on a thread of its own and prints a line per sample."""

    def __init__(self, live: Live, loads: list[Load]) -> None:
        self.live, self.loads, self.rows = live, loads, []
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            group = self.live.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
            healthy = sum(1 for s, _ in self.live.health("blue").values() if s == "healthy")
            failed = sum(len(load.failed()) for load in self.loads)
            rate = self.loads[-1].rate if self.loads else 0
            row = (time.monotonic() - self.started, rate, group["DesiredCapacity"], len(group["Instances"]), healthy)
            self.rows.append(row)
            print(
                f"{row[0]:6.1f}s  {rate:4.0f} req/s  desired {row[2]}  instances {row[3]}  healthy {row[4]}  "
                f"failed {failed}  cpu {self.cpu()}"
            )

    def cpu(self) -> str:
        """The group's newest CPUUtilization datapoint (toolkit.local.cpu), as a percentage."""
        now = datetime.now(timezone.utc)
        points = self.live.cw.get_metric_statistics(
            Namespace="AWS/EC2",
            MetricName="CPUUtilization",
            Dimensions=[{"Name": "AutoScalingGroupName", "Value": GROUP}],
            StartTime=now - timedelta(minutes=2),
            EndTime=now,
            Period=1,
            Statistics=["Average"],
        )["Datapoints"]
        newest = max(points, key=lambda p: p["Timestamp"], default=None)
        return f"{newest['Average']:.1f}%" if newest else "-"

    def until(self, decided, done, timeout: float) -> tuple[float | None, float | None]:
        """Seconds until a sample satisfies ``decided(desired, instances, healthy)`` and until one satisfies ``done``
        (None: not within ``timeout``)."""
        start = time.monotonic()
        seen, found = len(self.rows), [None, None]
        while time.monotonic() - start < timeout and found[1] is None:
            for row in self.rows[seen:]:
                for i, want in enumerate((decided, done)):
                    if found[i] is None and want(*row[2:]):
                        found[i] = time.monotonic() - start
            seen = len(self.rows)
            time.sleep(0.5)
        return found[0], found[1]


def phase(
    name: str, watch: Watch, rate: float, decided, done, timeout: float, results: list, lead: float = 0.0
) -> None:
    """``rate`` requests/s until ``done`` (or ``timeout``); records when the group decided, when it was done (seconds
    after the first ``lead`` seconds of the phase), and the failures."""
    load = Load(watch.live.url, rate=rate, workers=8 if rate > 50 else 4, max_seconds=timeout + 10).start()
    watch.loads.append(load)
    try:
        seconds = watch.until(decided, done, timeout)
        time.sleep(2.0)
    finally:
        load.stop()
    summary = load.summary()
    shifted = [x - lead if x is not None else None for x in seconds]
    results.append((name, *shifted, summary["requests"], summary["failed"], summary["p99_ms"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", type=float, default=5.0)
    parser.add_argument("--low", type=float, default=20.0)
    parser.add_argument("--high", type=float, default=200.0)
    parser.add_argument("--metric", choices=("requests", "cpu"), default="requests")
    parser.add_argument("--cpu-target", type=float, default=10.0, help="percent, with --metric cpu")
    args = parser.parse_args()
    os.environ[PERIOD_ENV] = str(args.period)
    before = loadavg()
    layers = livebuilds.sample_layers(ROOT, CACHE, sandbox.ensure_rootfs(sandbox.rootfs_path(CACHE)))
    folder = Path(tempfile.mkdtemp(prefix="rodeo-bench-scaling-"))
    st = stack.Stack(state_dir=folder / "state", cache_dir=CACHE, live=True)
    url = stack.up(st, REGION)
    results: list = []
    try:
        live = Live(st, url, layers, folder)
        live.group("blue", 1)
        live.asg.update_auto_scaling_group(AutoScalingGroupName=GROUP, MinSize=1, MaxSize=4)
        live.wait_health("blue", lambda h: len(h) == 1 and all(s == "healthy" for s, _ in h.values()), timeout=120)
        requests = {
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "ALBRequestCountPerTarget",
                "ResourceLabel": resource_label(live.listener, live.tgs["blue"]),
            },
            "TargetValue": float(PER_TARGET_RATE * args.period),
        }
        cpu = {
            "PredefinedMetricSpecification": {"PredefinedMetricType": "ASGAverageCPUUtilization"},
            "TargetValue": args.cpu_target,
        }
        live.asg.put_scaling_policy(
            AutoScalingGroupName=GROUP,
            PolicyName=POLICY,
            PolicyType="TargetTrackingScaling",
            EstimatedInstanceWarmup=WARMUP,
            TargetTrackingConfiguration=cpu if args.metric == "cpu" else requests,
        )
        live.cw = LocalEnvironment(region=REGION, endpoint=url).client("cloudwatch")
        watch = Watch(live, [])
        watch.thread.start()
        # By requests: as many as the rate needs; by CPU: out at all (how far depends on what a request costs here).
        needed = min(4, -(-int(args.high) // PER_TARGET_RATE)) if args.metric == "requests" else 2
        never = lambda d, i, h: False  # noqa: E731
        phase("steady", watch, args.low, never, never, 3 * args.period, results)
        phase(
            "ramp up",
            watch,
            args.high,
            lambda d, i, h: d >= needed,
            lambda d, i, h: h >= needed,
            3 * args.period + 120,
            results,
        )
        phase(
            "ramp down",
            watch,
            args.low,
            lambda d, i, h: d == 1,
            lambda d, i, h: d == 1 and i == 1 and h == 1,
            20 * args.period + WARMUP + 120,
            results,
        )
        live.asg.delete_policy(AutoScalingGroupName=GROUP, PolicyName=POLICY)
        live.asg.update_auto_scaling_group(AutoScalingGroupName=GROUP, DesiredCapacity=3)
        live.wait_health("blue", lambda h: len(h) == 3 and all(s == "healthy" for s, _ in h.values()), timeout=120)
        zone = "Europe/Berlin"
        live.asg.put_scheduled_update_group_action(
            AutoScalingGroupName=GROUP,
            ScheduledActionName="night",
            Recurrence="0 22 * * *",
            TimeZone=zone,
            MinSize=1,
            DesiredCapacity=1,
        )
        local = clock.now(st.live_dir).astimezone(ZoneInfo(zone))
        night = local.replace(hour=22, minute=0, second=1, microsecond=0)
        night = night if night > local else night + timedelta(days=1)
        threading.Timer(2.0, clock.set_to, (st.live_dir, night)).start()  # after 2 s of load
        phase("night", watch, args.low * 2, lambda d, i, h: d == 1, lambda d, i, h: d == h == i == 1, 60, results, 2.0)
        watch.stop.set()
    finally:
        stack.down(st)
        shutil.rmtree(folder, ignore_errors=True)
    target = f"{args.cpu_target:g}% CPU" if args.metric == "cpu" else f"{PER_TARGET_RATE} req/s per target"
    print(f"\nperiod {args.period:g}s (AWS: 60s), target {target}, warm-up {WARMUP}s")
    print(f"{'phase':10} {'s to decide':>11} {'s to done':>9} {'requests':>9} {'failed':>7} {'p99 ms':>7}")
    for name, decided, done, requests, failed, p99 in results:
        shown = [f"{x:.1f}" if x is not None else "-" for x in (decided, done)]
        print(f"{name:10} {shown[0]:>11} {shown[1]:>9} {requests:>9} {failed:>7} {p99:>7}")
    print(f"load average before {before}, after {loadavg()} ({os.cpu_count()} cores), {datetime.now():%Y-%m-%d %H:%M}")


if __name__ == "__main__":
    main()
