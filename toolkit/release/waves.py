"""A release in waves (``release.regions``): one region after another, each behind its own gates.

Each region runs the ordinary release (``toolkit.release.rollout``) on its
own load balancer, slots, lock and ledger, with the config as that region
sees it (``toolkit.regions.in_region``) and the AMI's copy there: the AMI
with the same ``rodeo:inputs-hash`` and ``rodeo:built-at`` (a bake's
``copy_to_regions`` copies it, tags and verification included). Every copy,
and every region's load balancer, slots and alarms, are found before the
first wave moves any traffic. With ``release.one_box``, the
first region's first step is the one-box wave: one instance of the new AMI
takes that step's share, and the rest of its slot starts only after its watch.

The first region's release lock (in ``region:``, where the config vars live)
is held from the first wave to the last, so two releases in waves never
interleave. A wave that fails its gates is rolled back by its release, and
the waves stop there: the regions released before it keep the new AMI, the
ones after it were not touched. The result says which region runs what.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from toolkit import lock
from toolkit.config import Config
from toolkit.errors import ConfigError, ImageError, ReleaseError, RodeoError
from toolkit.lineage import find_ami, find_by_inputs, require_owner
from toolkit.regions import each, one
from toolkit.release import ledger, rollout, slots
from toolkit.release.planner import last_release
from toolkit.release.result import ReleaseResult, named
from toolkit.ui import Reporter


@dataclass(frozen=True)
class Wave:
    """One region's part of a release in waves: what its release did and what serves there now."""

    region: str
    outcome: str  # released, unchanged, planned, rolled_back, stopped, failed (before it moved traffic), not_started
    ami: str | None  # the AMI (this region's copy) it released or would release
    serving: str | None = None  # the AMI holding this region's traffic when the waves ended
    serving_config: int | None = None
    number: int | None = None  # its release number in this region's ledger
    reason: str | None = None
    release: ReleaseResult | None = None

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["release"] = self.release.to_dict() if self.release else None
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True)
class WavesResult:
    """What ``invoke release`` did in each region of ``release.regions``; ``to_dict`` is its ``--json``."""

    outcome: (
        str  # released (every region serves it), restored (a rollback), unchanged, planned, rolled_back (a wave failed)
    )
    ami: str | None  # the AMI in region:, as given or chosen
    waves: list[Wave] = field(default_factory=list)
    seconds: float | None = None
    reason: str | None = None
    kind: str = "release"  # or rollback

    def to_dict(self) -> dict:
        out = {k: v for k, v in dataclasses.asdict(self).items() if v is not None and k != "waves"}
        return dict(out, waves=[w.to_dict() for w in self.waves])

    def lines(self) -> list[str]:
        """One line for the run, then one per region: how its wave ended and what serves there."""
        took = f" in {self.seconds:.0f}s" if self.seconds is not None else ""
        reached = [w for w in self.waves if w.outcome != "untouched"]
        head = {
            "released": f"released {self.ami} in {len(self.waves)} region(s){took}",
            "restored": f"rolled back in {len(reached)} region(s){took}, the last first",
            "unchanged": f"nothing to release: {self.ami} already serves in every region",
            "planned": "planned only: nothing was changed (run without --plan to release)",
        }.get(self.outcome, f"the waves stopped{took}: {self.reason}")
        out = [head]
        for wave in self.waves:
            number = f"v{wave.number}" if wave.number else "-"
            serves = f"serves {named(wave.serving, None, wave.serving_config)}" if wave.serving else ""
            why = f"  ({wave.reason})" if wave.reason and wave.outcome != "released" else ""
            out.append(f"  {wave.region:15} {number:>5} {WORDS.get(wave.outcome, wave.outcome):13} {serves}{why}")
        return out


WORDS = {
    "rolled_back": "rolled back",
    "not_started": "not started",
    "restored": "rolled back",
    "untouched": "left as is",
}


