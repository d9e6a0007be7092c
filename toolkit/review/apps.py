"""``invoke review.up``, ``review.down``, ``review.list`` and ``review.prune``, and their typed results.

``up`` takes the review app's lock (one ``up`` or ``down`` of a name at a
time, shared by CI and laptops), bakes or reuses the release image at the ref
(``toolkit.bake.pipeline.bake``: unchanged inputs reuse their AMI), gathers
the facts, plans and carries the plan out. ``--plan`` previews the bake
(``preview``) and plans from the AMI it would reuse: nothing is baked,
written or started. ``down`` does the same with ``plan_down``. Every one of
them is safe to rerun after a kill: the plan is made from AWS as it is.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from toolkit import lock
from toolkit.bake.pipeline import bake, preview
from toolkit.config import Config
from toolkit.configvars import store
from toolkit.configvars.versions import references
from toolkit.errors import ReviewError
from toolkit.hosts import Hosts
from toolkit.release import slots
from toolkit.release.ledger import now
from toolkit.review import record
from toolkit.review import steps as run_steps
from toolkit.review.facts import Facts, existing, gather
from toolkit.review.names import Names, check_name, name_for, names_of, review_of
from toolkit.review.plan import Want, idle, plan_down, plan_up
from toolkit.ui import Reporter


@dataclass(frozen=True)
class Where:
    """Where a review app answers: its URL, and a curl command that reaches it when its name does not resolve."""

    url: str | None
    curl: str | None


@dataclass(frozen=True)
class UpResult:
    """What ``review.up`` did; ``to_dict`` is its ``--json``."""

    name: str
    outcome: str  # created, updated, unchanged, planned
    host: str
    url: str | None = None
    curl: str | None = None
    ref: str = ""
    commit: str = ""
    app_version: str = ""
    ami: str | None = None
    reused: bool = True  # the AMI was reused (an unchanged bake), not baked now
    steps: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        if self.outcome == "planned":
            return [f"review app {self.name} plan (nothing was changed):"] + [f"  {s}" for s in self.steps]
        app = f" (app {self.app_version})" if self.app_version else ""
        done = {"created": "created", "updated": "updated", "unchanged": "already runs it"}[self.outcome]
        out = [f"review app {self.name} {done}: {self.ami}{app} in {self.seconds:.0f}s"]
        out.append(f"  answers at {self.url}" if self.url else f"  host {self.host} (no listener URL found)")
        if self.curl:
            out.append(f"  where that name does not resolve: {self.curl}")
        return out + [f"  remove it with: invoke review.down {self.name}"]


@dataclass(frozen=True)
class DownResult:
    """What ``review.down`` did (or would do)."""

    name: str
    outcome: str  # removed, absent, planned
    steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        if self.outcome == "absent":
            return [f"no review app {self.name}: nothing to remove"]
        if self.outcome == "removed":
            return [f"review app {self.name} removed ({len(self.steps)} step(s))"]
        return [f"review app {self.name} plan (nothing was changed):"] + [f"  {s}" for s in self.steps]


@dataclass(frozen=True)
class App:
    """One review app as ``review.list`` shows it."""

    name: str
    ref: str
    ami: str
    url: str | None
    created: str
    deployed: str
    state: str  # up, or incomplete (a killed up or down left part of it)

    def row(self) -> tuple[str, ...]:
        return (
            self.name,
            self.ref or "-",
            self.ami or "-",
            self.url or "-",
            _day(self.created),
            _day(self.deployed),
            self.state,
        )


@dataclass(frozen=True)
class ReviewList:
    """``review.list``."""

    env: str
    apps: tuple[App, ...]

    def to_dict(self) -> dict:
        return {"env": self.env, "apps": [asdict(a) for a in self.apps]}

    def lines(self) -> list[str]:
        if not self.apps:
            return [f"no review apps of {self.env}: 'invoke review.up --name NAME' (or --ref BRANCH) makes one"]
        rows = [("NAME", "REF", "AMI", "URL", "CREATED", "DEPLOYED", "STATE")] + [a.row() for a in self.apps]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]


@dataclass(frozen=True)
class PruneResult:
    """``review.prune``: the review apps idle longer than ``idle_days`` that went (or would go)."""

    idle_days: int
    planned: bool
    removed: list[DownResult] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "idle_days": self.idle_days,
            "planned": self.planned,
            "removed": [r.to_dict() for r in self.removed],
            "kept": self.kept,
        }

    def lines(self) -> list[str]:
        verb = "would remove" if self.planned else "removed"
        if not self.removed:
            return [f"no review app idle for more than {self.idle_days} day(s) ({len(self.kept)} kept)"]
        out = [f"{verb} {len(self.removed)} review app(s) idle for more than {self.idle_days} day(s):"]
        out += [f"  {r.name}" for r in self.removed]
        return out + ([f"kept: {', '.join(self.kept)}"] if self.kept else [])


def up(
    config: Config,
    aws: Any,
    hosts: Hosts,
    state_dir: Path,
    name: str | None = None,
    ref: str | None = None,
    overrides: dict[str, str] | None = None,
    plan_only: bool = False,
    break_lock: bool = False,
    reporter: Reporter | None = None,
) -> UpResult:
    """Bake (or reuse) the release image at ``ref`` and run it as review app ``name`` (default: named after ``ref``)."""
    reporter = reporter or Reporter()
    names = names_for(config, name, ref)
    rel = slots.release_of(config)
    listener = slots.resolve(config, aws).listener_arn
    overrides = overrides or {}
    if plan_only:
        return _plan_up(config, aws, hosts, state_dir, names, listener, ref, overrides)
    started = time.monotonic()
    with _locked(config, aws, names, "review.up", break_lock, reporter):
        _same_ref(record.get(config, aws, names.name), names, name, ref)
        baked = bake(config, aws, hosts, rel.image, state_dir, reporter, ref=ref)
        ami = baked.ami[config.region]
        facts = gather(config, aws, names, listener)
        want = _want(config, aws, ami, overrides)
        planned = plan_up(facts, want)
        deployed = _record(facts, ref, baked.app, ami, want.parent_config)
        state = run_steps.Run(config, aws, facts, want, rel.health_timeout_seconds, deployed=deployed)
        run_steps.run(planned.steps, state, reporter.step)
    where = where_of(aws, config, names)
    return UpResult(
        names.name,
        planned.outcome,
        names.host,
        where.url,
        where.curl,
        deployed.ref,
        deployed.commit,
        deployed.app_version,
        ami,
        baked.cached,
        planned.lines(),
        round(time.monotonic() - started, 1),
    )


def _plan_up(
    config: Config,
    aws: Any,
    hosts: Hosts,
    state_dir: Path,
    names: Names,
    listener: str,
    ref: str | None,
    overrides: dict[str, str],
) -> UpResult:
    """What ``up`` would do: the bake's preview, then the plan from the AMI it would reuse (none: the one it makes)."""
    previews = preview(config, aws, hosts, slots.release_of(config).image, state_dir, ref)
    ready = previews[-1].ami if previews[-1].action == "reuse" else None
    planned = plan_up(gather(config, aws, names, listener), _want(config, aws, ready, overrides))
    lines = [p.line() for p in previews] + planned.lines()
    return UpResult(names.name, "planned", names.host, ami=ready, steps=lines, ref=ref or "")


