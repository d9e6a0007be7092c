"""Carry out a release Plan: lock, scale, shift weights behind gates, drain, record.

``release`` and ``rollback`` read the slots, ask ``toolkit.aws.release`` for a
Plan and execute it step by step with progress lines. After each weight
change and during each pause the gates run (target health of every weighted
slot, the configured alarms); the optional smoke check (``toolkit.release.smoke``) runs before the new
slot's first weight; after each step's watch, while both slots hold weight, the canary analysis
(``toolkit.release.judging``, when ``release.analysis`` is on) judges the new slot against the old one. A failed
gate or analysis, or an AWS call failing after its retries
before all traffic moved, moves all weight back to the old slot in one call,
scales the new slot to 0, records the reason and raises ReleaseError carrying
the ``ReleaseResult`` (outcome ``rolled_back``).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from toolkit import lock, notify
from toolkit.aws import AWS_ERRORS, explain
from toolkit.config import Config, Release
from toolkit.configvars import pin
from toolkit.errors import ImageError, ReleaseError
from toolkit.lineage import app_source, find_ami, newest_verified, require_ami, require_owner
from toolkit.release import (
    classic,
    crash,
    judging,
    ledger,
    phase,
    report,
    restore,
    scaled,
    scaling,
    slots,
    smoke,
    userdata,
    watch,
    who,
)
from toolkit.release.planner import Plan, describe, need_healthy, plan
from toolkit.release.result import ReleaseResult
from toolkit.release.timeline import DONE, FAILED, GATE, Timeline
from toolkit.ui import Line, Reporter

# How often the watch re-runs the gates: weight sits at most about this long
# (plus one round of describe calls) on a slot that failed outside Rodeo.
GATE_INTERVAL = 1.0
# An AWS call that failed after its retries: the release rolls back as on a failed gate.


class GateFailed(Exception):
    """A gate said no; the message is the reason."""


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
    promoted_from: dict | None = None,
) -> ReleaseResult:
    """Release ``ami`` (or the newest verified AMI of ``image``) with the newest config version behind the load balancer.

    ``config_only`` releases the live AMI with the newest config version
    instead. Returns the result (``outcome`` released / unchanged / planned); a
    failed gate raises ReleaseError after rolling back, carrying the result.
    ``aws`` is the environment (``toolkit.environment``): the smoke check
    asks it where the test listener answers. ``held`` is the release lock
    when the caller took it (``invoke config.set``): it is used, and left for
    the caller to free. ``promoted_from`` (``invoke promote``: the source
    environment's release) goes into the ledger entry and the result.
    """
    rel = slots.release_of(config)
    reporter = reporter or Reporter()
    found = None
    if config_only and (ami or image):
        raise ReleaseError(
            "--config-only releases the live AMI with the newest config: give no --ami or --image",
            "drop --config-only to release another AMI (it takes the newest config too)",
        )
    if not config_only:
        found = choose(config, aws, ami, image, allow_unverified)
        ami = found["ImageId"]
        require_owner(found, config.app, image or rel.image)
    env = preflight(config, aws)
    target = pin.newest(config, aws)
    if plan_only:
        state = slots.read(env, aws)
        found = found or _live(aws, state)
        return _planned(
            plan(state, rel, found["ImageId"], config=target, scaled=scaled.capacity(config, aws)),
            found,
            "release",
            reporter,
            config,
        )
    own = held is None
    held = held or lock.acquire(
        config, aws, f"release of {ami or 'the live AMI'} with config v{target}", break_lock, reporter
    )
    try:
        state = slots.read(env, aws)
        found = found or _live(aws, state)
        _close_unfinished(config, aws, state)
        p = plan(state, rel, found["ImageId"], config=target, scaled=scaled.capacity(config, aws))
        return _execute(config, aws, env, p, found, "release", reporter, held, promoted_from=promoted_from)
    finally:
        _resume_scaling(env, aws, held, reporter)
        if own:
            free_lock(aws, held, reporter)


def _live(aws: Any, state: Any) -> dict:
    """The AMI holding the traffic (its tags, when it still exists), for a config-only release."""
    ami = state.active.ami
    if not ami:
        raise ReleaseError(
            "nothing is live yet, so there is no AMI to release the config with",
            "release an AMI first ('invoke release'): it takes the newest config version",
        )
    return find_ami(aws, ami) or {"ImageId": ami, "tags": {}}


def rollback(
    config: Config,
    aws: Any,
    to: int | None = None,
    break_lock: bool = False,
    plan_only: bool = False,
    reporter: Reporter | None = None,
) -> ReleaseResult:
    """Put the previous release back (or undo a half-done one), behind the same gates; with ``to``, release vN's AMI and config.

    A rollback is a new release (outcome ``restored``): the config version it
    restores is made the newest first (``pin.restore``: a copy when a newer
    one exists), so the next release or config change builds on it.
    """
    reporter = reporter or Reporter()
    env = slots.resolve(config, aws)
    if plan_only:
        state = slots.read(env, aws)
        p = restore.rollback_plan(
            config, aws, state, to, lambda number: pin.restore(config, aws, number, "", "", write=False)
        )
        return _planned(p, find_ami(aws, p.to_ami) or {"ImageId": p.to_ami, "tags": {}}, "rollback", reporter, config)
    held = lock.acquire(config, aws, f"rollback to v{to}" if to else "rollback", break_lock, reporter)
    try:
        state = slots.read(env, aws)
        _close_unfinished(config, aws, state)
        p = restore.rollback_plan(
            config, aws, state, to, lambda number: pin.restore(config, aws, number, lock.whoami(), ledger.now())
        )
        pin.check(config, aws, p.to_config)
        found = find_ami(aws, p.to_ami) or {"ImageId": p.to_ami, "tags": {}}
        return _execute(config, aws, env, p, found, "rollback", reporter, held, restores=to)
    finally:
        _resume_scaling(env, aws, held, reporter)
        free_lock(aws, held, reporter)


def _execute(
    config: Config,
    aws: Any,
    env: slots.Env,
    p: Plan,
    found: dict,
    kind: str,
    reporter: Reporter,
    held: lock.Lock,
    restores: int | None = None,
    promoted_from: dict | None = None,
) -> ReleaseResult:
    rel = slots.release_of(config)
    started = time.monotonic()
    result = ReleaseResult(
        outcome=p.outcome,
        kind=kind,
        ami=p.to_ami,
        git_sha=found.get("tags", {}).get("rodeo:git-sha"),
        active_slot=p.new_slot,
        previous_slot=p.old_slot,
        from_ami=p.from_ami,
        config_version=p.to_config,
        from_config=p.from_config,
        promoted_from=promoted_from,
        **_app_of(found),
    )
    if p.outcome == "unchanged":
        _settle_scaling(config, env, aws, p, reporter, held)
        return result  # its line says so
    for line in _described(config, p, found):
        reporter.detail(line)
    entry = ledger.start(
        config,
        aws,
        {
            "kind": kind,
            "ami": p.to_ami,
            "to_ami": p.to_ami,
            "from_ami": p.from_ami,
            "git_sha": result.git_sha,
            **_app_of(found),
            "new_slot": p.new_slot,
            "old_slot": p.old_slot,
            "resume": p.resume,
            "config_version": p.to_config,
            "from_config_version": p.from_config,
            **({"restores": restores} if restores else {}),
            **({"promoted_from": promoted_from} if promoted_from else {}),
            "by": lock.whoami(),
            "aws_caller": who.aws_caller(aws),
            "git_author": who.git_author(config.root),
        },
    )
    result = dataclasses.replace(result, number=entry["number"])
    timeline = Timeline()
    if p.resume in ("start", "scale_up"):  # the old slot holds all traffic until the first step
        timeline.weights({p.old_slot: 100, p.new_slot: 0}, at=ledger.epoch(entry["started_at"]))
    what = _what(kind, p.to_ami, result)
    notify.send(
        config,
        aws,
        notify.event(
            config,
            "release.started",
            f"{what} started: {p.new_slot} takes traffic in steps {[s.new_weight for s in p.steps]}",
            **_facts(result, p),
        ),
        reporter,
    )
    scaling.suspend(config, env, aws, reporter, before=lambda: lock.check(aws, held, "suspending scaling processes"))
    try:
        if p.resume in ("start", "scale_up"):
            given = phase.command(rel, found.get("tags", {})) if p.kind == "release" else None
            if given:  # rodeo.yml's release_command, else the Procfile's release: line the image records
                try:
                    entry = phase.run(config, aws, p, entry, reporter, held, given=given)
                except phase.PhaseStopped as stopped:  # nothing moved; its picture shows the traffic it left alone
                    raise _pictured(config, aws, env, stopped, timeline, reporter) from None
            _prepare(config, env, aws, p, reporter, held)
            timeline.mark(GATE, f"{p.new_slot}: {p.capacity.desired} healthy instance(s)")
            if rel.smoke_check:
                lock.check(aws, held, f"pointing the test listener at {p.new_slot}")
            entry = ledger.update(config, aws, entry, smoke=smoke.check(env, aws, rel, p.new_slot, reporter))
            if rel.smoke_check:
                timeline.mark(GATE, f"smoke check {entry['smoke']}")
        scaling.apply(
            config, env, aws, p.new_slot, reporter, before=lambda: lock.check(aws, held, f"scaling of {p.new_slot}")
        )
        if env.classic and p.resume == "shift":
            _rejoin(env, aws, rel, reporter)
        grown = not rel.one_box  # a one-box release's slot grows to its size before its first step past the box
        for step in p.steps:
            weights = {p.new_slot: step.new_weight, p.old_slot: step.old_weight}
            needs = _needs(rel, p, step)
            if not grown and step.new_instances > 1:
                _grow(config, env, aws, p, reporter, held, timeline)
                grown = True
            _gates(config, env, aws, weights, "before the weight change", needs)
            lock.check(aws, held, f"weight {step.new_weight}% on {p.new_slot}")
            with reporter.step(_step_label(env, p, step)) as line:
                since = time.time()  # the judged window starts with the new weights
                _shift(env, aws, weights, rel, line)
                timeline.weights(weights)
                result.steps.append(step.new_weight)
                entry = ledger.update(config, aws, entry, steps=result.steps)
                _watch(config, env, aws, weights, p.pause_seconds, line, needs)
                timeline.mark(GATE, f"{step.new_weight}% step {line.get('result')}")
                entry = judging.step(
                    config,
                    aws,
                    env,
                    p,
                    step,
                    since,
                    entry,
                    line,
                    lambda s: _watch(config, env, aws, weights, s, line, needs),
                )
    except (GateFailed, judging.JudgeFailed, smoke.SmokeFailed, scaling.ScalingFailed, *AWS_ERRORS) as failed:
        reason = _reason(failed)
        entry = failed.entry if isinstance(failed, judging.JudgeFailed) else entry  # it holds the judgement
        timeline.mark(FAILED, reason)
        entry = _roll_back(
            config, aws, env, p, dict(entry, steps=list(result.steps)), reason, kind, reporter, held, timeline
        )
        rolled_back = dataclasses.replace(
            result,
            outcome="rolled_back",
            active_slot=p.old_slot,
            reason=reason,
            seconds=round(time.monotonic() - started, 2),
            report=report.draw(config, aws, env, entry, reporter),
        )
        notify.send(
            config,
            aws,
            notify.event(
                config,
                "release.rolled_back",
                f"{what} rolled back: {reason}; {p.old_slot} holds all traffic",
                reason=reason,
                **_facts(rolled_back, p),
                **judging.details(failed),
            ),
            reporter,
        )
        pictured = f"; its picture: {rolled_back.report}" if rolled_back.report else ""
        raise ReleaseError(
            rolled_back.rolled_back_message(),
            f"see why in its instances' logs: 'invoke logs --slot {p.new_slot} --since 15m'{pictured}",
            result=rolled_back,
        ) from (failed if isinstance(failed, AWS_ERRORS) else None)
    _finish_old(env, aws, p, rel, reporter, held)
    timeline.mark(DONE, f"{p.new_slot} holds all traffic" + (f", {p.old_slot} scaled to 0" if p.scale_old_down else ""))
    done = served(kind)
    entry = ledger.update(config, aws, entry, outcome=done, ended_at=ledger.now(), timeline=timeline.to_list())
    released = dataclasses.replace(
        result,
        outcome=done,
        seconds=round(time.monotonic() - started, 2),
        report=report.draw(config, aws, env, entry, reporter),
    )
    notify.send(
        config,
        aws,
        notify.event(config, "release.done", f"{what} done: {p.new_slot} holds all traffic", **_facts(released, p)),
        reporter,
    )
    return released


def _pictured(
    config: Config, aws: Any, env: slots.Env, stopped: phase.PhaseStopped, timeline: Timeline, reporter: Reporter
) -> ReleaseError:
    """A release stopped by its release phase, recorded with its timeline and drawn: the error names its picture."""
    timeline.mark(FAILED, stopped.result.reason)
    entry = ledger.update(config, aws, stopped.entry, timeline=timeline.to_list())
    drawn = report.draw(config, aws, env, entry, reporter)
    result = dataclasses.replace(stopped.result, number=entry.get("number"), report=drawn)
    pictured = f"; its picture: {drawn}" if drawn else ""
    return ReleaseError(stopped.message, stopped.hint + pictured, result=result)


def _described(config: Config, p: Plan, found: dict) -> list[str]:
    """The plan's lines, its release phase (of rodeo.yml, or of the image ``found``'s Procfile) and scaling included."""
    rel = slots.release_of(config)
    given = phase.command(rel, found.get("tags", {}))
    return (
        describe(p)
        + phase.describe(
            p,
            given and given.text,
            rel.release_timeout_seconds,
            given.source if given and not rel.release_command else "",
        )
        + scaling.describe(config.scaling, p)
        + judging.describe(config, p)
    )


def served(kind: str) -> str:
    """The outcome of a run whose AMI and config came to hold all traffic: ``released``, or ``restored`` for a rollback."""
    return "restored" if kind == "rollback" else "released"


def _what(kind: str, ami: str, result: ReleaseResult) -> str:
    """ "release of ami-1 (app 1.2.0)": how a notification names the run."""
    return f"{kind} of {ami}" + (f" (app {result.app_version})" if result.app_version else "")


def _facts(result: ReleaseResult, p: Plan) -> dict:
    """A release's facts for a notification's data."""
    return {
        "run": result.kind,
        "ami": result.ami,
        "from_ami": p.from_ami,
        "slot": result.active_slot,
        "previous_slot": result.previous_slot,
        "app_version": result.app_version,
        "git_sha": result.git_sha,
        "outcome": result.outcome,
        "seconds": result.seconds,
    }


def _prepare(config: Config, env: slots.Env, aws: Any, p: Plan, reporter: Reporter, held: lock.Lock) -> None:
    """Pin the new slot to the AMI, scale it up (to one instance for a one-box step), wait until every instance is healthy."""
    rel = slots.release_of(config)
    full = p.capacity  # release.capacity, or more when the live slot runs more now
    count = p.steps[0].new_instances if p.steps else full.desired
    cap = dataclasses.replace(full, desired=count, min=min(full.min, count))
    if p.clear_new_first:
        lock.check(aws, held, f"emptying {p.new_slot}")
        with reporter.step(f"emptying {p.new_slot} (it runs another AMI)"):
            slots.set_capacity(env, aws, p.new_slot, 0, 0)
            if not slots.wait_drained(env, aws, p.new_slot, rel.health_timeout_seconds):
                raise GateFailed(f"{p.new_slot} did not empty within {rel.health_timeout_seconds}s")
    lock.check(aws, held, f"scaling {p.new_slot} up")
    with reporter.step(f"{p.new_slot} scaling up to {cap.desired} with {p.to_ami}") as line:
        version = slots.ensure_version(
            env,
            aws,
            p.to_ami,
            p.reuse_version,
            userdata.encode(userdata.document(config, **pin.user_data(config, aws, p.to_config))),
            rel.instance_profile,
            rel.instance_type,
            rel.security_groups,
        )
        slots.set_capacity(env, aws, p.new_slot, cap.desired, cap.min, cap.max, version)
        line["result"] = f"pinned to launch template version {version}, {cap.desired} instance(s) asked for"
    with reporter.step(f"waiting for {cap.desired} healthy instance(s) in {p.new_slot}") as line:
        _wait_healthy(config, env, aws, p.new_slot, cap.desired, line)


def _wait_healthy(config: Config, env: slots.Env, aws: Any, slot: str, count: int, line: Line) -> None:
    """Until ``slot`` has ``count`` healthy instances (counting on ``line``); GateFailed after the health timeout or
    at an instance's crash."""
    timeout = slots.release_of(config).health_timeout_seconds
    ok = slots.wait_in_service(
        env,
        aws,
        slot,
        count,
        timeout,
        lambda n, total: line.note(f"instances healthy {n}/{total}"),
        watch=lambda ids: _no_crash(config, aws, slot, ids),
    )
    if not ok:
        healthy, total = slots.health(env, aws)[slot]
        raise GateFailed(f"{slot} has {healthy}/{count} healthy instance(s) ({total} in service) after {timeout}s")
    line["result"] = f"instances healthy {count}/{count}"


