"""The canary judge's power on the live stack: false fails of A/A releases, detection of a slow and of a flaky build.

Run (root, Linux; boots real instances):
  .venv/bin/python bench/canary.py [--runs 3] [--rate 100] [--pause 30] [--steps 50,100]
      [--base-ms 10] [--slow-percent 30] [--flaky-percent 1] [--floor-ms 0] [--record FILE]

Starts a live local stack (tests/support/livebuilds.py: the sample app's
builds, HAProxy as the ALB writing access logs to S3 every second) and
releases, under a bounded load of ``--rate`` requests/s on the load
balancer's loopback URL (a fresh load per release), ``--runs`` times each, in
rounds:

  aa     the same build again (another AMI of its very layers): must pass
  slow   a build whose pages answer ``--slow-percent`` later than the base build's
  flaky  a build answering 500 to ``--flaky-percent`` of its pages, evenly spread

Each page of the base build waits ``--base-ms`` (the sample app's
``webapp_fault=slow`` with that delay: a stand-in for an app's own work),
so "+30%" is a shift the access logs' whole milliseconds can show (the bare
sample app answers in 1-2 ms, where +30% is under their resolution); the slow
build waits base x (1 + slow-percent/100). The judge runs with the
project's analysis (confidence 0.98, 50 samples, latency +20%, errors +0.1
point) and ``--floor-ms`` (0: the README's default; the local inventory asks
for 5 ms). The first release (the base build over the stack's placeholder app)
is not judged and not counted.

Per kind: the share of releases the canary analysis rolled back (for aa, the
false-fail rate; for the faults, the detection rate) with its exact 95%
interval (Clopper-Pearson), the requests the load saw fail between the
first weight change and the deciding verdict, and the time from that weight
change to the verdict. Goals (issue 23): at most 2% false fails over 50 or
more A/A releases; at least 95% detection of +30% latency and of 1% errors
at 100 requests/s with a 30 s step. The command and the load average are
printed with the figures.

``--record FILE`` appends each release's figures to FILE (JSON lines, with
the settings they ran under) and counts the releases FILE already holds
under the same settings: 50 releases of each kind take about three hours
here, so they can be gathered over several runs (``bench/results/``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.integration.local.conftest import CACHE  # noqa: E402
from tests.support import livebuilds  # noqa: E402
from tests.support.load import Load  # noqa: E402
from toolkit.errors import ReleaseError  # noqa: E402
from toolkit.hosts import sandbox  # noqa: E402
from toolkit.local import stack  # noqa: E402
from toolkit.release import ledger, rollout  # noqa: E402
from toolkit.ui import Silent  # noqa: E402

KINDS = {"aa": "A/A (same build)", "slow": "slow", "flaky": "flaky"}
WORKERS = 12
ENOUGH = 50  # releases of a kind before a rate is held against its goal (the A/A goal's own count)


@dataclass(frozen=True)
class Run:
    """One release's figures."""

    kind: str
    outcome: str  # passed, judged (the canary analysis rolled it back), other (another gate did)
    verdicts: tuple[str, ...]  # each judged step's verdict
    failed: int  # requests the load saw fail from the first weight change to the deciding verdict
    to_verdict: float | None  # seconds from the first weight change to the deciding verdict
    shift_ms: float | None  # the deciding step's canary median less the baseline's (target time)
    requests: int  # the load's requests during the release
    reason: str = ""


def release_once(live, cfg, ami: str, kind: str, rate: float) -> Run:
    """Release ``ami`` under a fresh load; what the judge said and what the load saw."""
    with Load(live.urls()[80], rate=rate, workers=WORKERS, max_seconds=900, max_requests=200_000) as load:
        time.sleep(1.0)
        try:
            rollout.release(cfg, live.aws, ami=ami, reporter=Silent())
            outcome, reason = "passed", ""
        except ReleaseError as exc:
            reason = (exc.result.reason if exc.result else None) or exc.message
            outcome = "judged" if reason.startswith("canary analysis") else "other"
        time.sleep(1.0)
    records = ledger.recent(cfg, live.aws, 1)[0].get("analysis") or []
    deciding = next((r for r in records if r["decision"] == "rollback"), records[-1] if records else None)
    first = ledger.epoch(records[0]["start"]) if records else None
    decided = ledger.epoch(deciding["end"]) if deciding else None
    latency = next((m for m in (deciding or {}).get("metrics", []) if m["name"] == "latency"), {})
    shift = (
        (latency["median_canary"] - latency["median_baseline"]) * 1000
        if latency.get("median_canary") is not None
        else None
    )
    failed = sum(1 for s in load.samples if not s.ok and first is not None and first <= s.wall <= decided)
    return Run(
        kind,
        outcome,
        tuple(r["verdict"] for r in records),
        failed,
        None if first is None else round(decided - first, 1),
        shift,
        len(load.samples),
        reason,
    )


