"""Scheduled actions as EC2 Auto Scaling runs them (toolkit.local.autoscaler): which fire in a window, what the group becomes (tables)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from toolkit.local.autoscaler import Outcome, Scheduled, Sizes, finished, fire_times, resize, run

UTC = timezone.utc


def at(*args):
    return datetime(*args, tzinfo=UTC)


NIGHT = Scheduled("night", "0 22 * * *", "Europe/Berlin", min=1, max=4, desired=1)
MORNING = Scheduled("morning", "0 7 * * *", "Europe/Berlin", min=2)
DAY = Sizes(2, 4, 3)

# (name, action, since, now, fire times in (since, now])
FIRES = [
    ("22:00 Berlin in winter is 21:00 UTC", NIGHT, at(2026, 12, 5, 20), at(2026, 12, 5, 22), [at(2026, 12, 5, 21)]),
    ("a tick just before fires nothing", NIGHT, at(2026, 12, 5, 20), at(2026, 12, 5, 20, 59, 59), []),
    ("the window's start was seen already", NIGHT, at(2026, 12, 5, 21), at(2026, 12, 5, 21, 0, 1), []),
    (
        "across the spring change: 21:00 UTC, then 20:00 UTC",
        NIGHT,
        at(2026, 3, 28),
        at(2026, 3, 30),
        [at(2026, 3, 28, 21), at(2026, 3, 29, 20)],
    ),
    (
        "across the autumn change: 20:00 UTC, then 21:00 UTC",
        NIGHT,
        at(2026, 10, 24),
        at(2026, 10, 26),
        [at(2026, 10, 24, 20), at(2026, 10, 25, 21)],
    ),
    ("no zone is UTC", Scheduled("n", "0 22 * * *"), at(2026, 12, 5), at(2026, 12, 6), [at(2026, 12, 5, 22)]),
    (
        "not before its start time, and at its start time",
        Scheduled("n", "0 22 * * *", start=at(2026, 12, 6, 12)),
        at(2026, 12, 5),
        at(2026, 12, 7),
        [at(2026, 12, 6, 12), at(2026, 12, 6, 22)],
    ),
    (
        "not after its end time",
        Scheduled("n", "0 22 * * *", end=at(2026, 12, 6, 12)),
        at(2026, 12, 5),
        at(2026, 12, 8),
        [at(2026, 12, 5, 22)],
    ),
    (
        "a one-time action fires at its start time",
        Scheduled("once", start=at(2026, 12, 5, 9, 30)),
        at(2026, 12, 5),
        at(2026, 12, 6),
        [at(2026, 12, 5, 9, 30)],
    ),
    (
        "a one-time action later than the window",
        Scheduled("once", start=at(2026, 12, 7)),
        at(2026, 12, 5),
        at(2026, 12, 6),
        [],
    ),
]


@pytest.mark.parametrize("name,action,since,now,expected", FIRES, ids=[f[0] for f in FIRES])
def test_fire_times(name, action, since, now, expected):
    assert fire_times(action, since, now) == expected


# (name, sizes before, action, sizes after or the error AWS gives)
RESIZES = [
    ("all three given", DAY, NIGHT, Sizes(1, 4, 1)),
    ("a new minimum above the desired capacity raises it", Sizes(1, 4, 1), MORNING, Sizes(2, 4, 2)),
    ("a new maximum below the desired capacity lowers it", DAY, Scheduled("cap", "* * * * *", max=2), Sizes(2, 2, 2)),
    ("only the desired capacity", DAY, Scheduled("d", "* * * * *", desired=4), Sizes(2, 4, 4)),
    (
        "a desired capacity above the maximum fails",
        DAY,
        Scheduled("d", "* * * * *", desired=5),
        "Desired capacity:5 must be between the specified min size:2 and max size:4",
    ),
    (
        "a desired capacity below the new minimum fails",
        DAY,
        Scheduled("d", "* * * * *", min=3, desired=2),
        "Desired capacity:2 must be between the specified min size:3 and max size:4",
    ),
    (
        "a minimum above the maximum fails",
        DAY,
        Scheduled("m", "* * * * *", min=5),
        "Max bound, 4, must be greater than or equal to min bound, 5",
    ),
]


@pytest.mark.parametrize("name,before,action,expected", RESIZES, ids=[r[0] for r in RESIZES])
def test_resize(name, before, action, expected):
    if isinstance(expected, Sizes):
        assert resize(before, action) == expected
    else:
        with pytest.raises(ValueError) as raised:
            resize(before, action)
        assert str(raised.value) == expected


# (name, action, now, gone)
FINISHED = [
    ("a recurring one without an end", NIGHT, at(2030, 1, 1), False),
    ("a recurring one before its end", Scheduled("n", "0 22 * * *", end=at(2026, 12, 6)), at(2026, 12, 5), False),
    ("a recurring one at its end", Scheduled("n", "0 22 * * *", end=at(2026, 12, 6)), at(2026, 12, 6), True),
    ("a one-time one before its time", Scheduled("once", start=at(2026, 12, 6)), at(2026, 12, 5), False),
    ("a one-time one once it ran", Scheduled("once", start=at(2026, 12, 6)), at(2026, 12, 6), True),
]


@pytest.mark.parametrize("name,action,now,gone", FINISHED, ids=[f[0] for f in FINISHED])
def test_finished(name, action, now, gone):
    assert finished(action, now) is gone


# (name, sizes, actions, since, now, suspended, outcome)
RUNS = [
    (
        "night comes",
        DAY,
        [NIGHT, MORNING],
        at(2026, 12, 5, 20, 59, 59, 500000),
        at(2026, 12, 5, 21),
        False,
        Outcome(Sizes(1, 4, 1), ran=((at(2026, 12, 5, 21), "night"),)),
    ),
    (
        "a clock moved over night and morning runs both in order",
        DAY,
        [MORNING, NIGHT],
        at(2026, 12, 5, 20),
        at(2026, 12, 6, 6, 0, 1),
        False,
        Outcome(Sizes(2, 4, 2), ran=((at(2026, 12, 5, 21), "night"), (at(2026, 12, 6, 6), "morning"))),
    ),
    (
        "suspended: skipped, not run late",
        DAY,
        [NIGHT],
        at(2026, 12, 5, 20),
        at(2026, 12, 5, 22),
        True,
        Outcome(DAY, skipped=((at(2026, 12, 5, 21), "night"),)),
    ),
    (
        "a failing action leaves the group as it was, the next one runs",
        DAY,
        [Scheduled("too-many", "30 20 * * *", desired=9), NIGHT],
        at(2026, 12, 5, 20),
        at(2026, 12, 5, 22),
        False,
        Outcome(
            Sizes(1, 4, 1),
            ran=((at(2026, 12, 5, 21), "night"),),
            failed=(
                (
                    at(2026, 12, 5, 20, 30),
                    "too-many",
                    "Desired capacity:9 must be between the specified min size:2 and max size:4",
                ),
            ),
        ),
    ),
    (
        "a one-time action runs and is gone",
        DAY,
        [Scheduled("once", start=at(2026, 12, 5, 12), desired=4)],
        at(2026, 12, 5, 11, 59, 59),
        at(2026, 12, 5, 12),
        False,
        Outcome(Sizes(2, 4, 4), ran=((at(2026, 12, 5, 12), "once"),), finished=frozenset({"once"})),
    ),
    (
        "a one-time action due while suspended is skipped and gone",
        DAY,
        [Scheduled("once", start=at(2026, 12, 5, 12), desired=4)],
        at(2026, 12, 5, 11),
        at(2026, 12, 5, 13),
        True,
        Outcome(DAY, skipped=((at(2026, 12, 5, 12), "once"),), finished=frozenset({"once"})),
    ),
    (
        "an unknown time zone fails and changes nothing",
        DAY,
        [Scheduled("lost", "0 22 * * *", "Mars/Olympus", desired=1)],
        at(2026, 12, 5, 20),
        at(2026, 12, 5, 23),
        False,
        Outcome(DAY, failed=((at(2026, 12, 5, 23), "lost", "lost: 'No time zone found with key Mars/Olympus'"),)),
    ),
]


@pytest.mark.parametrize("name,sizes,actions,since,now,suspended,expected", RUNS, ids=[r[0] for r in RUNS])
def test_run(name, sizes, actions, since, now, suspended, expected):
    assert run(sizes, actions, since, now, suspended) == expected