def _no_crash(config: Config, aws: Any, slot: str, ids: list[str]) -> None:
    """GateFailed, with the app's last lines, when an instance's shipped journal shows a crashed unit (``toolkit.release.crash``)."""
    found = crash.check(config, aws, ids)
    if found:
        raise GateFailed(crash.reason(slot, found, len(ids)))


def _step_label(env: slots.Env, p: Plan, step: Any) -> str:
    """What a step does, as a person reads it: weights, or a Classic ELB's rotation."""
    if not env.classic:
        boxed = " (one box)" if step.new_instances == 1 < p.capacity.desired else ""
        return f"weight {step.new_weight}% on {p.new_slot}{boxed}, {step.old_weight}% on {p.old_slot}"
    if step.old_weight > 0:
        return f"{p.new_slot} joins {p.old_slot} behind Classic ELB {env.classic}"
    return f"{p.new_slot} alone behind Classic ELB {env.classic} ({p.old_slot} leaves, draining)"


def _shift(env: slots.Env, aws: Any, weights: dict[str, int], rel: Release, line: Line) -> None:
    """Give the slots ``weights``. Behind a Classic ELB a slot gaining traffic joins first, and the one losing it leaves
    only once every instance of the joining slot is InService there: the ELB never runs out of instances to send to."""
    if env.classic:
        now = slots.slot_weights(env, aws)
        joining = [slot for slot, weight in weights.items() if weight > 0 and now[slot] == 0]
        if joining:
            slots.set_weights(env, aws, {slot: weights[slot] if slot in joining else now[slot] for slot in now})
        for slot in joining:
            _joined(env, aws, slot, rel, line)
    slots.set_weights(env, aws, weights)


