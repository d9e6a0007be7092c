"""The settling window of the local stack's eventual consistency, and its health checks' timing, on fake clocks."""

from __future__ import annotations

import pytest

from toolkit.local.awsrules import (
    CHECKING,
    DEFAULT_HEALTH_SCALE,
    DEFAULT_SETTLE_SECONDS,
    HEALTH_SCALE_ENV,
    INITIAL,
    Settling,
    health_scale,
    initial_health,
    settle_seconds,
    time_to_healthy,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_only_the_first_use_within_the_window_is_refused():
    clock = Clock()
    settling = Settling(5, clock)
    settling.made("sg-1")
    settling.made("sg-2")
    assert [settling.refuse("sg-1"), settling.refuse("sg-1")] == [True, False]
    clock.now += 5
    assert settling.refuse("sg-2") is False  # first used after the window: ready
    assert settling.refuse("sg-never-made") is False


def test_what_a_describe_found_is_settled():
    settling = Settling(5, Clock())
    settling.made("sg-1")
    settling.settle("sg-1")
    assert settling.refuse("sg-1") is False


def test_a_window_of_zero_refuses_nothing():
    settling = Settling(0, Clock())
    settling.made("lt-1")
    assert settling.refuse("lt-1") is False


@pytest.mark.parametrize(
    "value, seconds",
    [(None, DEFAULT_SETTLE_SECONDS), ("0", 0.0), ("2.5", 2.5), ("-3", 0.0), ("soon", DEFAULT_SETTLE_SECONDS)],
)
def test_the_window_comes_from_the_environment(monkeypatch, value, seconds):
    if value is None:
        monkeypatch.delenv("RODEO_LOCAL_SETTLE_SECONDS", raising=False)
    else:
        monkeypatch.setenv("RODEO_LOCAL_SETTLE_SECONDS", value)
    assert settle_seconds() == seconds


@pytest.mark.parametrize(
    "value, scale",
    [(None, DEFAULT_HEALTH_SCALE), ("0", 0.0), ("0.2", 0.2), ("-1", 0.0), ("fast", DEFAULT_HEALTH_SCALE)],
)
def test_the_health_check_scale_comes_from_the_environment(monkeypatch, value, scale):
    if value is None:
        monkeypatch.delenv(HEALTH_SCALE_ENV, raising=False)
    else:
        monkeypatch.setenv(HEALTH_SCALE_ENV, value)
    assert health_scale() == scale


@pytest.mark.parametrize(
    "interval, threshold, scale, expected",
    [
        (5, 2, 0.05, (0.25, 0.5)),  # the seeded target groups: 0.5 s to healthy
        (None, None, 0.05, (1.5, 7.5)),  # AWS's defaults: every 30 s, 5 to pass
        ("10", "3", 1.0, (10.0, 30.0)),  # unscaled: AWS's own time
        (5, 2, 0.0, (0.0, 0.0)),
    ],
)
def test_time_to_healthy_is_the_groups_checks_scaled(interval, threshold, scale, expected):
    assert time_to_healthy(interval, threshold, scale) == expected


@pytest.mark.parametrize(
    "age, expected", [(0.0, INITIAL), (0.24, INITIAL), (0.25, CHECKING), (0.49, CHECKING), (0.5, None), (60.0, None)]
)
def test_a_new_target_registers_then_is_checked_then_passes(age, expected):
    assert initial_health(age, 0.25, 0.5) == expected


HOST = "host-header"


@pytest.mark.parametrize(
    "priority,conditions,refused",
    [
        (1, [{"Field": HOST, "Values": ["pr-7.review.localhost"]}], None),
        (50000, [{"Field": HOST, "HostHeaderConfig": {"Values": ["*.review.example.com"]}}], None),
        ("40001", [{"Field": "path-pattern", "Values": ["/a_b-c.$/~\"'@:+&*?"]}], None),
        (None, [{"Field": HOST, "Values": ["a.b.io"]}, {"Field": "http-header", "HttpHeaderConfig": {}}], None),
        (50001, [], "Member must have value less than or equal to 50000"),
        (0, [], "Member must have value greater than or equal to 1"),
        (1, [{"Field": HOST, "Values": ["localhost"]}], "'localhost' contains characters"),  # no '.'
        (1, [{"Field": HOST, "Values": ["a.b.io1"]}], "'a.b.io1'"),  # a digit after the last '.'
        (1, [{"Field": HOST, "Values": ["a b.io"]}], "'a b.io'"),
        (1, [{"Field": "path-pattern", "Values": ["/a#b"]}], "'/a#b'"),
        (1, [{"Field": HOST, "Values": ["a.io"]}, {"Field": HOST, "Values": ["b.io"]}], "at most one 'host-header'"),
        (
            1,
            [
                {"Field": HOST, "Values": ["a.io", "b.io", "c.io"]},
                {"Field": "path-pattern", "Values": ["/a", "/b", "/c"]},
            ],
            "at most '5' condition values",
        ),
        (
            1,
            [{"Field": HOST, "Values": ["*.*.*.io"]}, {"Field": "path-pattern", "Values": ["/*/*/*"]}],
            "at most '5' wildcards",
        ),
    ],
)
def test_listener_rules_as_aws_refuses_them(priority, conditions, refused):
    from toolkit.local.awsrules import rule_refusal

    found = rule_refusal(priority, conditions)
    assert (found is None) if refused is None else (refused in found)
