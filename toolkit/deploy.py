"""``invoke deploy``: the push button. Bake (or reuse) the release's image, then release that AMI.

Two halves, each the command a user could run alone: ``toolkit.bake.pipeline.bake``
and ``toolkit.release.waves.release`` (``rollout.release`` in each region). A failure says which half failed
and what still serves: a failed bake releases nothing, and a failed release
has rolled back to the version that served before.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolkit.bake.pipeline import BakeResult, Preview, bake, preview
from toolkit.config import Config
from toolkit.errors import RodeoError
from toolkit.hosts import Hosts
from toolkit.release import slots, waves
from toolkit.release.result import ReleaseResult
from toolkit.release.waves import WavesResult
from toolkit.ui import Reporter


@dataclass(frozen=True)
class DeployResult:
    """What ``invoke deploy`` did; ``to_dict`` is its ``--json``."""

    image: str
    outcome: str  # deployed, unchanged, planned, bake_failed, release_failed
    bake: BakeResult | None = None
    release: ReleaseResult | WavesResult | None = None
    url: str | None = None
    serving: str | None = None  # the AMI that serves after a failure
    plan: list[Preview] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain data: the bake's and the release's own records inside."""
        return {
            "image": self.image,
            "outcome": self.outcome,
            "url": self.url,
            "serving": self.serving,
            "bake": self.bake.to_dict() if self.bake else None,
            "release": self.release.to_dict() if self.release else None,
            "plan": [dataclasses.asdict(p) for p in self.plan],
        }

    def lines(self) -> list[str]:
        """The deploy as a person reads it."""
        if self.outcome == "planned":
            out = ["deploy plan (nothing was changed):"] + [f"  {p.line()}" for p in self.plan]
            if isinstance(self.release, WavesResult):
                out.append(f"  then release it in {len(self.release.waves)} regions, one after another")
            elif self.release and self.release.plan:
                out.append(f"  then release it: steps {self.release.steps} into the idle slot")
            elif self.release is None:
                out.append(
                    "  then release the AMI the bake makes (run 'invoke release --plan' after the bake for its steps)"
                )
            return out
        out = []
        if self.bake:
            app = f" (app {self.bake.app['version']})" if self.bake.app else ""
            how = (
                "reused"
                if self.bake.cached
                else f"baked in {self.bake.duration_s:.0f}s"
                + (f" because {'; '.join(self.bake.why)}" if self.bake.why else "")
            )
            out.append(f"{self.image}: {next(iter(self.bake.ami.values()), '?')}{app} {how}")
        if self.release:
            out += self.release.lines()  # none for a rolled-back release: the error says what happened
        if self.outcome in ("deployed", "unchanged"):
            out.append(f"serving at {self.url}" if self.url else "serving (no load balancer URL found)")
        return out


def deploy(
    config: Config,
    aws: Any,
    hosts: Hosts,
    state_dir: Path,
    image: str | None = None,
    ref: str | None = None,
    plan_only: bool = False,
    reporter: Reporter | None = None,
) -> DeployResult:
    """Bake ``image`` (default: the release's image) at ``ref``, or reuse its AMI, then release it.

    A RodeoError names the half that failed (its result attached): after a
    failed bake nothing was released; after a failed release the previous
    version serves again.
    """
    rel = slots.release_of(config)
    name = config.image(image or rel.image).name
    reporter = reporter or Reporter()
    if plan_only:
        steps = preview(config, aws, hosts, name, state_dir, ref)
        ready = steps[-1].ami if steps[-1].action == "reuse" else None
        planned = waves.release(config, aws, ami=ready, plan_only=True, reporter=reporter) if ready else None
        return DeployResult(name, "planned", release=planned, plan=steps)
    serving = _serving(config, aws)
    try:
        baked = bake(config, aws, hosts, name, state_dir, reporter, ref=ref)
    except RodeoError as exc:
        result = DeployResult(name, "bake_failed", serving=serving)
        raise type(exc)(
            f"deploy of {name} stopped at its bake, so nothing was released ({_serves(serving)}): {exc.message}",
            exc.hint,
            result=result,
        ) from None
    ami = baked.ami[config.region]
    try:
        released = waves.release(config, aws, ami=ami, reporter=reporter)
    except RodeoError as exc:
        still = _serving(config, aws) or serving
        result = DeployResult(name, "release_failed", bake=baked, release=exc.result, serving=still)
        if (
            getattr(exc.result, "outcome", None) == "rolled_back"
        ):  # its message says what was tried, why it failed and what serves
            raise type(exc)(f"deploy of {name}: {exc.message}", exc.hint, result=result) from None
        raise type(exc)(
            f"deploy of {name} baked {ami} but did not release it ({_serves(still)}): {exc.message}",
            exc.hint,
            result=result,
        ) from None
    url = aws.listener_url(rel.load_balancer, rel.listener_port)
    return DeployResult(
        name, "unchanged" if released.outcome == "unchanged" else "deployed", bake=baked, release=released, url=url
    )


def _serves(ami: str | None) -> str:
    return f"{ami} serves, as before" if ami else "nothing was serving"


def _serving(config: Config, aws: Any) -> str | None:
    """The AMI of the slot that holds the traffic now, or None (nothing released yet, or unreadable)."""
    try:
        state = slots.read(slots.resolve(config, aws), aws)
    except RodeoError:
        return None
    return state.active.ami
