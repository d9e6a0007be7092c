"""Zero downtime, measured: steady load on the local load balancer through releases, rollbacks and a kill -9.

Run (root, Linux; boots real instances): .venv/bin/python bench/zero_downtime.py [--rate 120] [--pause 3]

Starts a live local stack (instances booted under systemd-nspawn, HAProxy as
the ALB), releases builds of the sample app (tests/support/livebuilds.py) and
keeps a bounded load (``--rate`` requests/s, half on kept-alive connections,
half on a new connection each) on the load balancer's loopback URL through:

  a  a release of a good build
  b  a release of a build whose /health fails (the health gate rolls it back)
  c  a release of a build whose / answers 500 (only the 5xx alarm can catch it)
  d  invoke rollback
  e  `invoke release` killed with kill -9 at the 50% step, then run again

Per scenario: requests, failed (non-2xx or no answer), the longest gap
without a success, p50/p99 latency against the steady state before it, and
the share answered by each version over time. Goal: 0 failed in a, b, d, e;
in c, failures bounded by the canary share times the alarm's detection time.
The releases are gated on the seeded alarm ``web-5xx``, with the pause it
needs to fire (``tests/support/livebuilds.with_alarm``: longer than
``--pause`` when that is too short); the killed release of e runs with the
project's own config (``--pause``, no alarm).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.local.conftest import CACHE  # noqa: E402
from tests.support import livebuilds  # noqa: E402
from tests.support.load import Load  # noqa: E402
from toolkit.errors import ReleaseError  # noqa: E402
from toolkit.hosts import sandbox  # noqa: E402
from toolkit.local import stack  # noqa: E402
from toolkit.release import rollout  # noqa: E402
from toolkit.ui import Silent  # noqa: E402

REGION = "us-east-1"


def layers() -> dict[str, Path]:
    """The sample base and app layers (the live tests' cache, made on first use)."""
    return livebuilds.sample_layers(ROOT, CACHE, sandbox.ensure_rootfs(sandbox.rootfs_path(CACHE)))


def run(name: str, load: Load, action) -> dict:
    """Run one scenario under the load; its figures (against the 3 s of steady state before it)."""
    steady = load.summary(since=max(0.0, load.now() - 3.0))
    start = load.now()
    try:
        outcome = action()
        what = f"{outcome.outcome} {outcome.steps}"
    except ReleaseError as exc:
        what = f"{exc.result.outcome if exc.result else 'failed'}: {exc.message[:90]}"
    time.sleep(2.0)
    figures = load.summary(since=start)
    figures.update(
        name=name,
        outcome=what,
        steady_p50_ms=steady["p50_ms"],
        steady_p99_ms=steady["p99_ms"],
        shares=load.shares(bucket=5.0, since=start),
    )
    return figures


def killed_then_rerun(project: Path, state: Path, ami: str) -> object:
    """`invoke release --ami AMI` killed with SIGKILL at the 50% step, then run again to the end."""
    rerun = livebuilds.killed_then_rerun(project, state, CACHE, ami)
    if rerun.returncode != 0:
        raise ReleaseError(f"the rerun failed: {rerun.stderr.strip().splitlines()[-1:]}")
    return type("Rerun", (), {"outcome": "released after kill -9", "steps": "rerun"})()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=120.0)
    parser.add_argument("--pause", type=int, default=3)
    args = parser.parse_args()
    stack.check_live_host()
    parts = layers()
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="rodeo-zero-") as tmp,
        livebuilds.live_sample(Path(tmp), ROOT, CACHE, pause=args.pause, alarmed=True) as live,
    ):
        folder, project, cfg, st, aws = Path(tmp), live.project, live.cfg, live.st, live.aws
        ec2 = aws.client("ec2")
        urls = live.urls
        build = lambda version, fault="": livebuilds.build(st, ec2, parts, folder, version, fault)  # noqa: E731
        release = lambda ami: rollout.release(cfg, aws, ami=ami, reporter=Silent())  # noqa: E731
        with Load(urls()[80], rate=args.rate, workers=12, max_seconds=1800) as load:
            time.sleep(5.0)
            # d right after a: a rollback undoes the last release that moved traffic, and b and c never finish one.
            rows.append(run("a good release", load, lambda: release(build("1.0.0"))))
            rows.append(run("d rollback", load, lambda: rollout.rollback(cfg, aws, reporter=Silent())))
            rows.append(run("b /health fails", load, lambda: release(build("1.1.0-health", "health"))))
            rows.append(run("c / answers 500", load, lambda: release(build("1.2.0-root", "root"))))
            rows.append(run("e kill -9, rerun", load, lambda: killed_then_rerun(project, st.state_dir, build("2.0.0"))))
    print(
        f"pause {cfg.release.pause_seconds}s per step, gated on {', '.join(cfg.release.alarms)}; {args.rate:g} requests/s"
    )
    print(
        f"{'scenario':18} {'requests':>8} {'failed':>6} {'gap s':>6} {'p50 ms':>7} {'p99 ms':>7} {'steady p99':>10}  outcome"
    )
    for r in rows:
        print(
            f"{r['name']:18} {r['requests']:>8} {r['failed']:>6} {r['longest_gap_s']:>6.2f} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['steady_p99_ms']:>10.1f}  {r['outcome']}"
        )
    for r in rows:
        print(
            f"{r['name']}: share by version every 5 s: " + "; ".join(f"{t:.0f}s {counts}" for t, counts in r["shares"])
        )


if __name__ == "__main__":
    main()
