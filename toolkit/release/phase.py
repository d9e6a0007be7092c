"""The release phase: ``release.release_command``, once per release, before the new slot takes any weight.

Its command (``command``): ``release.release_command`` when rodeo.yml sets
one, else the ``release:`` line of the Procfile the AMI was baked from (Rodeo's
app role records it in the AMI's ``rodeo:release-command`` tag and installs
``PROCFILE_RUNNER``, which runs it as the app's processes run: as user
``app``, in the app's folder, with its runtime on the PATH). rodeo.yml's wins.

It runs on a one-off instance (``toolkit.oneoff``) of the release's AMI with
the release's config version, in the slot group's subnet, with
``release.security_groups`` and ``release.instance_profile``: what the new
slot's instances will have. Its output is shown as it comes and stays in
``invoke logs`` (the instance's stream). A non-zero exit, a timeout
(``release.release_timeout_seconds``) or an instance that never says how it
ended stops the release before anything moved; the ledger records why.

Exactly once per release, across a ``kill -9`` and a rerun. The ledger
entry of each attempt carries ``release_phase``: ``{"status": "started",
"run_id"}`` before the launch, then ``{"status": "succeeded"|"failed",
"exit_code"}``. A rerun (the same AMI and config version, after the killed
attempt was closed as ``interrupted``) reads the newest record of this
release's unfinished attempts (``decide``, pure):

- ``succeeded``: not run again; the record is carried into the new entry;
- ``started`` (the kill came while it ran): its instance is terminated and
  waited for, so the command cannot go on; then the instance's stream says
  whether it had ended (its ``exit`` line reached CloudWatch Logs): exit 0
  counts as done, anything else runs it again;
- nothing: run it.

A release whose phase failed ended (outcome ``stopped``); running
``invoke release`` again is a new attempt, and runs the command again.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

from toolkit import lock
from toolkit.config import Config, Release
from toolkit.errors import OneOffError, ReleaseError
from toolkit.lineage import RELEASE_COMMAND_TAG
from toolkit.logs import tail
from toolkit.logs.view import LogLine, Query, line_of
from toolkit.oneoff import instance, spec
from toolkit.release import ledger, userdata
from toolkit.release.planner import UNFINISHED, Plan
from toolkit.ui import Reporter

# The app role's runner of the Procfile's release: line (playbooks/roles/procfile), on every image that has one.
PROCFILE_RUNNER = "/usr/local/lib/rodeo/release-phase"


@dataclass(frozen=True)
class Command:
    """The release phase's command: ``text`` as shown and recorded, ``argv`` as the one-off instance runs it."""

    text: str
    argv: tuple[str, ...]
    source: str  # where it was given: rodeo.yml or the image's Procfile


def command(rel: Release, tags: dict[str, str]) -> Command | None:
    """The release phase's command for an AMI with ``tags``: rodeo.yml's ``release_command`` (it wins), else the
    Procfile's ``release:`` line the image records (run by ``PROCFILE_RUNNER``); None: no release phase."""
    if rel.release_command:
        return Command(rel.release_command, ("/bin/sh", "-c", rel.release_command), "release.release_command")
    line = (tags.get(RELEASE_COMMAND_TAG) or "").strip()
    return Command(line, (PROCFILE_RUNNER,), "the image's Procfile") if line else None


def decide(history: list[dict], entry_id: str, ami: str, config_version: int, command: str) -> tuple[str, dict | None]:
    """``("run", None)``, ``("done", record)`` or ``("check", record)`` for this release's phase (see the module's docstring).

    ``history`` is the ledger, newest first. Only the unfinished attempts of
    the same release (same AMI, config version and command) that came right
    before this one count; the walk stops at any other entry.
    """
    for entry in history:
        if entry.get("id") == entry_id:
            continue
        same = (
            entry.get("kind", "release") == "release"
            and entry.get("to_ami") == ami
            and int(entry.get("config_version") or 0) == config_version
            and entry.get("outcome") in UNFINISHED
        )
        if not same:
            break
        record = entry.get("release_phase")
        if not record:
            continue  # killed before it got to the phase: look further back
        if record.get("command") != command:
            break
        if record.get("status") == "succeeded":
            return "done", record
        if record.get("status") == "started":
            return "check", record
    return "run", None


def describe(p: Plan, rel_command: str | None, timeout: int, source: str = "") -> list[str]:
    """The ``--plan`` line of the release phase, when the plan runs one (``source``: where the command was given)."""
    if not rel_command or p.kind != "release" or p.outcome != "release" or p.resume not in ("start", "scale_up"):
        return []
    given = f" (from {source})" if source else ""
    return [
        f"  release phase: {rel_command!r}{given} on a one-off instance of {p.to_ami} with config v{p.to_config} (timeout {timeout}s), "
        "before any weight moves; not again if an interrupted attempt of this release finished it"
    ]