def release(
    config: Config,
    aws: Any,
    ami: str | None = None,
    image: str | None = None,
    allow_unverified: bool = False,
    break_lock: bool = False,
    plan_only: bool = False,
    reporter: Reporter | None = None,
    config_only: bool = False,
    held: lock.Lock | None = None,
) -> ReleaseResult | WavesResult:
    """Release in every region of ``release.regions``, one after another; without it, ``rollout.release`` as is.

    Returns the ``WavesResult``; a failed wave raises ReleaseError carrying
    it, after its own rollback. ``held`` is the first region's release lock
    when the caller took it (``invoke config.set``).
    """
    rel = slots.release_of(config)
    if not rel.regions:
        return rollout.release(
            config,
            aws,
            ami=ami,
            image=image,
            allow_unverified=allow_unverified,
            break_lock=break_lock,
            plan_only=plan_only,
            reporter=reporter,
            config_only=config_only,
            held=held,
        )
    reporter = reporter or Reporter()
    started = time.monotonic()
    regional = each(config, aws)
    home = next(i for i, (cfg, _) in enumerate(regional) if cfg.region == config.region)
    amis: dict[str, str | None] = {cfg.region: None for cfg, _ in regional}
    if not config_only:
        found = rollout.choose(config, aws, ami, image, allow_unverified)
        require_owner(found, config.app, image or rel.image)
        amis = {cfg.region: copy_in(config, env, found, image or rel.image) for cfg, env in regional}
    for cfg, env in regional:  # every region's load balancer, slots and alarms, before the first wave moves traffic
        try:
            rollout.preflight(cfg, env)
        except RodeoError as exc:
            raise type(exc)(f"{cfg.region}: {exc.message}", exc.hint + " (no region was released)") from None
    own = held is None and not plan_only
    if own:
        held = lock.acquire(
            config, aws, f"release in waves of {amis[config.region] or 'the live AMI'}", break_lock, reporter
        )
    done: list[Wave] = []
    try:
        for i, (cfg, env) in enumerate(regional):
            reporter.info(
                f"wave {i + 1}/{len(regional)}: {cfg.region}" + (" (one box first)" if cfg.release.one_box else "")
            )
            try:
                if held is not None and i != home:  # another region checks only its own lock: check region:'s too
                    lock.check(aws, held, f"wave {i + 1} in {cfg.region}")
                result = rollout.release(
                    cfg,
                    env,
                    ami=amis[cfg.region],
                    allow_unverified=allow_unverified,
                    break_lock=break_lock,
                    plan_only=plan_only,
                    reporter=reporter,
                    config_only=config_only,
                    held=held if i == home else None,
                )
            except RodeoError as exc:
                failed = _failed(cfg, exc, amis[cfg.region])
                rest = [Wave(c.region, "not_started", amis[c.region]) for c, _ in regional[i + 1 :]]
                stopped = WavesResult(
                    "rolled_back",
                    amis[config.region],
                    _serving([*done, failed, *rest], regional),
                    round(time.monotonic() - started, 2),
                    f"{cfg.region}: {exc.message}",
                )
                released = [w.region for w in done if w.outcome in ("released", "unchanged")]
                raise ReleaseError(
                    f"the release in waves stopped in {cfg.region} (wave {i + 1}/{len(regional)}): {exc.message}",
                    (
                        f"{', '.join(released)} serve{'s' if len(released) == 1 else ''} the new AMI; "
                        if released
                        else "no region serves the new AMI; "
                    )
                    + f"the regions after {cfg.region} were not touched. {exc.hint}",
                    result=stopped,
                ) from exc
            done.append(Wave(cfg.region, result.outcome, result.ami, number=result.number, release=result))
    finally:
        if own and held is not None:
            rollout.free_lock(aws, held, reporter)
    outcomes = {w.outcome for w in done}
    overall = "planned" if plan_only else "unchanged" if outcomes == {"unchanged"} else "released"
    ended = done if plan_only else _serving(done, regional)
    return WavesResult(overall, done[home].ami, ended, round(time.monotonic() - started, 2))


def copy_in(config: Config, env: Any, found: dict, image: str) -> str:
    """``found``'s copy in ``env``'s region (itself in its own): the verified AMI baked from the same inputs at the same time.

    ImageError when there is none: the AMI was baked before the region was in
    ``copy_to_regions``, or not by Rodeo.
    """
    if env.region == config.region:
        return found["ImageId"]
    tags = found.get("tags", {})
    inputs, built = tags.get("rodeo:inputs-hash"), tags.get("rodeo:built-at")
    copy = None
    if inputs and built:
        copy = find_by_inputs(env, config.app, image, inputs, env.region)
        copy = copy if copy and copy["tags"].get("rodeo:built-at") == built else None
    if copy is None:
        raise ImageError(
            f"{found['ImageId']} has no verified copy in {env.region} (same rodeo:inputs-hash and rodeo:built-at)",
            f"bake it again with {env.region} in copy_to_regions ('invoke bake --force'): the bake copies it there",
        )
    return copy["ImageId"]