def _joined(env: slots.Env, aws: Any, slot: str, rel: Release, line: Line) -> None:
    """Until the ELB reports every instance of ``slot`` InService (it sends them nothing before); GateFailed after the health timeout."""
    ok = classic.wait_joined(
        aws,
        env.classic,
        lambda: set(slots.instance_ids(env, aws, slot)),
        rel.health_timeout_seconds,
        slots.poll_pauses(),
        lambda n, total: line.note(f"InService on the ELB {n}/{total}"),
    )
    if not ok:
        healthy, total = slots.health(env, aws)[slot]
        raise GateFailed(
            f"{slot} has {healthy}/{total} instance(s) InService on Classic ELB {env.classic} after {rel.health_timeout_seconds}s"
        )


def _rejoin(env: slots.Env, aws: Any, rel: Release, reporter: Reporter) -> None:
    """A rerun of a rotation a stopped run left half done: first, every slot attached to the Classic ELB InService there.

    The stopped run may have died between attaching a slot and its instances
    passing the ELB's checks; until they do, the ELB sends them nothing and the
    gates would count them unhealthy.
    """
    attached = slots.slot_weights(env, aws)
    for slot, (healthy, total) in slots.health(env, aws).items():
        if attached[slot] > 0 and healthy < total:
            with reporter.step(f"{slot} joining Classic ELB {env.classic} (attached by the stopped run)") as line:
                _joined(env, aws, slot, rel, line)


