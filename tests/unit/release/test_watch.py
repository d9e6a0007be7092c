"""How long a step must be watched for the gate alarms to fire, as a table (issue 19, item 8)."""

from __future__ import annotations

import pytest

from toolkit.errors import ReleaseError
from toolkit.local import seed
from toolkit.release.watch import AlarmTiming, check, timing

ALB_5XX = {"AlarmName": "web-5xx", "Namespace": "AWS/ApplicationELB", "Period": 60, "EvaluationPeriods": 1}

TIMINGS = [
    # (alarm as DescribeAlarms returns it, seconds it needs at most)
    ("an ALB 5xx alarm, one minute", ALB_5XX, 60 + 60 + 60),
    ("3 of 5 minutes", dict(ALB_5XX, EvaluationPeriods=5, DatapointsToAlarm=3), 180 + 60 + 60),
    ("5 of 5 minutes (DatapointsToAlarm unset)", dict(ALB_5XX, EvaluationPeriods=5), 300 + 60 + 60),
    ("five-minute period", dict(ALB_5XX, Period=300), 300 + 60 + 60),
    ("high resolution, 10 s", dict(ALB_5XX, Period=10), 10 + 0 + 10),
    ("high resolution, 2 of 3 x 30 s", dict(ALB_5XX, Period=30, EvaluationPeriods=3, DatapointsToAlarm=2), 60 + 0 + 10),
    (
        "metric math: its longest period",
        {
            "AlarmName": "rate",
            "EvaluationPeriods": 2,
            "Metrics": [
                {"Id": "e", "Expression": "m1/m2"},
                {"Id": "m1", "MetricStat": {"Period": 60}},
                {"Id": "m2", "MetricStat": {"Period": 60}},
            ],
        },
        120 + 60 + 60,
    ),
]


@pytest.mark.parametrize(("alarm", "seconds"), [t[1:] for t in TIMINGS], ids=[t[0] for t in TIMINGS])
def test_seconds_to_fire(alarm, seconds):
    assert timing(alarm).seconds_to_fire() == seconds


def test_a_composite_alarm_has_no_timing_of_its_own():
    assert timing({"AlarmName": "any", "AlarmRule": "ALARM(web-5xx)"}) is None


def test_a_pause_shorter_than_the_slowest_alarm_is_refused_with_the_figure():
    alarms = [timing(ALB_5XX), AlarmTiming("fast", 10, 1)]
    with pytest.raises(ReleaseError) as caught:
        check(60, alarms)  # the default pause_seconds: the 10% step would be over a minute before web-5xx could fire
    assert caught.value.message == (
        "release.pause_seconds 60 is shorter than alarm web-5xx needs to fire: 180s (1 datapoint(s) of 60s, "
        "60s to publish, 60s to evaluate); a bad step would be over before it could"
    )
    assert (
        caught.value.hint
        == "set release.pause_seconds to at least 180 in rodeo.yml, or give the alarm a shorter period or fewer datapoints to alarm"
    )


@pytest.mark.parametrize(("pause", "alarms"), [(180, [timing(ALB_5XX)]), (0, []), (20, [AlarmTiming("local", 10, 1)])])
def test_a_long_enough_pause_passes(pause, alarms):
    check(pause, alarms)


def test_the_local_stack_obeys_the_same_rule():
    """inventories/local/rodeo.yml's pause lets the seeded alarm fire: no branch for the local stack."""
    from pathlib import Path

    from toolkit import config

    local = config.load("local", Path(__file__).resolve().parents[3])
    seeded = AlarmTiming("web-5xx", seed.ALARM_PERIOD, 1)  # seed._alarms: one period of ALARM_PERIOD
    check(local.release.pause_seconds, [seeded])
    with pytest.raises(ReleaseError):
        check(local.release.pause_seconds - 1, [seeded])