def interval(k: int, n: int) -> tuple[float, float]:
    """The exact (Clopper-Pearson) 95% interval of a rate seen ``k`` times in ``n``."""
    from scipy.stats import beta

    low = 0.0 if k == 0 else float(beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(0.975, k + 1, n - k))
    return low, high


def settings(args) -> dict:
    """What makes two releases' figures comparable: the load, the steps and the builds."""
    names = ("rate", "pause", "steps", "base_ms", "slow_percent", "flaky_percent", "floor_ms")
    return {name: getattr(args, name) for name in names}


def record(path: Path, under: dict, run: Run) -> None:
    """Append ``run`` to ``path`` (one JSON object a line), with the settings it ran under and when."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"settings": under, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **dataclasses.asdict(run)}
    with path.open("a") as out:
        out.write(json.dumps(line, sort_keys=True) + "\n")


def recorded(path: Path, under: dict) -> list[Run]:
    """The runs ``path`` holds that ran under ``under`` (none when it does not exist)."""
    if not path.exists():
        return []
    fields = {f.name for f in dataclasses.fields(Run)}
    runs = []
    for line in path.read_text().splitlines():
        data = json.loads(line)
        if data.get("settings") == under:
            found = {k: v for k, v in data.items() if k in fields}
            runs.append(Run(**dict(found, verdicts=tuple(found["verdicts"]))))
    return runs


def judged_config(cfg, args):
    """The project's release with the bench's steps, pause and latency floor."""
    rel = cfg.release
    analysis = dataclasses.replace(
        rel.analysis, enabled=True, latency=dataclasses.replace(rel.analysis.latency, floor_ms=args.floor_ms)
    )
    steps = tuple(int(s) for s in args.steps.split(","))
    return dataclasses.replace(
        cfg, release=dataclasses.replace(rel, steps=steps, pause_seconds=args.pause, analysis=analysis)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="releases of each kind")
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s on the load balancer")
    parser.add_argument("--pause", type=int, default=30, help="release.pause_seconds: each step's watch")
    parser.add_argument("--steps", default="50,100", help="release.steps")
    parser.add_argument("--base-ms", type=float, default=10.0, help="each page's delay in the base build")
    parser.add_argument("--slow-percent", type=float, default=30.0, help="the slow build's pages: this much later")
    parser.add_argument("--flaky-percent", type=float, default=1.0, help="the flaky build's share of 500s")
    parser.add_argument("--floor-ms", type=float, default=0.0, help="release.analysis.latency.floor_ms")
    parser.add_argument(
        "--record", type=Path, help="append each release to this JSON-lines file; count its earlier ones"
    )
    args = parser.parse_args()
    if args.base_ms <= 0:
        parser.error("--base-ms must be above 0: the slow build's delay is a share of it")
    stack.check_live_host()
    command = " ".join([".venv/bin/python", "bench/canary.py", *sys.argv[1:]])
    load_before = os.getloadavg()
    parts = livebuilds.sample_layers(ROOT, CACHE, sandbox.ensure_rootfs(sandbox.rootfs_path(CACHE)))
    runs: list[Run] = recorded(args.record, settings(args)) if args.record else []
    if runs:
        print(f"{len(runs)} release(s) recorded earlier in {args.record} under these settings: counted", flush=True)
    slow_ms = args.base_ms * (1 + args.slow_percent / 100)
    with (
        tempfile.TemporaryDirectory(prefix="rodeo-canary-") as tmp,
        livebuilds.live_sample(Path(tmp), ROOT, CACHE, pause=args.pause) as live,
    ):
        folder, ec2 = Path(tmp), live.aws.client("ec2")
        cfg = judged_config(live.cfg, args)

        def build(version: str, fault: str, **kw) -> str:
            return livebuilds.build(live.st, ec2, parts, folder, version, fault, **kw)

        base = dataclasses.replace(
            cfg,
            release=dataclasses.replace(cfg.release, analysis=dataclasses.replace(cfg.release.analysis, enabled=False)),
        )
        good = build("1.0.0", "slow", slow_ms=args.base_ms)
        rollout.release(base, live.aws, ami=good, reporter=Silent())
        for i in range(args.runs):
            for kind, made in (
                ("aa", lambda: livebuilds.same_build(live.st, ec2, good)),
                ("slow", lambda: build(f"1.1.{i}-slow", "slow", slow_ms=slow_ms)),
                ("flaky", lambda: build(f"1.2.{i}-flaky", "flaky", flaky_percent=args.flaky_percent)),
            ):
                run = release_once(live, cfg, made(), kind, args.rate)
                runs.append(run)
                if args.record:
                    record(args.record, settings(args), run)
                print(
                    f"  round {i + 1} {kind:5} {run.outcome:6} verdicts {'/'.join(run.verdicts) or '-'} "
                    f"failed {run.failed} to verdict {run.to_verdict}s shift {_ms(run.shift_ms)} "
                    f"({run.requests} requests){': ' + run.reason if run.reason else ''}",
                    flush=True,
                )
    report(runs, args, slow_ms, command, load_before, os.getloadavg())


def report(runs: list[Run], args, slow_ms: float, command: str, before, after) -> None:
    """The table, the goals, the command and the load average."""
    print(
        f"\ncanary bench: {len(runs)} release(s) in all, {args.rate:g} requests/s, steps {args.steps}, "
        f"{args.pause} s watch per step; base build {args.base_ms:g} ms a page, slow {slow_ms:g} ms "
        f"(+{args.slow_percent:g}%), flaky {args.flaky_percent:g}% 500s; latency floor {args.floor_ms:g} ms"
    )
    print(f"{'kind':18} {'runs':>4} {'judged':>6} {'rate (95% CI)':>18} {'failed before':>13} {'to verdict s':>12}")
    rates = {}
    for kind, label in KINDS.items():
        mine = [r for r in runs if r.kind == kind]
        k, n = sum(r.outcome == "judged" for r in mine), len(mine)
        low, high = interval(k, n) if n else (0.0, 1.0)
        rates[kind] = (k, n, low, high)
        times = [r.to_verdict for r in mine if r.to_verdict is not None]
        failed = [r.failed for r in mine]
        print(
            f"{label:18} {n:>4} {k:>6} {f'{k / max(n, 1):.0%} ({low:.0%}-{high:.0%})':>18} "
            f"{_mean_max(failed):>13} {_mean_max(times):>12}"
        )
        others = [r for r in mine if r.outcome == "other"]
        if others:
            print(f"  {len(others)} rolled back by another gate: {others[0].reason[:160]}")
    k, n, _, _ = rates["aa"]
    print(f"goal: false fails <= 2% over >= {ENOUGH} A/A releases: {k}/{n}, {_goal(k / max(n, 1) <= 0.02, n)}")
    fit = args.rate == 100 and args.pause == 30
    for kind, what in (("slow", f"+{args.slow_percent:g}% latency"), ("flaky", f"{args.flaky_percent:g}% errors")):
        k, n, _, _ = rates[kind]
        said = _goal(k / max(n, 1) >= 0.95, n) if fit else "not measured at 100 requests/s with a 30 s step"
        print(f"goal: >= 95% detection of {what}: {k}/{n}, {said}")
    print(f"command: {command}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in before)} before, {' '.join(f'{x:.2f}' for x in after)} after")


def _goal(met: bool, n: int) -> str:
    """Whether a rate meets its goal, said only at ``ENOUGH`` releases or more (a few runs show that it works)."""
    if n < ENOUGH:
        return f"{'on track' if met else 'NOT on track'}, not shown at N={n} (the goal counts {ENOUGH} or more)"
    return "met" if met else "NOT met"


def _mean_max(values: list[float]) -> str:
    return f"{statistics.mean(values):.1f}/{max(values):.0f}" if values else "-"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f} ms"


if __name__ == "__main__":
    main()
