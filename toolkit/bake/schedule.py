"""Which images a bake of several runs, and when: a pure plan, tested as a table.

``invoke bake --image a,b`` (or ``--all``) bakes each named image and every
parent it needs, each once even when two children share it. An image starts
as soon as its parent's AMI is known (reused, or baked in this run): images
that share nothing run at once, up to ``--jobs``. When an image fails, its
children are skipped and the rest go on, so as much is baked as can be.
``toolkit.bake.parallel`` carries the plan out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Mapping, Sequence

from toolkit.config import Config
from toolkit.errors import ConfigError

OK = ("baked", "reused")  # the ends of a job whose children may start


@dataclass(frozen=True)
class Job:
    """One image of the run."""

    image: str
    parent: str | None  # the job it waits for; None for an image from a source AMI
    requested: bool  # named on the command line (``--force`` applies to it), not only someone's parent
    wave: int  # 0 for an image without a parent, else its parent's wave + 1

    def to_dict(self) -> dict:
        return {"image": self.image, "parent": self.parent, "requested": self.requested, "wave": self.wave}


@dataclass(frozen=True)
class Schedule:
    """The run's jobs, parents before children (wave by wave, then in rodeo.yml's order)."""

    jobs: tuple[Job, ...]
    cap: int = 0  # at most this many bakes at once; 0: every image that is ready

    def job(self, image: str) -> Job:
        return next(job for job in self.jobs if job.image == image)

    def waves(self) -> list[list[str]]:
        """The images by wave: a wave's images share no parent-child link, so they can run at once."""
        out: list[list[str]] = []
        for job in self.jobs:
            while len(out) <= job.wave:
                out.append([])
            out[job.wave].append(job.image)
        return out

    def to_dict(self) -> dict:
        return {"jobs": [job.to_dict() for job in self.jobs], "waves": self.waves(), "cap": self.cap}


def which_images(
    config: Config, images: str, everything: bool, ref: str = "", has_vars: bool = False, jobs: int = 0
) -> list[str]:
    """The images ``--image a,b`` (default: app) or ``--all`` names, each checked; ConfigError for a bad list or ``--jobs``.

    ``--ref`` and ``--var`` are for one image: refused with several.
    """
    check_jobs(jobs)
    names = requested(images if images or everything else "app", everything, list(config.images))
    for name in names:
        config.image(name)
    if len(names) > 1:
        for flag, given, what in (("--ref", ref, "REF"), ("--var", has_vars, "KEY=VALUE")):
            if given:
                raise ConfigError(
                    f"{flag} is for one image, and this bake names {len(names)} ({', '.join(names)})",
                    f"bake the image it is for on its own: invoke bake --image NAME {flag} {what}",
                )
    return names


def requested(images: str, everything: bool, names: Sequence[str]) -> list[str]:
    """The images ``--image a,b`` or ``--all`` (every image of rodeo.yml, in its order) names, each once.

    The caller checks each name against the config (its error lists the valid ones).
    """
    if everything:
        if images:
            raise ConfigError(
                f"--all and --image {images} both say which images to bake", "give one of them: --all bakes every image"
            )
        return list(names)
    wanted = [name.strip() for name in images.split(",")]
    if not all(wanted):
        raise ConfigError(
            f"--image {images!r} names an empty image",
            f"separate image names with commas, e.g. --image {','.join(names[:2])}",
        )
    return list(dict.fromkeys(wanted))


def check_jobs(jobs: int) -> int:
    """``--jobs N``: 0 (no cap) or more; ConfigError otherwise."""
    if jobs < 0:
        raise ConfigError(
            f"--jobs {jobs} is not a number of bakes",
            "give 1 or more (at most that many at once), or 0 for every image that is ready",
        )
    return jobs


def schedule(parents: Mapping[str, str | None], wanted: Sequence[str], cap: int = 0) -> Schedule:
    """The jobs that bake ``wanted``: each image and its parents, each once.

    ``parents`` maps every image of rodeo.yml (in its order) to its parent, or None.
    """
    needed: dict[str, bool] = {}
    for name in wanted:
        needed[name] = True
        parent = parents[name]
        while parent is not None and parent not in needed:
            needed[parent] = False
            parent = parents[parent]

    def wave(name: str) -> int:
        parent = parents[name]
        return 0 if parent is None else wave(parent) + 1

    order = {name: i for i, name in enumerate(parents)}
    jobs = [Job(name, parents[name], needed[name], wave(name)) for name in needed]
    return Schedule(tuple(sorted(jobs, key=lambda job: (job.wave, order[job.image]))), cap)


@dataclass(frozen=True)
class Moves:
    """What to do now: jobs to start, and jobs to skip with the reason."""

    start: tuple[str, ...] = ()
    skip: tuple[tuple[str, str], ...] = ()


def next_moves(plan: Schedule, ended: Mapping[str, str], running: Collection[str]) -> Moves:
    """The jobs that start now (their parent is done well, a slot is free) and the ones that never will.

    ``ended`` maps each finished job to how it ended (``baked``, ``reused``,
    ``failed``, ``skipped``, ``interrupted``); ``running`` are the jobs under way.
    """
    free = plan.cap - len(running) if plan.cap else len(plan.jobs)
    ends = dict(ended)
    start: list[str] = []
    skip: list[tuple[str, str]] = []
    for job in plan.jobs:
        if job.image in ends or job.image in running:
            continue
        parent_end = ends.get(job.parent) if job.parent else "reused"
        if parent_end is None:
            continue  # its parent has not ended yet
        if parent_end not in OK:
            why = f"its parent {job.parent} {'was skipped' if parent_end == 'skipped' else parent_end}"
            skip.append((job.image, why))
            ends[job.image] = "skipped"  # and so are its own children, in this same pass (parents come first)
        elif len(start) < free:
            start.append(job.image)
    return Moves(tuple(start), tuple(skip))