def _needs(rel: Release, p: Plan, step: Any) -> dict[str, int]:
    """Healthy instances each slot must keep while it holds weight at ``step``: one for a one-box step's new slot."""
    need = need_healthy(rel)
    return {p.old_slot: need, p.new_slot: min(need, step.new_instances)}


def _grow(
    config: Config, env: slots.Env, aws: Any, p: Plan, reporter: Reporter, held: lock.Lock, timeline: Timeline
) -> None:
    """Past a one-box step: the new slot to its full size and every instance healthy, before the next step's weight.

    A rerun past the box finds the size asked for already (perhaps with
    instances still booting: a stop right after asking) and only waits.
    """
    cap = p.capacity
    with reporter.step(f"{p.new_slot} scaling up to {cap.desired} past its one box") as line:
        if slots.desired_of(env, aws, p.new_slot) < cap.desired:
            lock.check(aws, held, f"scaling {p.new_slot} up past its one box")
            slots.set_capacity(env, aws, p.new_slot, cap.desired, cap.min, cap.max)
        _wait_healthy(config, env, aws, p.new_slot, cap.desired, line)
    timeline.mark(GATE, f"{p.new_slot}: {cap.desired} healthy instance(s)")


def _gates(
    config: Config,
    env: slots.Env,
    aws: Any,
    weights: dict[str, int],
    when: str,
    needs: dict[str, int] | None = None,
) -> None:
    """Target health of every slot with weight (``needs``: healthy instances per slot), then the alarms; GateFailed on the first no."""
    rel = slots.release_of(config)
    for slot, (healthy, total) in slots.health(env, aws).items():
        need = (needs or {}).get(slot, need_healthy(rel))
        if weights.get(slot, 0) > 0 and healthy < need:
            raise GateFailed(f"{slot} has {healthy} healthy of {total} instance(s), fewer than {need} ({when})")
    firing = _alarms_firing(aws, rel.alarms)
    if firing:
        raise GateFailed(f"alarm(s) in ALARM: {', '.join(firing)} ({when})")


