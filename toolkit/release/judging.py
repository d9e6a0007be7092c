"""Canary analysis at each weight step of a release (``release.analysis``): gather, judge, decide, record.

After a step's watch (``rollout._watch``) and while both slots hold weight,
``step`` reads both slots' data since the weights changed
(``toolkit.canary.sources``: the load balancer's access logs, named
CloudWatch metrics), judges the new slot against the old one
(``toolkit.canary.judge``, a pure function) and decides by the user's rules:
continue, wait (watching the gates as before) and judge again, or roll back.
Each judgement is recorded in the release's ledger entry (``analysis``: the
step, its window, the verdict, the decision and every figure), and a
rollback's reason carries the figures (``JudgeFailed``). The step at 100%
is not judged: the old slot has no traffic left to compare with.

Only releases are judged: a rollback moves back to a build that served
before, in one step, like ``toolkit.release.watch`` never refuses one.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable

from toolkit.canary import judge, sources
from toolkit.config import Config
from toolkit.release import ledger, slots
from toolkit.release.planner import Plan, Step
from toolkit.ui import Line

JUDGE_INTERVAL = 5.0  # seconds between two looks at the data while waiting for more


class JudgeFailed(Exception):
    """The canary analysis said roll back; the message is the reason, with its figures."""

    def __init__(self, reason: str, entry: dict, record: dict) -> None:
        super().__init__(reason)
        self.entry, self.record = entry, record  # the ledger entry holding the judgement; the judgement


def load_balancer_arn(listener_arn: str) -> str:
    """The load balancer of a listener ARN (``...:listener/app/<name>/<id>/<listener id>``)."""
    head, resource = listener_arn.split(":listener/", 1)
    return f"{head}:loadbalancer/{resource.rsplit('/', 1)[0]}"


def check(config: Config, aws: Any, env: slots.Env) -> None:
    """Before a release moves anything: the analysis can read its data (ReleaseError when the access logs are off)."""
    analysis = slots.release_of(config).analysis
    if analysis.enabled:
        sources.sources(aws, analysis, load_balancer_arn(env.listener_arn), env.groups)


def describe(config: Config, p: Plan) -> list[str]:
    """The plan's line about the analysis: which steps are judged, on what, and by which rules."""
    analysis = slots.release_of(config).analysis
    judged = [s.new_weight for s in p.steps if s.old_weight > 0]
    if not analysis.enabled or not judged or p.kind != "release":
        return []
    names = ", ".join(m if isinstance(m, str) else m.name for m in analysis.metrics)
    return [
        f"canary analysis after the watch at {', '.join(f'{w}%' for w in judged)}: {names} of {p.new_slot} against "
        f"{p.old_slot} at {analysis.confidence:.0%} confidence, {analysis.min_samples} samples each; "
        f"marginal: {analysis.on_marginal}, not enough data: {analysis.on_insufficient}"
        + (f" after waiting up to {analysis.wait_seconds}s" if analysis.wait_seconds else "")
    ]


def step(
    config: Config,
    aws: Any,
    env: slots.Env,
    p: Plan,
    at: Step,
    since: float,
    entry: dict,
    line: Line,
    watch: Callable[[float], None],
) -> dict:
    """Judge the step that began at ``since`` (epoch seconds); returns the ledger entry with the judgement.

    ``watch(seconds)`` runs the gates for that long (while waiting for data).
    Raises JudgeFailed when the decision is to roll back.
    """
    analysis = slots.release_of(config).analysis
    if not analysis.enabled or p.kind != "release" or at.old_weight == 0:
        return entry
    found = sources.sources(aws, analysis, load_balancer_arn(env.listener_arn), env.groups)
    watched, began = line.get("result"), time.monotonic()  # the pause's own line, before any wait for data
    while True:
        window = sources.window(found, env.target_groups, p.old_slot, p.new_slot, since, time.time())
        verdict = judge.judge(window, analysis)
        decision = judge.decide(verdict, analysis, time.monotonic() - began)
        if decision.action != judge.WAIT:
            break
        line.note(f"canary analysis: {decision.why}")
        watch(JUDGE_INTERVAL)
    record = {
        "weight": at.new_weight,
        "baseline": p.old_slot,
        "canary": p.new_slot,
        "start": _iso(window.start),
        "end": _iso(window.end),
        "decision": decision.action,
        "why": decision.why,
        **verdict.to_dict(),
    }
    entry = ledger.update(config, aws, entry, analysis=[*entry.get("analysis", []), record])
    if decision.action == judge.ROLLBACK:
        raise JudgeFailed(f"canary analysis at {at.new_weight}%: {verdict.summary()}", entry, record)
    said = f"canary analysis {verdict.verdict}" + (f", {decision.action}" if verdict.verdict != judge.PASS else "")
    waited = time.monotonic() - began
    said += f" (after {waited:.0f}s more)" if waited >= 1 else ""
    line["result"] = f"{watched}; {said}" if watched else said
    return entry


def details(failed: BaseException) -> dict:
    """What a rollback's notification adds for a failed analysis: its judgement, figures and all."""
    return {"analysis": failed.record} if isinstance(failed, JudgeFailed) else {}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")