@contextlib.contextmanager
def _locked(
    config: Config, aws: Any, names: Names, purpose: str, break_lock: bool, reporter: Reporter
) -> Iterator[None]:
    """Review app ``names``'s lock held while the block runs: one ``up`` or ``down`` of a name at a time."""
    what = f"review app {names.name}"
    held = lock.acquire(config, aws, f"{purpose} {names.name}", break_lock, reporter, lock_key=names.lock, what=what)
    try:
        yield
    finally:
        if not lock.free(aws, held):
            reporter.warn(f"the lock of {what} was broken by someone else during this run")


def names_for(config: Config, name: str | None, ref: str | None) -> Names:
    """The review app ``up`` makes: ``name``, else ``ref``'s; a ReviewError when neither is given."""
    if name:
        return names_of(config, check_name(name))
    if ref:
        return names_of(config, name_for(ref))
    raise ReviewError(
        "a review app needs a name: give --name NAME or --ref BRANCH (its name is the branch's)",
        "like: invoke review.up --ref feature/login (CI: --name pr-<number> --ref <commit>)",
    )


def _same_ref(found: record.Record | None, names: Names, name: str | None, ref: str | None) -> None:
    """A name made from a ref that already names another ref's review app is refused: two branches, one name."""
    if name or found is None or not ref or not found.ref or found.ref == ref:
        return
    raise ReviewError(
        f"review app {names.name} runs ref {found.ref!r}; ref {ref!r} gives the same name",
        f"give this one a name of its own: --name {names.name}-2 (or update that one: --name {names.name})",
    )