def _watch(
    config: Config,
    env: slots.Env,
    aws: Any,
    weights: dict[str, int],
    pause: float,
    line: Line,
    needs: dict[str, int] | None = None,
) -> None:
    """Run the gates now and every second until ``pause`` has passed, counting down on the step's line."""
    deadline = time.monotonic() + pause
    line.note(f"watching for {pause:g}s (health, alarms)")
    while True:
        _gates(config, env, aws, weights, "while watching", needs)
        left = deadline - time.monotonic()
        if left <= 0:
            line["result"] = f"watched {pause:g}s: healthy, no alarm"
            return
        line.note(f"watching: {left:.0f}s left, healthy, no alarm", plain=False)
        time.sleep(min(GATE_INTERVAL, left))


def _roll_back(
    config: Config,
    aws: Any,
    env: slots.Env,
    p: Plan,
    entry: dict,
    reason: str,
    kind: str,
    reporter: Reporter,
    held: lock.Lock,
    timeline: Timeline,
) -> dict:
    """All weight back on the old slot, the new one scaled down, the reason and the timeline recorded; the entry.

    When AWS fails the rollback too (an outage outlasting the retries), stop
    with what is known: the old slot was never scaled down, so either command
    named in the hint converges once AWS answers. When the lock was taken
    over meanwhile, nothing is touched: the run holding it now owns the slots.
    """
    try:
        lock.check(aws, held, "rolling back")
        _revert(config, env, aws, p, reporter, timeline)
    except AWS_ERRORS as exc:
        raise ReleaseError(
            f"{kind} of {p.to_ami} stopped: {reason}; rolling back failed too: {_reason(exc)}",
            f"once AWS answers, 'invoke rollback --break-lock' puts all traffic back on {p.old_slot}, or 'invoke release --ami {p.to_ami} --break-lock' finishes the release",
        ) from exc
    entry = dict(entry, outcome="rolled_back", reason=reason, ended_at=ledger.now(), timeline=timeline.to_list())
    try:
        ledger.update(config, aws, entry)
    except AWS_ERRORS as exc:  # the listener and groups are the truth; the next run closes the entry
        reporter.warn(f"could not record the rollback in the ledger: {_reason(exc)}")
    return entry


