"""``invoke bake --image a,b`` and ``--all``: several images at once, each bake in a thread of its own.

The plan is ``toolkit.bake.schedule``'s: each image and the parents it
needs, once; an image starts when its parent's AMI is known; a failed image's
children are skipped while the others go on.

Threads, not processes: a bake's heavy work already runs in processes of its
own (Packer and its provisioners, the build host), so a bake's thread only
waits on them, on AWS and on the disk. Threads share one terminal (one live
row per image: ``toolkit.ui.Board``) and one set of AWS clients (made one at a
time: ``toolkit.aws.Aws.client``). Only the main thread sees Ctrl-C (and the
SIGTERM ``tasks.py`` turns into it); it stops every bake through one
``Cancel``: each running Packer gets SIGINT in its own process group, as a
single bake's does, and each thread unwinds its own bake (build host, key
pair, lock) before the run ends; no bake starts after it.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from toolkit import secrets
from toolkit.bake import schedule as sched
from toolkit.bake import source
from toolkit.bake.pipeline import BakeResult, Preview, bake_image, preview_image
from toolkit.cancel import Cancel
from toolkit.config import Config
from toolkit.errors import RodeoError
from toolkit.hosts import Hosts
from toolkit.ui import Board, Reporter


@dataclass(frozen=True)
class ImageOutcome:
    """How one image of the run ended: ``baked``, ``reused``, ``failed``, ``skipped`` or ``interrupted``."""

    image: str
    status: str
    result: BakeResult | None = None
    error: str = ""
    hint: str = ""
    kind: type = field(default=RodeoError, repr=False, compare=False)  # the failure's error class (its exit code)

    def to_dict(self) -> dict:
        return {
            "image": self.image,
            "status": self.status,
            "result": self.result.to_dict() if self.result else None,
            "error": self.error or None,
            "hint": self.hint or None,
        }

    def lines(self) -> list[str]:
        if self.result is not None:
            return self.result.lines()
        if self.status == "failed":
            return [f"✗ {self.image}: {self.error}"] + [
                f"    {line}" for line in f"hint: {self.hint}".splitlines() if self.hint
            ]
        return [f"- {self.image}: {self.status}" + (f" ({self.error})" if self.error else "")]


@dataclass(frozen=True)
class BakeRun:
    """What a bake of several images did, one outcome per image; ``to_dict`` is its ``--json``."""

    outcomes: tuple[ImageOutcome, ...]
    plan: sched.Schedule
    duration_s: float

    @property
    def unbaked(self) -> list[ImageOutcome]:
        """The images left without a current AMI (failed, skipped)."""
        return [o for o in self.outcomes if o.status not in sched.OK]

    def to_dict(self) -> dict:
        return {
            "images": [o.to_dict() for o in self.outcomes],
            "ok": not self.unbaked,
            "duration_s": self.duration_s,
            "waves": self.plan.waves(),
            "jobs": self.plan.cap,
        }

    def lines(self) -> list[str]:
        out: list[str] = []
        for outcome in self.outcomes:
            out += outcome.lines()
        counts = {}
        for outcome in self.outcomes:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        said = ", ".join(f"{n} {status}" for status, n in counts.items())
        cap = f"at most {self.plan.cap} at once" if self.plan.cap else "every ready image at once"
        return out + ["", f"{len(self.outcomes)} images in {self.duration_s:.1f}s ({cap}): {said}"]


@dataclass(frozen=True)
class RunPlan:
    """What ``invoke bake --plan`` says: each image's reuse or bake (and why), and the order; changes nothing."""

    plan: sched.Schedule
    previews: tuple[Preview, ...]

    def to_dict(self) -> dict:
        return dict(
            self.plan.to_dict(),
            images=[{"image": p.image, "action": p.action, "ami": p.ami, "why": p.why} for p in self.previews],
        )

    def lines(self) -> list[str]:
        waves = self.plan.waves()
        at_once = f"at most {self.plan.cap} at once" if self.plan.cap else "every ready image at once"
        order = "; then ".join(", ".join(wave) for wave in waves)
        return [p.line() for p in self.previews] + [
            f"order: {order} ({at_once}; an image starts when its parent's AMI is known)"
        ]


