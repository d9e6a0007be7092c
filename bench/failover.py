"""A zone lost under load (issue 24, item 2): failed requests, and seconds until the group is whole again.

Run (root, Linux; boots real instances):
  .venv/bin/python bench/failover.py [--rate 50] [--workers 8]

Starts a live local stack seeded for the sample project (its live slot: an
Auto Scaling group of two over the seeded private subnets of two zones, one
instance in each, ELB health checks with a 60 s grace period, behind the
local ALB), waits until both instances are past that grace period, puts a
bounded loopback load on the load balancer, and loses the zone of one of
them (``toolkit.local.zones.lose``: its instance frozen, running to EC2 and
answering nothing; no launch there). Prints:

- the failed requests, when they were sent (seconds after the zone went
  dark), and the bound the health checks set: the share of the load the dead
  instance had x the time its target group's checks take to notice (the
  stack's tick, then two failed checks: HAProxy starts each an interval
  after the last ended and gives it up after its timeout), plus the load's
  workers (requests in flight); and each failed request;
- the seconds until the load balancer took the dead instance out (its
  target ``unhealthy``), and until the group was back at its desired
  capacity, all healthy, all in the zone still up;

with the load average before and after.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.local.conftest import CACHE  # noqa: E402
from tests.support import livebuilds  # noqa: E402
from tests.support.load import Load  # noqa: E402
from toolkit.hosts import sandbox  # noqa: E402
from toolkit.local import stack, zones  # noqa: E402
from toolkit.local.controller import POLL  # noqa: E402
from toolkit.release import slots  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="requests/s on the load balancer")
    parser.add_argument("--workers", type=int, default=8, help="the load's concurrent requests at most")
    args = parser.parse_args()
    stack.check_live_host()
    sandbox.ensure_rootfs(sandbox.rootfs_path(CACHE))
    command = " ".join([".venv/bin/python", "bench/failover.py", *sys.argv[1:]])
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="rodeo-failover-") as tmp,
        livebuilds.live_sample(Path(tmp), ROOT, CACHE) as live,
    ):
        ec2, asg, elbv2 = (live.aws.client(s) for s in ("ec2", "autoscaling", "elbv2"))
        active = slots.read(live.env, live.aws).active
        group_name, tg = live.env.groups[active.name], live.env.target_groups[active.name]
        group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"][0]
        check = elbv2.describe_target_groups(TargetGroupArns=[tg])["TargetGroups"][0]

        def members() -> dict[str, str]:
            ids = [
                i["InstanceId"]
                for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"][0][
                    "Instances"
                ]
            ]
            found = ec2.describe_instances(InstanceIds=ids)["Reservations"] if ids else []
            return {i["InstanceId"]: i["Placement"]["AvailabilityZone"] for r in found for i in r["Instances"]}

        def health() -> dict[str, str]:
            described = elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
            return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in described}

        placed = members()
        print(f"{group_name}: {placed} (grace {group['HealthCheckGracePeriod']} s, {group['HealthCheckType']} checks)")
        if len(set(placed.values())) < 2:
            sys.exit("the live slot's instances are not in two zones: nothing to fail over to")
        launched = max(
            i["LaunchTime"].timestamp()
            for r in ec2.describe_instances(InstanceIds=list(placed))["Reservations"]
            for i in r["Instances"]
        )
        wait = launched + group["HealthCheckGracePeriod"] - time.time()
        if wait > 0:
            print(f"waiting {wait:.0f} s until both are past their grace period", flush=True)
            time.sleep(wait)
        dead, lost = sorted(placed.items())[0]
        desired, share = group["DesiredCapacity"], 1 / len(placed)
        # HAProxy starts a server's next check an interval after the last one ended; the zone freezes at the
        # stack's next tick
        noticed = POLL + 2 * (check["HealthCheckIntervalSeconds"] + check["HealthCheckTimeoutSeconds"])
        out_at = back_at = None
        with Load(live.urls()[80], rate=args.rate, workers=args.workers, max_seconds=300) as load:
            time.sleep(3)
            dark = time.time()
            zones.lose(live.st.live_dir, lost)
            print(f"zone {lost} lost at +0 s: {dead} frozen", flush=True)
            try:
                deadline = time.monotonic() + 240
                while time.monotonic() < deadline and back_at is None:
                    now, seen, placed_now = time.time(), health(), members()
                    if out_at is None and seen.get(dead) in ("unhealthy", "draining", "unused", None):
                        out_at = now - dark
                        print(f"  +{out_at:.1f} s: the load balancer took {dead} out ({seen.get(dead)})", flush=True)
                    whole = len(placed_now) == desired and lost not in placed_now.values()
                    if whole and all(seen.get(i) == "healthy" for i in placed_now):
                        back_at = now - dark
                        print(f"  +{back_at:.1f} s: {desired} healthy again, in {sorted(set(placed_now.values()))}")
                    time.sleep(0.5)
                time.sleep(3)
            finally:
                zones.lose(live.st.live_dir, lost, lost=False)
        failed = [s for s in load.samples if not s.ok]
        bound = math.ceil(args.rate * share * noticed) + args.workers
        late = [s for s in failed if s.wall > dark + noticed]
        print(
            f"\nfailed: {len(failed)} of {len(load.samples)} requests; bound {bound} "
            f"({args.rate:g}/s x {share:.0%} x {noticed:g} s to notice + {args.workers} in flight); "
            f"sent {_span([s.wall - dark for s in failed])} s after the zone went dark; "
            f"after the checks could have noticed: {len(late)}"
        )
        print(f"taken out of the load balancer after: {_s(out_at)}; whole again after: {_s(back_at)}")
        for s in failed[:40]:
            print(f"  failed: sent +{s.wall - dark:.2f} s, status {s.status or 'none'}, after {s.seconds:.2f} s")
    print(f"command: {command}")
    print(
        f"load average: {' '.join(f'{x:.2f}' for x in load_before)} before, {' '.join(f'{x:.2f}' for x in os.getloadavg())} after"
    )


def _span(values: list[float]) -> str:
    return f"{min(values):.1f} to {max(values):.1f}" if values else "-"


def _s(value: float | None) -> str:
    return "not within the bench's 240 s" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    main()