def _reason(failed: BaseException) -> str:
    explained = explain(failed)
    return explained.message if explained else str(failed)


def _revert(config: Config, env: slots.Env, aws: Any, p: Plan, reporter: Reporter, timeline: Timeline) -> None:
    with reporter.step(f"rolling back: all traffic to {p.old_slot}") as line:
        try:
            _shift(env, aws, {p.old_slot: 100, p.new_slot: 0}, slots.release_of(config), line)
        except GateFailed as failed:  # a Classic ELB's old slot did not come back: the new one keeps serving
            raise ReleaseError(
                f"rolling back to {p.old_slot} stopped: {failed}; {p.new_slot} still serves",
                f"see why in its instances' logs: 'invoke logs --slot {p.old_slot} --since 15m'; then 'invoke rollback'",
            ) from None
        timeline.weights({p.old_slot: 100, p.new_slot: 0})
    with reporter.step(f"{p.new_slot} scaling down to 0"):
        slots.wait_detached(env, aws, p.new_slot, p.drain_seconds + slots.release_of(config).health_timeout_seconds)
        slots.set_capacity(env, aws, p.new_slot, 0, 0)
    scaling.remove(env, aws, p.new_slot, reporter)
    scaling.apply(
        config, env, aws, p.old_slot, reporter
    )  # it kept its scaling throughout; or gets it, when rodeo.yml has new scaling