def parents(config: Config) -> dict[str, str | None]:
    """Every image of ``config`` (in rodeo.yml's order) -> its parent, or None."""
    return {name: image.parent for name, image in config.images.items()}


def plan_images(
    config: Config, aws: Any, hosts: Hosts, names: list[str], state_dir: Path, jobs: int = 0, force: bool = False
) -> RunPlan:
    """What ``bake_images`` would do for ``names``: per image reuse or bake, and why; changes nothing."""
    plan = sched.schedule(parents(config), names, sched.check_jobs(jobs))
    seen: dict[str, Preview] = {}
    for job in plan.jobs:
        if force and job.requested:
            seen[job.image] = Preview(job.image, "bake", None, ["--force"])
            continue
        app = source.resolve(config, config.image(job.image), state_dir / "sources")
        seen[job.image] = preview_image(
            config, aws, hosts, job.image, state_dir, seen.get(job.parent) if job.parent else None, app
        )
    return RunPlan(plan, tuple(seen.values()))


def bake_images(
    config: Config,
    aws: Any,
    hosts: Hosts,
    names: list[str],
    state_dir: Path,
    reporter: Reporter,
    jobs: int = 0,
    force: bool = False,
    environ: Mapping[str, str] = os.environ,
    wait: bool = True,
    break_lock: bool = False,
    keep_on_failure: bool = False,
) -> BakeRun:
    """Bake ``names`` and the parents they need, independent images at once (at most ``jobs``; 0: all that are ready).

    Each image is baked as ``pipeline.bake`` would (cache, lock, Packer,
    record); ``force`` applies to ``names``, not to parents they pull in.
    When an image fails its children are skipped and the others finish;
    then a RodeoError (of the first failure's kind) carries the ``BakeRun``.
    Ctrl-C stops every bake, and nothing of theirs is left.
    """
    plan = sched.schedule(parents(config), names, sched.check_jobs(jobs))
    values = secrets.collect(config.secrets, environ)
    # Every app source is resolved before anything bakes: a bad one fails the run at once.
    apps = {job.image: source.resolve(config, config.image(job.image), state_dir / "sources") for job in plan.jobs}
    hosts.check()
    started = time.monotonic()
    board = Board(reporter, [job.image for job in plan.jobs])
    runner = _Runner(plan, board, Cancel())

    def bake_one(job: sched.Job, parent: BakeResult | None, lane: Reporter, cancel: Cancel) -> BakeResult:
        return bake_image(
            config,
            aws,
            hosts,
            job.image,
            state_dir,
            lane,
            parent,
            values,
            apps[job.image],
            force=force and job.requested,
            wait=wait,
            break_lock=break_lock,
            keep_on_failure=keep_on_failure,
            cancel=cancel,
        )

    with board:
        ended = runner.run(bake_one)
    run = BakeRun(tuple(ended[job.image] for job in plan.jobs), plan, round(time.monotonic() - started, 2))
    if runner.unexpected:
        raise runner.unexpected[0]  # a bug, not a bake's failure: its traceback (tasks.py shows it with --debug)
    if run.unbaked:
        failed = [o for o in run.unbaked if o.status == "failed"]
        listed = ", ".join(f"{o.image} ({o.status})" for o in run.unbaked)
        raise failed[0].kind(
            f"{len(run.unbaked)} of {len(run.outcomes)} images did not bake: {listed}",
            "fix what each failed image's line says, then run the same command again (what baked is reused)",
            result=run,
        )
    return run


