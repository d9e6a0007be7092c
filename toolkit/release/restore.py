"""What a rollback restores: the release (AMI, config version), and the config version that makes it stick.

``invoke rollback`` restores the pair live before the last release that moved
traffic (``plan.rollback_release``); ``--to vN`` release N's pair from the
ledger (``history.find``). Either is a new release: the config version it
restores is first made the newest (``make_newest``, ``configvars.pin.restore``:
a copy when a newer one exists), and that copy is what it releases, so the
next release or config change builds on it. Two cases release the pair as it
is instead: undoing a half-done release (the older slot serves it already),
and a rerun or second rollback finding it live (nothing to launch).
"""

from __future__ import annotations

from typing import Any, Callable

from toolkit.config import Config
from toolkit.release import ledger, scaled, slots
from toolkit.release.history import find
from toolkit.release.planner import Plan, State, restore_plan, rollback_release
from toolkit.release.planner import rollback_plan as plan_back


def rollback_plan(config: Config, aws: Any, state: State, to: int | None, make_newest: Callable[[int], int]) -> Plan:
    """The rollback's Plan (``to``: release vN's); ``make_newest(number)`` makes config version ``number``'s keys the newest
    and returns the version holding them (``--plan`` passes one that writes nothing)."""
    rel = slots.release_of(config)
    if to is None:
        history = ledger.recent(config, aws)
        ami, number = rollback_release(state, history)
    else:
        history = ledger.every(config, aws)
        entry = find(history, to)
        ami, number = entry["to_ami"], int(entry.get("config_version") or 0)
    size = scaled.capacity(config, aws)

    def pick(config_version: int) -> Plan:
        if to is None:
            return plan_back(state, rel, history, (ami, config_version), size)
        return restore_plan(state, rel, ami, config_version, size)

    planned = pick(number)  # refuses (nothing written) when it cannot be done
    sticky = make_newest(number)
    if state.split:
        return planned  # undoing a half-done release: the older slot serves it as it is (the copy still makes it the newest)
    live = state.active
    if live.ami == ami and live.config in (number, sticky):
        return pick(live.config)  # it serves already (a rerun, a second rollback): nothing to launch
    return pick(sticky)