def _finish_old(env: slots.Env, aws: Any, p: Plan, rel: Release, reporter: Reporter, held: lock.Lock) -> None:
    if not p.scale_old_down:
        reporter.info(f"keeping {p.old_slot} warm for a fast rollback")
        scaling.remove(env, aws, p.old_slot, reporter, before=lambda: lock.check(aws, held, f"scaling of {p.old_slot}"))
        return
    _wait_out_stickiness(env, p, reporter)
    lock.check(aws, held, f"draining {p.old_slot}")
    with reporter.step(
        f"{p.old_slot} draining (deregistration delay up to {p.drain_seconds}s), then scaling to 0"
    ) as line:
        slots.wait_detached(env, aws, p.old_slot, p.drain_seconds + rel.health_timeout_seconds)
        slots.set_capacity(env, aws, p.old_slot, 0, 0)
        if slots.wait_drained(env, aws, p.old_slot, p.drain_seconds + rel.health_timeout_seconds):
            line["result"] = "no instance left"
        else:
            line["result"] = "instances left"
            reporter.warn(f"{p.old_slot} still has instances; its group will finish scaling in")
    scaling.remove(env, aws, p.old_slot, reporter, before=lambda: lock.check(aws, held, f"scaling of {p.old_slot}"))


def _wait_out_stickiness(env: slots.Env, p: Plan, reporter: Reporter) -> None:
    """Clients the listener pinned to the old slot (target group stickiness) keep going there until their pin ends: wait it out."""
    left = slots.stickiness_seconds(env) - p.pause_seconds  # the last step's watch ran with the old slot at weight 0
    if left > 0:
        with reporter.step(
            f"waiting {left}s for clients pinned to {p.old_slot} by the listener's target group stickiness"
        ) as line:
            time.sleep(left)
            line["result"] = "pins ended"


def choose(config: Config, aws: Any, ami: str | None, image: str | None, allow_unverified: bool) -> dict:
    """The AMI to release (with its tags): ``ami``, checked, or the newest verified one of ``image`` (release.image)."""
    if ami and image:
        raise ReleaseError(
            "give --ami or --image, not both", "--ami picks one AMI; --image picks the newest verified AMI of an image"
        )
    if ami:
        return require_ami(aws, ami, allow_unverified)
    name = image or slots.release_of(config).image
    config.image(name)
    found = newest_verified(aws, config.app, name)
    if found is None:
        raise ImageError(
            f"no verified AMI of image {name!r} for app {config.app!r} in {config.region}",
            f"bake one with 'invoke bake --image {name}', or pass --ami",
        )
    return found


def preflight(config: Config, aws: Any) -> slots.Env:
    """The release's resources, found (``slots.resolve``), and what would refuse it before it moves traffic: its
    alarms, the smoke check's port, the canary analysis's data; the Env."""
    rel = slots.release_of(config)
    env = slots.resolve(config, aws)
    _check_alarms(config, aws, rel)
    smoke.check_port(env, aws, rel)
    judging.check(config, aws, env)
    return env