class _Runner:
    """Starts each job in a thread when ``next_moves`` says so, collects how each ended, stops them all on Ctrl-C."""

    def __init__(self, plan: sched.Schedule, board: Board, cancel: Cancel) -> None:
        self.plan, self.board, self.cancel = plan, board, cancel
        self.ended: dict[str, ImageOutcome] = {}
        self.results: dict[str, BakeResult] = {}
        self.threads: dict[str, threading.Thread] = {}
        self.finished: queue.Queue[ImageOutcome] = queue.Queue()
        self.unexpected: list[BaseException] = []

    def run(self, bake_one) -> dict[str, ImageOutcome]:
        try:
            while True:
                moves = sched.next_moves(self.plan, {name: o.status for name, o in self.ended.items()}, self.threads)
                for image, why in moves.skip:
                    self._end(ImageOutcome(image, "skipped", error=why), None, f"skipped: {why}")
                for image in moves.start:
                    self._start(self.plan.job(image), bake_one)
                if len(self.ended) == len(self.plan.jobs):
                    return self.ended
                self._show_waiting()
                assert self.threads, "a schedule with jobs left always has one running"
                self._collect(self._next())
        except KeyboardInterrupt:
            self.cancel.set()
            self._drain()
            for job in self.plan.jobs:
                if job.image not in self.ended:
                    self._end(
                        ImageOutcome(job.image, "interrupted", error="not started"), None, "not started: interrupted"
                    )
            raise

    def _drain(self) -> None:
        """After Ctrl-C: wait until every started bake has cleaned up and ended."""
        while self.threads:
            try:
                self._collect(self.finished.get(timeout=0.5))
            except queue.Empty:
                # A thread queues its outcome before it ends: one that is not alive, with nothing queued, never
                # started (Ctrl-C came while it was being started).
                dead = [image for image, thread in self.threads.items() if not thread.is_alive()]
                if dead and self.finished.empty():
                    for image in dead:
                        self.threads.pop(image)
            except KeyboardInterrupt:
                self.cancel.set()  # again: a stop cut short by this second Ctrl-C is finished; the bakes clean up

    def _start(self, job: sched.Job, bake_one) -> None:
        lane = self.board.lane(job.image)
        lane.show("planning")
        parent = self.results.get(job.parent) if job.parent else None
        thread = threading.Thread(target=self._work, args=(job, parent, lane, bake_one), name=f"bake {job.image}")
        self.threads[job.image] = thread
        thread.start()

    def _work(self, job: sched.Job, parent: BakeResult | None, lane: Any, bake_one) -> None:
        """A job's thread: the bake, and how it ended, whatever happens (never raises)."""
        try:
            result = bake_one(job, parent, lane, self.cancel)
            outcome = ImageOutcome(job.image, "reused" if result.cached else "baked", result)
        except RodeoError as exc:
            outcome = ImageOutcome(job.image, "failed", error=exc.message, hint=exc.hint, kind=type(exc))
        except KeyboardInterrupt:
            outcome = ImageOutcome(job.image, "interrupted")
        except Exception as exc:
            from toolkit.aws import explain

            known = explain(exc)
            if known is None:
                self.unexpected.append(exc)
                known = RodeoError(f"{type(exc).__name__}: {exc}", "run again with --debug for the traceback")
            outcome = ImageOutcome(job.image, "failed", error=known.message, hint=known.hint, kind=type(known))
        self.finished.put(outcome)

    def _next(self) -> ImageOutcome:
        while True:  # with a timeout: the main thread stays responsive to Ctrl-C
            try:
                return self.finished.get(timeout=0.5)
            except queue.Empty:
                continue

    def _collect(self, outcome: ImageOutcome) -> None:
        self.threads.pop(outcome.image).join()
        if outcome.result is not None:
            self.results[outcome.image] = outcome.result
        self._end(outcome, *_last_line(outcome))

    def _end(self, outcome: ImageOutcome, ok: bool | None, summary: str) -> None:
        self.ended[outcome.image] = outcome
        self.board.lane(outcome.image).end(ok, summary)

    def _show_waiting(self) -> None:
        for job in self.plan.jobs:
            if job.image in self.ended or job.image in self.threads:
                continue
            waits_for_parent = job.parent is not None and job.parent not in self.ended
            self.board.lane(job.image).show(
                f"waiting for {job.parent}"
                if waits_for_parent
                else f"waiting for a free slot (--jobs {self.plan.cap})",
                running=False,
            )


def _last_line(outcome: ImageOutcome) -> tuple[bool | None, str]:
    """An image's last line on the board: ok or not, and what it says."""
    result = outcome.result
    if result is not None:
        amis = ", ".join(result.ami.values())
        return True, "" if result.cached else f"baked {amis} in {result.duration_s:.1f}s"  # a reuse has said so already
    if outcome.status == "interrupted":
        return False, "interrupted"
    first, _, more = (outcome.error or "").partition(
        "\n"
    )  # the lines after the first (an app's output) are in the summary
    return False, f"failed: {first}" + (" …" if more.strip() else "")