def run(
    config: Config,
    aws: Any,
    p: Plan,
    entry: dict,
    reporter: Reporter,
    held: lock.Lock,
    out: Callable[[LogLine], None] | None = None,
    given: Command | None = None,
) -> dict:
    """Run the release phase of plan ``p`` unless this release already did; the updated ledger entry.

    ``given`` is its command (``command``; default: rodeo.yml's). PhaseStopped
    (after recording the outcome ``stopped``) when it fails.
    """
    rel = config.release
    assert rel is not None
    given = given or command(rel, {})
    assert given is not None
    text, show = given.text, out or print_line
    what, record = decide(ledger.recent(config, aws, 10), entry["id"], p.to_ami, p.to_config, text)
    if what == "check":
        what, record = _settle(config, aws, record, reporter)
    if what == "done":
        reporter.info(
            f"release phase: {text!r} already ran for this release (run {record.get('run_id')}, exit 0): not again"
        )
        return ledger.update(config, aws, entry, release_phase=dict(record, carried=True))
    oneoff = spec.OneOff(
        run_id=spec.new_id(),
        argv=given.argv,
        ami=p.to_ami,
        config_version=p.to_config,
        timeout=rel.release_timeout_seconds,
        instance_type=rel.instance_type,
        subnet=subnet(config, aws, p.new_slot),
        security_groups=rel.security_groups,
        instance_profile=rel.instance_profile,
        purpose="release",
    )
    lock.check(aws, held, "the release phase")
    entry = ledger.update(
        config, aws, entry, release_phase={"status": "started", "run_id": oneoff.run_id, "command": text}
    )
    base = userdata.document(config, **_config_refs(config, aws, p.to_config))
    started = time.monotonic()
    try:
        code = instance.run(config, aws, oneoff, base, show, reporter)
    except OneOffError as exc:
        raise _stopped(config, aws, entry, p, text, None, exc.message, exc.hint) from None
    took = round(time.monotonic() - started, 1)
    if code != 0:
        why = f"timed out after {oneoff.timeout}s" if code == spec.TIMED_OUT else f"exited {code}"
        raise _stopped(
            config,
            aws,
            entry,
            p,
            text,
            code,
            f"release phase {text!r} {why}",
            "its output is above and in 'invoke logs --since 1h'; fix the command or the release, then release again",
        )
    # Recorded before it is said: whoever stops this run once it reads the line finds "succeeded" in the ledger.
    entry = ledger.update(
        config,
        aws,
        entry,
        release_phase={
            "status": "succeeded",
            "run_id": oneoff.run_id,
            "command": text,
            "exit_code": 0,
            "seconds": took,
        },
    )
    reporter.ok(f"release phase: {text!r} exited 0 in {took:g}s")
    return entry


def _settle(config: Config, aws: Any, record: dict, reporter: Reporter) -> tuple[str, dict | None]:
    """A phase a killed attempt started: stop its instance for good, then read whether the command had ended with 0."""
    gone = instance.terminate(aws, record["run_id"], wait=True)
    if gone:
        reporter.info(f"release phase: terminated {', '.join(gone)}, left running by the interrupted attempt")
    for event in _stream_of(config, aws, record["run_id"]):
        line = line_of(event, {})
        code = spec.end_of(line.message, record["run_id"]) if line.unit == spec.UNIT else None
        if code is not None:
            if code == 0:
                return "done", dict(record, status="succeeded", exit_code=0)
            reporter.info(f"release phase: the interrupted attempt's command exited {code}: running it again")
            return "run", None
    reporter.info("release phase: the interrupted attempt's command never ended: running it again")
    return "run", None


def _stream_of(config: Config, aws: Any, run_id: str) -> list[dict]:
    """The log events of the instance(s) launched for ``run_id``."""
    out = []
    for inst in instance.find(aws, [{"Name": f"tag:{spec.TAG}", "Values": [run_id]}]):
        launched = int(inst["LaunchTime"].timestamp() * 1000) - 60_000
        out += tail.fetch(config, aws, Query(since_ms=launched, instance=inst["InstanceId"], everything=True), launched)
    return out


class PhaseStopped(ReleaseError):
    """The release phase failed: the release stopped before any traffic moved; ``entry`` is its ledger entry as recorded."""

    def __init__(self, message: str, hint: str, result: Any, entry: dict) -> None:
        super().__init__(message, hint, result=result)
        self.entry = entry


def _stopped(
    config: Config, aws: Any, entry: dict, p: Plan, command: str, code: int | None, reason: str, hint: str
) -> PhaseStopped:
    from toolkit.release.result import ReleaseResult  # the result names the stop; the rollout is not involved

    entry = ledger.update(
        config,
        aws,
        entry,
        outcome="stopped",
        reason=reason,
        ended_at=ledger.now(),
        release_phase=dict(entry.get("release_phase") or {}, status="failed", exit_code=code),
    )
    result = ReleaseResult(
        outcome="stopped",
        kind="release",
        ami=p.to_ami,
        git_sha=entry.get("git_sha"),
        active_slot=p.old_slot,
        previous_slot=p.old_slot,
        from_ami=p.from_ami,
        config_version=p.to_config,
        from_config=p.from_config,
        reason=reason,
    )
    serving = (
        f"{p.old_slot} serves {p.from_ami} (config v{p.from_config or 0}), as before"
        if p.from_ami
        else "nothing served before, and nothing serves now"
    )
    return PhaseStopped(
        f"release of {p.to_ami} (config v{p.to_config}) stopped before any traffic moved: {reason}; {serving}",
        hint,
        result,
        entry,
    )


def subnet(config: Config, aws: Any, slot: str) -> str | None:
    """The first subnet of ``slot``'s Auto Scaling group (where its instances run), else release.subnets' first."""
    rel = config.release
    assert rel is not None
    groups = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[rel.slots[slot]])[
        "AutoScalingGroups"
    ]
    zones = [s for s in (groups[0].get("VPCZoneIdentifier") or "").split(",") if s] if groups else []
    return (zones or list(rel.subnets) or [None])[0]


def _config_refs(config: Config, aws: Any, number: int) -> dict:
    from toolkit.configvars import pin  # the release's config version: its parameters, as a slot's user data names them

    return pin.user_data(config, aws, number)


def print_line(line: LogLine) -> None:
    """A line of the command's output: stderr for its stderr (priority err or worse), else stdout."""
    stream = sys.stderr if line.priority is not None and line.priority <= 3 else sys.stdout
    print(line.message, file=stream, flush=True)
