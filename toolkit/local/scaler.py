"""The live stack's EC2 Auto Scaling: scheduled actions run on moto's groups.

Each controller tick, ``Scaler.step`` reads the stack's clock
(``toolkit.local.clock``), asks ``toolkit.local.autoscaler`` what every
group's scheduled actions did since the last tick, and carries it out in
moto: the minimum and maximum set on the group, the desired capacity through
moto's own ``set_desired_capacity`` (what SetDesiredCapacity and
UpdateAutoScalingGroup call), so the group launches instances or terminates
them as it does for a request. A terminated instance's target then drains
for its target group's deregistration delay before the controller stops it
(``toolkit.local.controller``), as an ASG with the target group attached
deregisters before it terminates. A one-time action that ran, and a
recurring one past its end time, leave the group.

moto's parts this relies on (5.2.6, checked by
``tests/unit/local/test_scaler.py``): ``AutoScalingBackend.scheduled_actions``
(keyed by (group, name): ``toolkit.local.motoserver._scaling_names_per_group``),
``autoscaling_groups``, ``set_desired_capacity(group_name, desired_capacity)``,
and the fields of ``FakeScheduledAction`` and ``FakeAutoScalingGroup`` read
below.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from toolkit.local import autoscaler
from toolkit.local.autoscaler import Scheduled, Sizes
from toolkit.local.motostate import LOCK, autoscaling_regions

log = logging.getLogger("rodeo.live")


class Scaler:
    """The last clock reading, and which unreadable actions were reported already."""

    def __init__(self) -> None:
        self.last: datetime | None = None
        self.reported: set[tuple] = set()

    def step(self, now: datetime) -> None:
        """Run every group's actions due in (last reading, ``now``]; the first reading only starts the clock."""
        since, self.last = self.last, now
        if since is None or now <= since:  # a clock moved back fires nothing until it passes times not yet seen
            if since is not None and now < since:
                self.last = since
            return
        with LOCK:  # reads and changes moto's groups between two requests
            for backend in autoscaling_regions():
                self._run(backend, since, now)

    def _run(self, backend, since: datetime, now: datetime) -> None:
        by_group: dict[str, list] = {}
        for key, action in list(backend.scheduled_actions.items()):
            by_group.setdefault(action.auto_scaling_group_name, []).append((key, action))
        for name, found in by_group.items():
            group = backend.autoscaling_groups.get(name)
            if group is None:
                continue
            actions = [scheduled_of(a) for _, a in found]
            outcome = autoscaler.run(sizes_of(group), actions, since, now, suspended(group))
            self._say(name, outcome)
            apply(backend, group, outcome.sizes)
            for key, action in found:
                if action.scheduled_action_name in outcome.finished:
                    backend.scheduled_actions.pop(key, None)

    def _say(self, group: str, outcome: autoscaler.Outcome) -> None:
        for at, action in outcome.ran:
            log.info("scheduled action %s of %s (due %s) ran: %s", action, group, at.isoformat(), outcome.sizes)
        for at, action in outcome.skipped:
            log.info("scheduled action %s of %s (due %s) skipped: ScheduledActions is suspended", action, group, at)
        for at, action, why in outcome.failed:
            if (group, action, why) not in self.reported:
                self.reported.add((group, action, why))
                log.warning("scheduled action %s of %s (due %s) failed: %s", action, group, at.isoformat(), why)


def scheduled_of(action) -> Scheduled:
    """A moto ``FakeScheduledAction`` as ``toolkit.local.autoscaler`` reads it."""
    return Scheduled(
        name=action.scheduled_action_name,
        recurrence=action.recurrence or None,
        time_zone=action.time_zone or None,
        start=moment(action.start_time),
        end=moment(action.end_time),
        min=action.min_size,
        max=action.max_size,
        desired=action.desired_capacity,
    )


def moment(stamp) -> datetime | None:
    """A StartTime or EndTime as moto keeps it (the request's ISO 8601 text, UTC) as an aware datetime."""
    if not stamp:
        return None
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def sizes_of(group) -> Sizes:
    return Sizes(int(group.min_size or 0), int(group.max_size or 0), int(group.desired_capacity or 0))


def suspended(group) -> bool:
    """True while the group's ``ScheduledActions`` process is suspended."""
    return any(p["ProcessName"] == autoscaler.PROCESS for p in group.suspended_processes)


def apply(backend, group, sizes: Sizes) -> None:
    """Give ``group`` these sizes; a new desired capacity through moto's SetDesiredCapacity path (launches, terminations)."""
    group.min_size, group.max_size = sizes.min, sizes.max
    if sizes.desired != int(group.desired_capacity or 0):
        backend.set_desired_capacity(group.name, sizes.desired)