def _check_alarms(config: Config, aws: Any, rel: Release) -> None:
    if not rel.alarms:
        return
    described = _describe_alarms(aws, rel.alarms)
    found = {a["AlarmName"] for a in described}
    absent = [a for a in rel.alarms if a not in found]
    if absent:
        raise ReleaseError(
            f"release.alarms: no CloudWatch alarm named {', '.join(absent)} in {config.region}",
            "create the alarm or remove it from release.alarms in rodeo.yml",
        )
    watch.check(rel.pause_seconds, [t for t in map(watch.timing, described) if t is not None])


def _alarms_firing(aws: Any, names: tuple[str, ...]) -> list[str]:
    return sorted(a["AlarmName"] for a in _describe_alarms(aws, names) if a["StateValue"] == "ALARM")


def _describe_alarms(aws: Any, names: tuple[str, ...]) -> list[dict]:
    if not names:
        return []
    out = []
    for page in (
        aws.client("cloudwatch")
        .get_paginator("describe_alarms")
        .paginate(AlarmNames=list(names), AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    ):
        out += page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])
    return out


def _close_unfinished(config: Config, aws: Any, state: Any) -> None:
    """Mark runs a crash left "in_progress": released if their AMI now holds all traffic, else interrupted.

    Only the outcome changes; ``plan.moved_traffic`` counts both alike, so
    closing an entry never changes what a rollback restores.
    """
    for entry in ledger.recent(config, aws, 5):
        if entry.get("outcome") == "in_progress":
            done = not state.split and state.active.holds(entry.get("to_ami"), int(entry.get("config_version") or 0))
            ledger.update(
                config,
                aws,
                entry,
                outcome=served(entry.get("kind", "release")) if done else "interrupted",
                reason="closed by the next run after a crash",
                ended_at=ledger.now(),
            )


def _planned(p: Plan, found: dict, kind: str, reporter: Reporter, config: Config) -> ReleaseResult:
    for line in _described(config, p, found):
        reporter.info(line)
    outcome = "unchanged" if p.outcome == "unchanged" else "planned"
    return ReleaseResult(
        outcome=outcome,
        kind=kind,
        ami=p.to_ami,
        git_sha=found.get("tags", {}).get("rodeo:git-sha"),
        active_slot=p.old_slot if outcome == "planned" else p.new_slot,
        steps=[s.new_weight for s in p.steps],
        plan=p.to_dict(),
        config_version=p.to_config,
        **_app_of(found),
    )


def _app_of(found: dict) -> dict:
    """``app_version``/``app_commit`` of an AMI baked from an app source (its tags), else {}."""
    app = app_source(found.get("tags", {}))
    return {"app_version": app["version"], "app_commit": app["commit"]} if app else {}


def _settle_scaling(config: Config, env: slots.Env, aws: Any, p: Plan, reporter: Reporter, held: lock.Lock) -> None:
    """Nothing to release: still put rodeo.yml's scaling on the live slot and none on the other (a rerun after a crash converges)."""
    scaling.apply(
        config, env, aws, p.new_slot, reporter, before=lambda: lock.check(aws, held, f"scaling of {p.new_slot}")
    )
    scaling.remove(env, aws, p.old_slot, reporter, before=lambda: lock.check(aws, held, f"scaling of {p.old_slot}"))


def _resume_scaling(env: slots.Env, aws: Any, held: lock.Lock, reporter: Reporter) -> None:
    """On every way out: resume the processes a release suspended (this run's, or a killed run's), unless the lock was taken over."""
    try:
        scaling.resume(env, aws, reporter, before=lambda: lock.check(aws, held, "resuming scaling processes"))
    except Exception as exc:  # the run's own outcome matters more; the next release or rollback resumes them
        reporter.warn(
            f"scaling processes not resumed: {_reason(exc)}; the next 'invoke release' or 'invoke rollback' resumes them"
        )


def free_lock(aws: Any, held: lock.Lock, reporter: Reporter) -> None:
    """Free the release lock; a lost or failed unlock is a warning (the run's own outcome matters more)."""
    try:
        if not lock.free(aws, held):
            reporter.warn("the lock was broken by someone else during this run")
    except Exception as exc:  # the run's own outcome matters more than a lost unlock
        reporter.warn(f"could not free the lock: {exc}")
