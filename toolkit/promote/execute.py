"""Carry out ``invoke promote``: gather, plan, share and copy the AMI, then release it in the target.

Under the target environment's release lock, from the first read to the
release's end: two promotions to one environment never copy twice, and the
release (``toolkit.release.rollout.release``, with that lock) is the normal
one: the target's newest config version, its release phase, canary steps,
gates and crash safety. Its ledger entry records ``promoted_from``. A rerun
after a crash converges: a copy made is found by its tag (and waited for when
pending), and the release resumes or finds nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from toolkit import lock
from toolkit.config import Config
from toolkit.errors import RodeoError
from toolkit.promote import facts, transfer
from toolkit.promote.plan import PromotePlan, check_envs, plan
from toolkit.release import rollout
from toolkit.release.history import origin_words
from toolkit.release.result import ReleaseResult
from toolkit.ui import Reporter


@dataclass(frozen=True)
class PromoteResult:
    """What ``invoke promote`` did; ``to_dict`` is its ``--json``."""

    outcome: str  # planned, or the release's: released, unchanged, rolled_back, stopped
    promotion: PromotePlan
    release: ReleaseResult | None = None
    copied: str | None = None  # the AMI this run's CopyImage made

    def to_dict(self) -> dict:
        return {
            "outcome": self.outcome,
            "promotion": self.promotion.to_dict(),
            "release": self.release.to_dict() if self.release else None,
            "copied": self.copied,
        }

    def lines(self) -> list[str]:
        """The promotion as a person reads it (a failed release's error says the rest)."""
        if self.outcome == "planned":
            return self.promotion.lines() + ["planned only: nothing was changed (run without --plan to promote)"]
        said = self.release.lines() if self.release else []
        if not said:
            return []
        o = self.promotion.origin
        return [f"promoted from {origin_words(o.to_dict())} to {self.promotion.target_env}: {said[0]}", *said[1:]]


def promote(
    source: Config,
    source_aws: Any,
    target: Config,
    target_aws: Any,
    plan_only: bool = False,
    break_lock: bool = False,
    reporter: Reporter | None = None,
    wait_delay: float = transfer.WAIT_DELAY,
) -> PromoteResult:
    """Release in ``target`` the AMI live in ``source``, with ``target``'s config.

    PromoteError for a refusal (see ``toolkit.promote.plan``), before
    anything changes. A release that fails its gates rolls back and raises
    ReleaseError carrying this result.
    """
    reporter = reporter or Reporter()
    check_envs(source.env, target.env)
    if plan_only:
        p = plan(facts.gather(source, source_aws, target, target_aws))
        planned = None
        if p.target_ami and not p.pending:  # the AMI is where the target can release it: its release plan too
            planned = rollout.release(target, target_aws, ami=p.target_ami, plan_only=True, reporter=reporter)
        return PromoteResult("planned", p, planned)
    held = lock.acquire(target, target_aws, f"promotion from {source.env}", break_lock, reporter)
    try:
        p = plan(facts.gather(source, source_aws, target, target_aws))
        for line in p.lines():
            reporter.detail(line)
        ami, copied = _transfer(source_aws, target_aws, p, reporter, wait_delay)
        try:
            released = rollout.release(
                target, target_aws, ami=ami, reporter=reporter, held=held, promoted_from=p.origin.to_dict()
            )
        except RodeoError as exc:
            if isinstance(exc.result, ReleaseResult):
                exc.result = PromoteResult(exc.result.outcome, p, exc.result, copied)
            raise
        return PromoteResult(released.outcome, p, released, copied)
    finally:
        rollout.free_lock(target_aws, held, reporter)


def _transfer(
    source_aws: Any, target_aws: Any, p: PromotePlan, reporter: Reporter, wait_delay: float
) -> tuple[str, str | None]:
    """Share and copy as the plan says, then wait until the AMI is available; (the AMI to release, the copy made)."""
    copied = None
    if p.action == "share_copy":
        with reporter.step(f"sharing {p.origin.ami} and its snapshots with account {p.share_with}"):
            transfer.share(source_aws, p)
    if p.action in ("copy", "share_copy"):
        with reporter.step(f"copying {p.origin.ami} ({p.origin.region}) to {p.target_region}") as line:
            copied = transfer.copy(target_aws, p)
            line["result"] = f"{copied}, pending"
    ami = copied or p.target_ami
    assert ami is not None
    if p.action != "use":
        with reporter.step(f"waiting until {ami} is available in {p.target_region}") as line:
            transfer.wait(target_aws, ami, wait_delay)
            line["result"] = "available"
    return ami, copied
