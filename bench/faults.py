"""Releases under AWS faults: released, rolled back or broken, by fault rate.

Run: .venv/bin/python bench/faults.py [--rates 0.1,0.3,0.5] [--runs 5] [--seed 1] [--kinds throttle,5xx,drop] [--after 0.3]

Starts a throwaway moto server, seeds one environment (blue live with 2
instances, green empty, pause 0) and puts ``tests.support.faultproxy`` in
front of it, answering a share of all calls with throttling (400
Throttling / RequestLimitExceeded / ThrottlingException), 5xx errors or a
dropped connection. A share of the faults (``--after``) is injected after
moto applied the call: the change happened but its answer is lost, so the
retry meets its own effect (a duplicate create, a conditional write that
"fails" on itself). The last lines count the faults injected by kind. Each
run releases a fresh verified AMI into the idle slot, so runs alternate
between the slots and start from the world the last one left. After every
mutating call (botocore ``after-call`` / ``after-call-error`` hooks) the
invariant is read straight from moto. A run is *broken* when the invariant
failed at any moment, or it left something behind: more launch template
versions than one per release attempt, the lock still held, instances in the
new slot after a rollback, a split listener, or a ledger entry in progress.
Goal: zero broken at every rate.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.faultproxy import FaultProxy  # noqa: E402
from tests.support.hooks import MUTATING, HookedAws  # noqa: E402
from tests.support.stacks import release_env  # noqa: E402
from toolkit import lock  # noqa: E402
from toolkit.aws import Aws  # noqa: E402
from toolkit.errors import RodeoError  # noqa: E402
from toolkit.local import seed, stack  # noqa: E402
from toolkit.local.environment import LocalEnvironment  # noqa: E402
from toolkit.release import (
    ledger,  # noqa: E402
    rollout,  # noqa: E402
    slots,  # noqa: E402
)
from toolkit.release.planner import violations  # noqa: E402
from toolkit.ui import Silent  # noqa: E402


class Watched(HookedAws):
    """Clients through the proxy that read the invariant from moto after each mutating call."""

    HOOKS = (("after-call", "_after"), ("after-call-error", "_after"))

    def __init__(self, cfg, env, proxy_url: str, observer: Aws):
        super().__init__(region=cfg.region, endpoint=proxy_url)
        self.cfg, self.env, self.observer, self.broken = cfg, env, observer, []

    def _after(self, event_name, **kwargs):
        name = event_name.rsplit(".", 1)[-1]
        if name.startswith(MUTATING):
            state = slots.read(self.env, self.observer)
            self.broken += [f"after {name}: {v}" for v in violations(state, self.cfg.release)]


def run_once(cfg, env, observer: Aws, proxy: FaultProxy, n: int) -> dict:
    ec2 = observer.client("ec2")
    ami = ec2.register_image(
        Name=f"{cfg.app}-app-{n}", Architecture="x86_64", RootDeviceName="/dev/xvda", VirtualizationType="hvm"
    )["ImageId"]
    ec2.create_tags(
        Resources=[ami],
        Tags=[
            {"Key": "rodeo:app", "Value": cfg.app},
            {"Key": "rodeo:image", "Value": "app"},
            {"Key": "rodeo:verified", "Value": "true"},
        ],
    )
    template = slots.template_name(cfg)
    versions_before = len(ec2.describe_launch_template_versions(LaunchTemplateName=template)["LaunchTemplateVersions"])
    before = slots.read(env, observer)
    aws = Watched(cfg, env, proxy.url, observer)
    faults_before = proxy.stats.faulted
    started = time.monotonic()
    try:
        outcome = rollout.release(cfg, aws, ami=ami, reporter=Silent()).outcome
        error = ""
    except RodeoError as exc:
        outcome = exc.result.outcome if exc.result is not None else "failed"
        error = exc.message
    except Exception as exc:  # an AWS error escaping Rodeo is itself a finding
        outcome, error = "crashed", f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - started
    after = slots.read(env, observer)
    versions_after = len(ec2.describe_launch_template_versions(LaunchTemplateName=template)["LaunchTemplateVersions"])
    left = list(aws.broken)
    if versions_after - versions_before > 1:
        left.append(f"{versions_after - versions_before} launch template versions for one release")
    if lock.holder(cfg, observer) is not None:
        left.append("lock still held")
    if after.split:
        left.append(f"listener split {after.weights}")
    new = after.other(before.active.name)
    if outcome != "released" and (new.desired or new.instances) and new.name != before.active.name:
        left.append(f"{new.name} still has {new.instances} instance(s) after a {outcome}")
    if any(e["outcome"] == "in_progress" for e in ledger.recent(cfg, observer, 3)):
        left.append("a ledger entry still in progress")
    verdict = "broken" if left or outcome not in ("released", "rolled_back") else outcome
    return {
        "verdict": verdict,
        "seconds": seconds,
        "faults": proxy.stats.faulted - faults_before,
        "why": left or ([error] if verdict != "released" else []),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="0.1,0.3,0.5")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", default="throttle,5xx,drop", help="fault kinds (tests.support.faultproxy.KINDS)")
    parser.add_argument(
        "--after",
        type=float,
        default=0.3,
        help="share of faults injected after moto applied the call (the answer is lost: a retry meets its own effect)",
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    rows, kinds_seen = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cfg = release_env(
            root,
            "faults",
            "bench",
            capacity={"min": 2, "max": 4, "desired": 2},
            steps=[10, 50, 100],
            pause_seconds=0,
            health_timeout_seconds=30,
            alarms=[],
        )  # no pause, so no alarm (toolkit.release.watch)
        st = stack.Stack(state_dir=root / "state", cache_dir=root / "state")
        try:
            url = stack.up(st, cfg.region, seeders=(seed.seed_release(cfg),))
            observer = LocalEnvironment(region=cfg.region, endpoint=url)
            env = slots.resolve(cfg, observer)
            n = 0
            for rate in rates:
                results = []
                with FaultProxy(
                    url,
                    rate=rate,
                    kinds=tuple(args.kinds.split(",")),
                    after=args.after,
                    seed=args.seed + int(rate * 1000),
                ) as proxy:
                    for _ in range(args.runs):
                        n += 1
                        results.append(run_once(cfg, env, observer, proxy, n))
                        print(
                            f"  rate {rate:.0%} run {len(results)}: {results[-1]['verdict']} in {results[-1]['seconds']:.1f}s, {results[-1]['faults']} faults {'; '.join(results[-1]['why'])}",
                            file=sys.stderr,
                        )
                rows.append((rate, results))
                kinds_seen.append((rate, dict(proxy.stats.kinds)))
        finally:
            stack.down(st)
    print(
        f"{'fault rate':>10}  {'runs':>4}  {'released':>8}  {'rolled back':>11}  {'broken':>6}  {'faults/run':>10}  {'median s':>8}"
    )
    for rate, results in rows:
        count = lambda v: sum(r["verdict"] == v for r in results)  # noqa: E731
        print(
            f"{rate:>10.0%}  {len(results):>4}  {count('released'):>8}  {count('rolled_back'):>11}  {count('broken'):>6}  "
            f"{statistics.mean(r['faults'] for r in results):>10.1f}  {statistics.median(r['seconds'] for r in results):>8.1f}"
        )
    for rate, kinds in kinds_seen:
        print(f"faults injected at {rate:.0%}: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    for rate, results in rows:
        for r in results:
            if r["verdict"] == "broken":
                print(f"broken at {rate:.0%}: {'; '.join(r['why'])}")


if __name__ == "__main__":
    main()
