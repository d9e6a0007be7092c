"""Target tracking on ALBRequestCountPerTarget, decided as EC2 Auto Scaling decides it (toolkit.local.tracking): tables."""

from __future__ import annotations

import pytest

from toolkit.local.tracking import HIGH_PERIODS, LOW_PERIODS, Tracker, Want, alarm, decide, periods, want

TARGET = 100.0  # requests per target per period
T = Tracker("rodeo-requests", TARGET, "app/web/1/targetgroup/web-blue/2", warmup=30)
KEEP_IN = Tracker("rodeo-requests", TARGET, "app/web/1/targetgroup/web-blue/2", disable_scale_in=True)
LOW = [50.0] * LOW_PERIODS
HIGH = [50.0] * (LOW_PERIODS - HIGH_PERIODS) + [250.0] * HIGH_PERIODS


def test_periods_sum_each_window_ending_now_and_leave_empty_ones_missing():
    samples = [(100.0, 1.0), (100.5, 2.0), (101.0, 4.0), (104.5, 8.0), (90.0, 16.0)]
    assert periods(samples, now=105.0, period=2.0, count=3) == [7.0, None, 8.0]  # (99,101], (101,103], (103,105]
    # CPU (ASGAverageCPUUtilization) reads each period's Average
    assert periods(samples, now=105.0, period=2.0, count=3, average=True) == [7.0 / 3, None, 8.0]


# (name, values oldest first, state)
ALARMS = [
    ("three periods above the target", HIGH, "high"),
    ("two above, the third at the target", LOW[:-3] + [250.0, 250.0, 100.0], None),
    ("a missing period is not a breach", LOW[:-3] + [250.0, None, 250.0], None),
    ("fifteen periods under 90% of the target", LOW, "low"),
    ("fourteen under, one at 90%", LOW[:-1] + [90.0], None),
    ("no requests at all: insufficient data", [None] * LOW_PERIODS, None),
    ("fewer periods than the low alarm reads", [50.0] * (LOW_PERIODS - 1), None),
]


@pytest.mark.parametrize("name,values,state", ALARMS, ids=[a[0] for a in ALARMS])
def test_alarm(name, values, state):
    assert alarm(values, TARGET) == state


# (name, policy, values, desired, warmed, warming, want)
WANTS = [
    ("out in proportion: 2 at 250 need 5", T, HIGH, 2, 2, 0, Want(5)),
    ("a warming instance counts toward desired, not the metric's base", T, HIGH, 5, 2, 3, Want(None)),
    ("more load while warming: out again beyond desired", T, LOW[:-3] + [400.0] * 3, 5, 2, 3, Want(8)),
    ("in to what keeps the metric under the target", T, LOW, 4, 4, 0, Want(2, scale_in=True)),
    ("no scale-in while an instance warms up", T, LOW, 4, 3, 1, Want(None, scale_in=True)),
    ("scale-in disabled", KEEP_IN, LOW, 4, 4, 0, Want(None)),
    ("scale-in disabled still scales out", KEEP_IN, HIGH, 2, 2, 0, Want(5)),
    ("between the alarms: nothing", T, [95.0] * LOW_PERIODS, 3, 3, 0, Want(None, scale_in=True)),
]


@pytest.mark.parametrize("name,policy,values,desired,warmed,warming,expected", WANTS, ids=[w[0] for w in WANTS])
def test_want(name, policy, values, desired, warmed, warming, expected):
    assert want(policy, values, desired, warmed, warming) == expected


# (name, wants, desired, min, max, new desired or None)
DECISIONS = [
    ("out to the largest want", [Want(5), Want(3)], 2, 1, 10, 5),
    ("out capped at the maximum", [Want(9)], 2, 1, 4, 4),
    ("already at the maximum: no change", [Want(9)], 4, 1, 4, None),
    ("out wins over another policy's in", [Want(5), Want(1, scale_in=True)], 2, 1, 10, 5),
    (
        "in only when every policy with scale-in wants less",
        [Want(2, scale_in=True), Want(None, scale_in=True)],
        4,
        1,
        10,
        None,
    ),
    ("in to the largest of them", [Want(2, scale_in=True), Want(3, scale_in=True)], 4, 1, 10, 3),
    ("a policy with scale-in disabled does not vote", [Want(2, scale_in=True), Want(None)], 4, 1, 10, 2),
    ("in never below the minimum", [Want(1, scale_in=True)], 4, 2, 10, 2),
    ("no policy with scale-in: never in", [Want(None)], 4, 1, 10, None),
]


@pytest.mark.parametrize("name,wants,desired,low,high,expected", DECISIONS, ids=[d[0] for d in DECISIONS])
def test_decide(name, wants, desired, low, high, expected):
    assert decide(wants, desired, low, high) == expected
