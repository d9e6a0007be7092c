"""Why a new slot's instances do not come up: a unit that crashes, read from their shipped journals.

While a release waits for the new slot's instances to be healthy, it reads
what they shipped to CloudWatch Logs (``toolkit.logs``: the environment's
group, one stream per instance named by its id) and stops waiting, with the
app's own last lines, as soon as one instance shows a crash. The same call
on AWS and on the local stack, whose instances ship their journal the same
way; an instance whose shipper sent nothing yet shows nothing, and the wait
goes on to the health timeout as before.

The rule (``crashed``, pure): an instance has crashed when the service
manager itself (the journal entry's PID is 1: never a line the app prints)
logs about one service unit ``U``

- ``U: Failed with result 'start-limit-hit'.``: systemd refused to start it
  again; or
- ``U: Failed with result '<any>'.`` for the ``CRASHES``-th time: the unit
  failed that often since the instance booted, a crash loop. A unit that
  fails once or twice while something it needs comes up, then runs, still
  gets the whole health timeout.

systemd logs "Failed with result" once per failure of a unit (its main
process or a start step exiting non-zero, a signal, a timeout), whether or
not ``Restart=`` starts it again; a unit that is stopped, or exits 0, logs
no such line. A healthy boot of Rodeo's images logs none (the live stack's
instances are checked by ``tests/integration/local/test_release_live.py``).
A start job failed for a dependency is not counted: Rodeo's config loader
fails the app's start job that way, then starts it again once its own
restart succeeds.

The lines shown are the last ``LINES`` that the crashed unit's own processes
wrote before its last failure (a traceback ends with the error), or, when
it wrote none, what systemd said about it (``Main process exited, ...``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

import botocore.exceptions

from toolkit.aws import error_code
from toolkit.config import Config
from toolkit.logs import group

CRASHES = 3  # failures of one unit that make a crash loop (see the module's docstring)
LINES = 10  # the unit's own last lines shown
STREAMS_PER_CALL = 100  # FilterLogEvents' logStreamNames: at most 100
FAILED_RE = re.compile(r"^(?P<unit>[^\s:]+\.service): Failed with result '(?P<result>[^']+)'\.?$")
GAVE_UP = "start-limit-hit"
RESTARTING_RE = re.compile(r"^[^\s:]+\.service: Scheduled restart job\b")


@dataclass(frozen=True)
class Entry:
    """One journal entry of an instance, as its shipper sent it."""

    unit: str | None  # the unit of the process that wrote it (init.scope for systemd itself)
    pid: int | None
    message: str

    @property
    def from_manager(self) -> bool:
        """Written by systemd itself (PID 1), not by a process of a unit."""
        return self.pid == 1


@dataclass(frozen=True)
class Crash:
    """A unit that crashed on an instance: how often it failed, how the last time, and its last lines."""

    instance: str
    unit: str
    failures: int
    result: str  # the last failure's result: exit-code, signal, core-dump, timeout, start-limit-hit, ...
    lines: tuple[str, ...]

    def summary(self) -> str:
        """``web.service failed 3 times (exit-code)`` or ``web.service was given up by systemd (start-limit-hit) after 5 failures``."""
        if self.result == GAVE_UP:
            return f"{self.unit} was given up by systemd (start-limit-hit) after {self.failures - 1} failure(s)"
        return f"{self.unit} failed {self.failures} times ({self.result})"


def entry_of(message: str) -> Entry | None:
    """The Entry of one shipped message (``{"unit", "pid", "message", ...}``); None for a message that is not the shipper's."""
    try:
        doc = json.loads(message) if message.startswith("{") else None
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), str):
        return None
    unit, pid = doc.get("unit"), doc.get("pid")
    try:
        pid = int(pid) if pid is not None else None
    except (TypeError, ValueError):
        pid = None
    return Entry(unit if isinstance(unit, str) else None, pid, doc["message"])