def _want(config: Config, aws: Any, ami: str | None, overrides: dict[str, str]) -> Want:
    """What the review app should run: ``ami``, the parent's newest config version and ``overrides``."""
    parent = store.newest(config, aws)
    store.require(config, aws, parent)  # every parameter version it names still exists
    review = review_of(config)
    return Want(
        ami=ami,
        instance_type=review.instance_type or slots.release_of(config).instance_type,
        parent_config=parent.number,
        parent_refs=tuple(references(parent, config.app, config.env)),
        overrides=dict(overrides),
    )


def _record(facts: Facts, ref: str | None, app: dict, ami: str, parent_config: int) -> record.Record:
    """The record the review app's ``up`` writes last."""
    when = now()
    old = facts.record
    return record.Record(
        name=facts.names.name,
        ref=ref or "",
        commit=app.get("commit", "") or "",
        app_version=app.get("version", "") or "",
        ami=ami,
        host=facts.names.host,
        parent_config=parent_config,
        created_at=old.created_at if old and old.created_at else when,
        deployed_at=when,
        by=lock.whoami(),
    )


def where_of(aws: Any, config: Config, names: Names) -> Where:
    """The review app's URL on the parent's listener (its port, its scheme), and the curl command that needs no DNS."""
    rel = slots.release_of(config)
    base = aws.listener_url(rel.load_balancer, rel.listener_port)
    if not base:
        return Where(None, None)
    parts = urlsplit(base)
    url = f"{parts.scheme}://{names.host}" + (f":{parts.port}" if parts.port else "") + "/"
    if parts.scheme == "http":
        return Where(url, f"curl -H 'Host: {names.host}' {base}/")
    port = parts.port or 443
    return Where(url, f"curl --connect-to {names.host}:{port}:{parts.hostname}:{port} {url}")


def down(
    config: Config,
    aws: Any,
    name: str,
    plan_only: bool = False,
    break_lock: bool = False,
    reporter: Reporter | None = None,
) -> DownResult:
    """Remove review app ``name``: its rule, group and instances, target group, launch template, overrides, record."""
    reporter = reporter or Reporter()
    names = names_of(config, check_name(name))
    rel = slots.release_of(config)
    listener = slots.resolve(config, aws).listener_arn
    if plan_only:
        planned = plan_down(gather(config, aws, names, listener))
        return DownResult(names.name, "planned" if planned.steps else "absent", planned.lines())
    with _locked(config, aws, names, "review.down", break_lock, reporter):
        facts = gather(config, aws, names, listener)
        planned = plan_down(facts)
        run_steps.run(
            planned.steps, run_steps.Run(config, aws, facts, timeout=rel.health_timeout_seconds), reporter.step
        )
    return DownResult(names.name, planned.outcome, planned.lines())


def list_apps(config: Config, aws: Any) -> ReviewList:
    """Every review app of the environment, with its ref, AMI, URL, when made and last deployed."""
    domain = review_of(config).domain
    listener = slots.resolve(config, aws).listener_arn
    apps = []
    for found in existing(config, aws, listener, domain):
        names = Names(config.app, config.env, found.name, domain)
        rec = found.record or record.Record(found.name)
        state = "up" if found.record and found.has_group and found.has_rule else "incomplete"
        apps.append(
            App(
                found.name,
                rec.ref,
                rec.ami,
                where_of(aws, config, names).url,
                rec.created_at or found.group_created,
                rec.deployed_at,
                state,
            )
        )
    return ReviewList(config.env, tuple(apps))


def prune(
    config: Config,
    aws: Any,
    idle_days: int,
    plan_only: bool = False,
    break_lock: bool = False,
    reporter: Reporter | None = None,
    clock: Any = None,
) -> PruneResult:
    """Remove the review apps not deployed for more than ``idle_days`` days (and any a killed run left without a date)."""
    if idle_days < 0:
        raise ReviewError(f"--idle-days {idle_days}: must not be negative", "give a number of days, like 7")
    domain = review_of(config).domain
    listener = slots.resolve(config, aws).listener_arn
    found = existing(config, aws, listener, domain)
    when = (clock or (lambda: datetime.now(timezone.utc)))()
    going = idle(found, when, idle_days)
    kept = [f.name for f in found if f not in going]
    removed = [down(config, aws, f.name, plan_only=plan_only, break_lock=break_lock, reporter=reporter) for f in going]
    return PruneResult(idle_days, plan_only, removed, kept)


def _day(when: str) -> str:
    return when.replace("T", " ")[:16] if when else "-"