def _failed(cfg: Config, exc: RodeoError, ami: str | None) -> Wave:
    """The wave that raised ``exc``: rolled back (its release undid itself), stopped, or failed before moving traffic."""
    result = exc.result if isinstance(exc.result, ReleaseResult) else None
    outcome = result.outcome if result else "failed"
    return Wave(cfg.region, outcome, ami, number=result.number if result else None, reason=exc.message, release=result)


def _serving(ended: list[Wave], regional: list[tuple[Config, Any]]) -> list[Wave]:
    """``ended`` with what holds each region's traffic now (read from its load balancer and slots)."""
    out = []
    for wave, (cfg, env) in zip(ended, regional):
        try:
            active = slots.read(slots.resolve(cfg, env), env).active
            out.append(dataclasses.replace(wave, serving=active.ami, serving_config=active.config))
        except RodeoError:  # a region whose release side is missing: its wave's error says so
            out.append(wave)
    return out


def rollback(
    config: Config,
    aws: Any,
    to: int | None = None,
    region: str | None = None,
    break_lock: bool = False,
    plan_only: bool = False,
    reporter: Reporter | None = None,
) -> ReleaseResult | WavesResult:
    """``rollout.rollback`` in ``region`` (default ``region:``); with ``release.regions`` and no ``region``, in every
    region the last release in waves reached, the last wave first.

    Reached: the region's last release that moved traffic put the same build
    (its AMI's ``rodeo:inputs-hash`` and ``rodeo:built-at``) as ``region:``'s
    last one. Each region's rollback is its own (lock, ledger, gates); a
    region the waves never reached keeps what it runs.
    """
    if region or not slots.release_of(config).regions:
        here, env = one(config, aws, region)
        return rollout.rollback(here, env, to=to, break_lock=break_lock, plan_only=plan_only, reporter=reporter)
    regional = each(config, aws)
    if to is not None:
        raise ConfigError(
            "--to vN names a release of one region: each region numbers its own releases",
            "add --region REGION ('invoke releases --region REGION' lists that region's)",
        )
    reporter = reporter or Reporter()
    started = time.monotonic()
    home_cfg, home_env = next(p for p in regional if p[0].region == config.region)
    wanted = _last_build(home_cfg, home_env)
    if wanted is None:
        raise ReleaseError(
            f"nothing to roll back: no release that moved traffic is recorded in {config.region}",
            "release a known-good AMI with 'invoke release --ami ...'",
        )
    done: list[Wave] = []
    backwards = list(reversed(regional))
    for at, (cfg, env) in enumerate(backwards):
        if _last_build(cfg, env) != wanted:
            done.append(Wave(cfg.region, "untouched", None, reason="the last release in waves did not reach it"))
            continue
        reporter.info(f"rolling back {cfg.region}")
        try:
            result = rollout.rollback(cfg, env, break_lock=break_lock, plan_only=plan_only, reporter=reporter)
        except RodeoError as exc:
            left = [Wave(c.region, "not_started", None) for c, _ in backwards[at + 1 :]]
            ended = _serving(list(reversed([*done, _failed(cfg, exc, None), *left])), regional)
            raise ReleaseError(
                f"the rollback in waves stopped in {cfg.region}: {exc.message}",
                "the regions after it in the waves were rolled back, the ones before it were not: "
                f"fix what stopped it, then run the rollback again. {exc.hint}",
                result=WavesResult(
                    "rolled_back",
                    None,
                    ended,
                    round(time.monotonic() - started, 2),
                    f"{cfg.region}: {exc.message}",
                    kind="rollback",
                ),
            ) from exc
        done.append(Wave(cfg.region, result.outcome, result.ami, number=result.number, release=result))
    ordered = list(reversed(done))
    ended = ordered if plan_only else _serving(ordered, regional)
    return WavesResult(
        "planned" if plan_only else "restored", None, ended, round(time.monotonic() - started, 2), kind="rollback"
    )


def _last_build(config: Config, env: Any) -> tuple[str, str] | None:
    """(rodeo:inputs-hash, rodeo:built-at) of the AMI of the region's last release that moved traffic; None: none."""
    last = last_release(ledger.recent(config, env, 50))
    if last is None:
        return None
    found = find_ami(env, last["to_ami"]) or {"tags": {}}
    tags = found["tags"]
    return (tags.get("rodeo:inputs-hash", last["to_ami"]), tags.get("rodeo:built-at", ""))
