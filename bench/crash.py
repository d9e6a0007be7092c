"""Kill -9 a release or a rollback after each mutating AWS call, rerun, and watch the invariant.

Run: .venv/bin/python bench/crash.py [--poll 0.15]

Starts a throwaway moto server. For each kill point (after the Nth mutating
call of a release, then of a rollback of a finished release) it seeds a fresh
environment, kills the run in-process (every later call fails, the lock stays
held), then reruns the same command and, in another fresh environment, the
other one, and checks the expected AMI holds all traffic. A watcher thread
reads the slots every ``--poll`` seconds throughout and records every time a
slot held weight with fewer healthy targets than capacity.min, and for how
long. Last, an outside failure (the new slot's instances stopped during a
pause) measures how long weight stays on the failed slot. Prints the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.hooks import MUTATING, HookedAws  # noqa: E402
from tests.support.stacks import release_env  # noqa: E402
from toolkit.aws import Aws  # noqa: E402
from toolkit.local import seed, stack  # noqa: E402
from toolkit.local.environment import LocalEnvironment  # noqa: E402
from toolkit.release import rollout, slots  # noqa: E402
from toolkit.release.planner import need_healthy  # noqa: E402
from toolkit.ui import Silent  # noqa: E402

_names = itertools.count(1)


class Killed(Exception):
    pass


class Killable(HookedAws):
    """Clients whose process "dies" after the Nth mutating call: that call and every later one fail."""

    HOOKS = (("before-call", "_before"), ("after-call", "_after"))

    def __init__(self, base: Aws, kill_after: int | None):
        super().__init__(region=base.region, endpoint=base.endpoint)
        self.kill_after, self.count, self.dead = kill_after, 0, False

    def _before(self, model, **kwargs):
        if self.dead:
            raise Killed(model.name)

    def _after(self, model, **kwargs):
        if model.name.startswith(MUTATING):
            self.count += 1
            if self.count == self.kill_after:
                self.dead = True
                raise Killed(model.name)


class Watcher(threading.Thread):
    """Polls the slots; records each span of weight on a slot below the healthy minimum."""

    def __init__(self, env, aws, need, poll):
        super().__init__(daemon=True)
        self.env, self.aws, self.need, self.poll = env, aws, need, poll
        self.spans: list[float] = []
        self.open: dict[str, float] = {}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                state = slots.read(self.env, self.aws)
            except Exception:
                time.sleep(self.poll)
                continue
            now = time.monotonic()
            for s in (state.blue, state.green):
                bad = s.weight > 0 and s.healthy < self.need
                if bad and s.name not in self.open:
                    self.open[s.name] = now
                elif not bad and s.name in self.open:
                    self.spans.append(now - self.open.pop(s.name))
            time.sleep(self.poll)

    def finish(self) -> list[float]:
        self.stop.set()
        self.join()
        now = time.monotonic()
        return self.spans + [now - t for t in self.open.values()]


def environment(root: Path, st: stack.Stack, pause: int = 0):
    cfg = release_env(
        root,
        f"crash{next(_names)}",
        capacity={"min": 2, "max": 4, "desired": 2},
        steps=[10, 50, 100],
        pause_seconds=pause,
        health_timeout_seconds=5,
    )
    url = stack.up(st, cfg.region, seeders=(seed.seed_release(cfg),))
    aws = LocalEnvironment(region=cfg.region, endpoint=url)
    env = slots.resolve(cfg, aws)
    return cfg, aws, env


def new_ami(cfg, aws) -> str:
    ec2 = aws.client("ec2")
    ami = ec2.register_image(
        Name=f"{cfg.app}-app-{next(_names)}",
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
    )["ImageId"]
    tags = {"rodeo:app": cfg.app, "rodeo:image": "app", "rodeo:verified": "true"}
    ec2.create_tags(Resources=[ami], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return ami


def run_case(root, st, poll, killed: str, n: int, rerun: str) -> dict:
    cfg, aws, env = environment(root, st)
    watcher = Watcher(env, LocalEnvironment(region=cfg.region, endpoint=aws.endpoint), need_healthy(cfg.release), poll)
    base = slots.read(env, aws).blue.ami
    ami = new_ami(cfg, aws)
    watcher.start()
    if killed == "rollback":
        rollout.release(cfg, aws, ami=ami, reporter=Silent())
    victim = Killable(aws, n)
    try:
        (
            rollout.release(cfg, victim, ami=ami, reporter=Silent())
            if killed == "release"
            else rollout.rollback(cfg, victim, reporter=Silent())
        )
    except Killed:
        pass
    expected = ami if rerun == "release" else base
    error = None
    try:
        if rerun == "release":
            rollout.release(cfg, aws, ami=ami, break_lock=True, reporter=Silent())
        else:
            rollout.rollback(cfg, aws, break_lock=True, reporter=Silent())
    except Exception as exc:  # "nothing to roll back to" when the kill came before the release started
        error = str(exc)
    spans = watcher.finish()
    state = slots.read(env, aws)
    live, idle = state.active, state.other(state.active.name)
    converged = (
        live.weight == 100
        and live.ami == expected
        and idle.desired == 0
        and (error is None or "nothing to roll back to" in error)
    )
    return {
        "killed": killed,
        "n": n,
        "rerun": rerun,
        "reached": victim.dead,
        "converged": converged,
        "breaks": len(spans),
        "longest": max(spans, default=0.0),
        "error": error,
    }


def reaction(root, st, poll) -> dict:
    cfg, aws, env = environment(root, st, pause=5)
    cfg = dataclasses.replace(cfg, release=dataclasses.replace(cfg.release, steps=(50, 100)))
    outside = LocalEnvironment(region=cfg.region, endpoint=aws.endpoint)
    watcher = Watcher(env, outside, need_healthy(cfg.release), poll)
    marks: dict[str, float] = {}

    def on_weights(model, params, **kwargs):
        if model.name != "ModifyListener":
            return
        weights = sorted(t["Weight"] for t in params["DefaultActions"][0]["ForwardConfig"]["TargetGroups"])
        if weights == [50, 50] and "failed" not in marks:

            def fail():
                time.sleep(1.0)
                group = outside.client("autoscaling").describe_auto_scaling_groups(
                    AutoScalingGroupNames=[env.groups["green"]]
                )["AutoScalingGroups"][0]
                outside.client("ec2").stop_instances(InstanceIds=[i["InstanceId"] for i in group["Instances"]])
                marks["failed"] = time.monotonic()

            threading.Thread(target=fail, daemon=True).start()
        elif weights == [0, 100] and "failed" in marks:
            marks.setdefault("back", time.monotonic())

    aws.client("elbv2").meta.events.register("before-parameter-build", on_weights)
    watcher.start()
    try:
        rollout.release(cfg, aws, ami=new_ami(cfg, aws), reporter=Silent())
    except Exception:
        pass
    spans = watcher.finish()
    return {
        "reaction": marks.get("back", float("nan")) - marks.get("failed", float("nan")),
        "watched_longest": max(spans, default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poll", type=float, default=0.15)
    parser.add_argument("--release-calls", type=int, default=15)
    parser.add_argument("--rollback-calls", type=int, default=11)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        st = stack.Stack(state_dir=root / "state", cache_dir=root / "state")
        try:
            rows = [
                run_case(root, st, args.poll, killed, n, rerun)
                for killed, calls in (("release", args.release_calls), ("rollback", args.rollback_calls))
                for n in range(1, calls + 1)
                for rerun in ("release", "rollback")
            ]
            react = reaction(root, st, args.poll)
        finally:
            stack.down(st)
    points = {(r["killed"], r["n"]) for r in rows if r["reached"]}
    print(
        f"kill points tried: {len(points)} ({sum(1 for k, _ in points if k == 'release')} in a release, {sum(1 for k, _ in points if k == 'rollback')} in a rollback)"
    )
    print(f"reruns: {len(rows)}, converged to the expected version: {sum(r['converged'] for r in rows)}")
    for r in rows:
        if not r["converged"]:
            print(f"  NOT converged: {r['killed']} killed after call {r['n']}, rerun {r['rerun']}: {r['error']}")
    print(
        f"invariant breaks seen by the watcher (poll {args.poll}s) during kills and reruns: {sum(r['breaks'] for r in rows)}, "
        f"longest {max((r['longest'] for r in rows), default=0.0):.2f}s"
    )
    print(
        f"outside failure: weight left the failed slot {react['reaction']:.2f}s after it failed (watcher saw weight below capacity.min for {react['watched_longest']:.2f}s at most)"
    )
    print(f"wall time {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
