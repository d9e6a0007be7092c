"""``invoke logs``: read the environment's log group, every instance's stream merged by time.

Gather: FilterLogEvents over the whole group (one call covers every stream,
including those of instances that started a moment ago), and the instances'
slot and version (DescribeInstances: its Auto Scaling group, which is the
slot's; DescribeImages: its AMI's ``rodeo:app-version``, else the AMI id),
asked once per instance and cached. Then ``toolkit.logs.view`` orders,
filters and formats. ``follow`` polls again every one to three seconds over a
window reaching ``LOOKBACK`` back, so a line that reaches CloudWatch late
(a batch in flight, a slow clock) still shows, once.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import botocore.exceptions

from toolkit.aws import error_code
from toolkit.config import Config
from toolkit.errors import LogsError
from toolkit.logs import group
from toolkit.logs.view import UNKNOWN, LogLine, Query, line_of, order

POLL_MIN, POLL_MAX = (
    1.0,
    3.0,
)  # seconds between polls: back to the minimum when lines come, up to the maximum when none do
LOOKBACK_MS = 15_000  # how late (by its timestamp) a line may reach CloudWatch and still be shown by --follow
RETRY_UNKNOWN = 30.0  # seconds before asking again about an instance EC2 did not know


class Sources:
    """Instance id -> (slot, version), asked of EC2 once per instance (an unknown one again after ``RETRY_UNKNOWN``)."""

    def __init__(self, config: Config, aws: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.aws, self.clock = aws, clock
        # A slot's Auto Scaling group is named as its target group (release.slots).
        self.slot_of_group = {name: slot for slot, name in (config.release.slots.items() if config.release else [])}
        self.known: dict[str, tuple[str, str]] = {}
        self.missing: dict[str, float] = {}

    def of(self, instance_ids: set[str]) -> dict[str, tuple[str, str]]:
        """Slot and version of each of ``instance_ids`` (``?`` for what EC2 does not say)."""
        now = self.clock()
        ask = sorted(
            i
            for i in instance_ids
            if i not in self.known and now - self.missing.get(i, -RETRY_UNKNOWN) >= RETRY_UNKNOWN
        )
        if ask:
            found = self._describe(ask)
            self.known.update(found)
            self.missing.update({i: now for i in ask if i not in found})
        return {i: self.known.get(i, (UNKNOWN, UNKNOWN)) for i in instance_ids}

    def _describe(self, ids: list[str]) -> dict[str, tuple[str, str]]:
        ec2 = self.aws.client("ec2")
        instances = []
        # A filter, not InstanceIds: an id EC2 forgot (terminated long ago) is left out instead of failing the call.
        for start in range(0, len(ids), 200):
            pages = ec2.get_paginator("describe_instances").paginate(
                Filters=[{"Name": "instance-id", "Values": ids[start : start + 200]}]
            )
            instances += [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
        amis = sorted({i["ImageId"] for i in instances if i.get("ImageId")})
        versions = {}
        if amis:
            for image in ec2.describe_images(Filters=[{"Name": "image-id", "Values": amis}])["Images"]:
                tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
                versions[image["ImageId"]] = tags.get("rodeo:app-version") or image["ImageId"]
        out = {}
        for inst in instances:
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
            slot = self.slot_of_group.get(tags.get("aws:autoscaling:groupName", ""), UNKNOWN)
            if "rodeo:oneoff" in tags:  # a one-off instance (toolkit.oneoff.spec.TAG): invoke run, the release phase
                slot = "one-off"
            elif "rodeo:review" in tags:  # a review app's instance (toolkit.review.facts.NAME_TAG)
                slot = f"review:{tags['rodeo:review']}"
            out[inst["InstanceId"]] = (slot, versions.get(inst.get("ImageId", ""), inst.get("ImageId") or UNKNOWN))
        return out


def fetch(config: Config, aws: Any, query: Query, start_ms: int) -> list[dict]:
    """Every event of the group from ``start_ms`` on (of ``query.instance``'s stream only, when given), merged by time."""
    args: dict = {"logGroupName": group.name(config), "startTime": start_ms}
    if query.instance:
        args["logStreamNamePrefix"] = query.instance
    try:
        pages = aws.client("logs").get_paginator("filter_log_events").paginate(**args)
        return order([e for page in pages for e in page.get("events", [])])
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        raise LogsError(
            f"no log group {group.name(config)} in {config.region}",
            f"run 'invoke --env {config.env} setup' to create it; instances of a Rodeo base image ship their journal to it",
        ) from None


def lines(config: Config, aws: Any, query: Query, sources: Sources | None = None) -> list[LogLine]:
    """The lines of ``query`` from ``query.since_ms`` until now, oldest first."""
    return _shown(fetch(config, aws, query, query.since_ms), query, sources or Sources(config, aws))


def _shown(events: list[dict], query: Query, sources: Sources) -> list[LogLine]:
    known = sources.of({e["logStreamName"] for e in events if "logStreamName" in e})
    return [line for line in (line_of(e, known) for e in events) if query.keeps(line)]


class Window:
    """Which events a ``follow`` poll asks for and which it shows: pure bookkeeping, no AWS call.

    The first poll reads from ``since_ms``; each later one from
    ``LOOKBACK_MS`` before the previous poll began, and shows only events not
    shown yet (by stream and event id), so a late line appears once. Ids of
    events older than the window are forgotten: no poll returns them again.
    """

    def __init__(self, since_ms: int) -> None:
        self.since_ms = self.start = since_ms
        self.shown: dict[str, int] = {}  # stream/event id -> timestamp
        self.wait = POLL_MIN

    def fresh(self, events: list[dict]) -> list[dict]:
        """The events of a poll not shown before (now marked shown), in their order."""
        new = []
        for event in events:
            key = f"{event.get('logStreamName', '')}/{event.get('eventId', '')}"
            if key not in self.shown:
                self.shown[key] = event["timestamp"]
                new.append(event)
        return new

    def advance(self, polled_at_ms: int, got_new: bool) -> float:
        """Move the window after a poll that began at ``polled_at_ms``; the seconds to wait before the next one."""
        self.start = max(self.since_ms, polled_at_ms - LOOKBACK_MS)
        self.shown = {k: ts for k, ts in self.shown.items() if ts >= self.start}
        self.wait = POLL_MIN if got_new else min(self.wait * 1.5, POLL_MAX)
        return self.wait


def follow(
    config: Config,
    aws: Any,
    query: Query,
    stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[LogLine]:
    """The lines of ``query`` as they come, until ``stop()`` (or forever): the past ones first, then each poll's new ones.

    Polls every ``POLL_MIN`` to ``POLL_MAX`` seconds (see ``Window``). A line
    that reaches CloudWatch more than ``LOOKBACK_MS`` after its timestamp (an
    instance's shipper catching up after an outage) shows in a later
    ``invoke logs`` without ``--follow``, not here.
    """
    sources, window = Sources(config, aws), Window(query.since_ms)
    while not stop():
        polled_at = int(clock() * 1000)
        fresh = window.fresh(fetch(config, aws, query, window.start))
        yield from _shown(fresh, query, sources)
        wait = window.advance(polled_at, bool(fresh))
        if not stop():
            sleep(wait)