def crashed(instance: str, entries: Iterable[Entry]) -> Crash | None:
    """The first unit that crashed by the rule (see the module), from one instance's entries in journal order; None when none did."""
    failures: dict[str, list[int]] = {}  # unit -> index in ``seen`` of each of its failure lines
    seen = list(entries)
    for index, entry in enumerate(seen):
        match = FAILED_RE.match(entry.message) if entry.from_manager else None
        if not match:
            continue
        unit = match["unit"]
        failures.setdefault(unit, []).append(index)
        if match["result"] == GAVE_UP or len(failures[unit]) >= CRASHES:
            return Crash(instance, unit, len(failures[unit]), match["result"], last_lines(seen[: index + 1], unit))
    return None


def last_lines(entries: list[Entry], unit: str) -> tuple[str, ...]:
    """What ``unit``'s own processes wrote in its last run that wrote anything, up to its last failure (at most LINES);
    else systemd's lines about that run (not its failure or restart lines)."""
    runs: list[list[Entry]] = [[]]
    for entry in entries:
        if entry.from_manager and FAILED_RE.match(entry.message) and entry.message.startswith(f"{unit}:"):
            runs.append([])
        elif entry.unit == unit and not entry.from_manager:
            runs[-1].append(entry)
        elif entry.from_manager and entry.message.startswith(f"{unit}: ") and not RESTARTING_RE.match(entry.message):
            runs[-1].append(entry)
    for run in reversed(runs):
        own = [e.message for e in run if not e.from_manager]
        if own:
            return tuple(own[-LINES:])
    for run in reversed(runs):
        said = [e.message for e in run if e.from_manager]
        if said:
            return tuple(said[-LINES:])
    return ()


def find(events: list[dict]) -> list[Crash]:
    """The crashes among FilterLogEvents ``events`` (of any streams), one per instance at most, by instance id."""
    by_stream: dict[str, list[dict]] = {}
    for event in events:
        by_stream.setdefault(event.get("logStreamName", ""), []).append(event)
    out = []
    for stream, found in sorted(by_stream.items()):
        # The journal's order: by time, the stream's own order kept for equal times (a stable sort).
        entries = [
            e
            for e in (entry_of(ev.get("message", "")) for ev in sorted(found, key=lambda ev: ev["timestamp"]))
            if e is not None
        ]
        crash = crashed(stream, entries)
        if crash is not None:
            out.append(crash)
    return out


def reason(slot: str, crashes: list[Crash], instances: int) -> str:
    """The gate's reason: which unit crashed where, and the first crash's last lines, indented."""
    first = crashes[0]
    where = ", ".join(c.instance for c in crashes)
    lines = "".join(f"\n    {line}" for line in first.lines)
    said = f"; its last lines on {first.instance}:{lines}" if lines else ""
    return (
        f"{slot}: {first.summary()} on {len(crashes)} of {instances} instance(s) ({where}){said}"
        f"\n  ('invoke logs --slot {slot}' shows the whole journal)"
    )


def read(config: Config, aws: Any, instance_ids: list[str]) -> list[dict]:
    """Every event the instances shipped (their streams in the environment's log group).

    One FilterLogEvents call for up to 100 streams; AWS refuses the whole
    call (ResourceNotFoundException) when one of them does not exist yet (an
    instance whose shipper has sent nothing), so such a call is made again
    stream by stream, and a stream or group that does not exist has nothing.
    """
    out = []
    for start in range(0, len(instance_ids), STREAMS_PER_CALL):
        chunk = instance_ids[start : start + STREAMS_PER_CALL]
        found = _filter(config, aws, chunk)
        if found is None:
            found = [e for one in chunk for e in (_filter(config, aws, [one]) or [])]
        out += found
    return out


def _filter(config: Config, aws: Any, streams: list[str]) -> list[dict] | None:
    """The events of ``streams``; None when the group or one of the streams does not exist."""
    try:
        pages = (
            aws.client("logs")
            .get_paginator("filter_log_events")
            .paginate(logGroupName=group.name(config), logStreamNames=streams)
        )
        return [e for page in pages for e in page.get("events", [])]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        return None


def check(config: Config, aws: Any, instance_ids: list[str]) -> list[Crash]:
    """The crashes the instances' shipped journals show now (none before their shippers sent anything)."""
    return find(read(config, aws, sorted(instance_ids))) if instance_ids else []
