"""AWS calls and wall time of a release on the local stack, by instances per slot.

Run: .venv/bin/python bench/release.py [--sizes 2,10,50]

Starts a throwaway moto server (its own state dir), seeds one environment per
size (blue live at N instances, green empty), registers a verified AMI and
releases it with pause_seconds 0 (so no gate alarm), counting every AWS call through botocore's
``before-call`` event on the session's clients. Prints a table. The goal:
calls do not grow with N beyond the describe calls that page, and the time
beyond the configured pauses stays under 2 s at 50 instances.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.stacks import release_env  # noqa: E402
from toolkit.config import Capacity  # noqa: E402
from toolkit.local import seed, stack  # noqa: E402
from toolkit.local.environment import LocalEnvironment  # noqa: E402
from toolkit.release import rollout  # noqa: E402
from toolkit.ui import Silent  # noqa: E402


def bench(root: Path, st: stack.Stack, size: int) -> dict:
    app = f"bench{size}"
    # No gate alarm: a pause of 0 is too short for any alarm to fire (toolkit.release.watch refuses it).
    cfg = release_env(root, app, pause_seconds=0, health_timeout_seconds=60, alarms=[])
    cfg = dataclasses.replace(
        cfg, release=dataclasses.replace(cfg.release, capacity=Capacity(min=size, max=size, desired=size))
    )
    url = stack.up(st, cfg.region, seeders=(seed.seed_release(cfg),))
    aws = LocalEnvironment(region=cfg.region, endpoint=url)
    ec2 = aws.client("ec2")
    ami = ec2.register_image(
        Name=f"{app}-app", Architecture="x86_64", RootDeviceName="/dev/xvda", VirtualizationType="hvm"
    )["ImageId"]
    ec2.create_tags(
        Resources=[ami],
        Tags=[
            {"Key": "rodeo:app", "Value": app},
            {"Key": "rodeo:image", "Value": "app"},
            {"Key": "rodeo:verified", "Value": "true"},
        ],
    )
    calls: collections.Counter = collections.Counter()
    for service in ("ec2", "elbv2", "autoscaling", "dynamodb", "cloudwatch"):
        aws.client(service).meta.events.register("before-call", lambda model, **kw: calls.update([model.name]))
    started = time.monotonic()
    result = rollout.release(cfg, aws, ami=ami, reporter=Silent())
    seconds = time.monotonic() - started
    assert result.outcome == "released", result
    return {"size": size, "calls": sum(calls.values()), "seconds": seconds, "by_op": calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,10,50")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        st = stack.Stack(state_dir=root / "state", cache_dir=root / "state")
        try:
            rows = [bench(root, st, size) for size in sizes]
        finally:
            stack.down(st)
    print(f"{'instances/slot':>14}  {'AWS calls':>9}  {'wall s':>7}")
    for row in rows:
        print(f"{row['size']:>14}  {row['calls']:>9}  {row['seconds']:>7.2f}")
    ops = sorted(set().union(*(r["by_op"] for r in rows)))
    print("\ncalls by operation: " + "  ".join(f"n={r['size']}" for r in rows))
    for op in ops:
        print(f"  {op:36} " + "  ".join(f"{r['by_op'].get(op, 0):>4}" for r in rows))


if __name__ == "__main__":
    main()
