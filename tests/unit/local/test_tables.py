"""The live stack's pure parts, as tables: weight maps, matchers, HAProxy config, target health."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.local.balancer import NO_TARGETS, Backend, Check, Frontend, Server, apportion, matcher_regex, render_config
from toolkit.local.health import target_health


@pytest.mark.parametrize(
    "weights,expected",
    [
        ([("blue", 100), ("green", 0)], {"blue": 100}),
        ([("blue", 90), ("green", 10)], {"blue": 90, "green": 10}),
        ([("blue", 1), ("green", 1)], {"blue": 50, "green": 50}),
        ([("a", 1), ("b", 1), ("c", 1)], {"a": 34, "b": 33, "c": 33}),
        ([("blue", 0), ("green", 0)], {NO_TARGETS: 100}),
        ([], {NO_TARGETS: 100}),
        ([("blue", 999), ("green", 1)], {"blue": 100}),
    ],
)
def test_apportion_fills_100_slots_in_proportion(weights, expected):
    entries = apportion(weights)
    assert len(entries) == 100
    assert {name: entries.count(name) for name in set(entries)} == expected


@pytest.mark.parametrize(
    "codes,regex",
    [("200", "^(200)$"), ("200,202", "^(200|202)$"), ("200-202", "^(200|201|202)$"), ("302, 200-201", "^(200|201|302)$")],
)
def test_matcher_regex(codes, regex):
    assert matcher_regex(codes) == regex


def test_config_has_a_frontend_per_listener_and_a_checked_backend_per_group():
    check = Check(path="/health", interval=5, timeout=2, rise=2, fall=3, matcher="200-201")
    text = render_config(Path("/run/x"), [Frontend("lb-web-80-abc", 40001)], [Backend("tg-web-blue-1", check)], [Server("tg-web-blue-1", "i-1-8080", "/run/x/i-1-8080.sock")])
    assert "bind 127.0.0.1:40001" in text
    assert "use_backend %[rand(100),map_int(/run/x/lb-web-80-abc.map,no-targets)]" in text
    assert "option httpchk GET /health" in text and "http-check expect rstatus ^(200|201)$" in text and "timeout check 2s" in text
    assert "server i-1-8080 unix@/run/x/i-1-8080.sock check inter 5s rise 2 fall 3" in text
    assert "0.0.0.0" not in text


CHECK = Check(interval=5, timeout=2, rise=2, fall=2)
UP = {"status": "UP", "check_status": "L7OK"}


@pytest.mark.parametrize(
    "row,kwargs,expected",
    [
        (None, {}, ("initial", "Elb.RegistrationInProgress")),
        ({"status": "DOWN", "check_status": "INI"}, {}, ("initial", "Elb.InitialHealthChecking")),
        ({"status": "DOWN 1/2", "check_status": "L7OK"}, {}, ("initial", "Elb.InitialHealthChecking")),
        (UP, {}, ("healthy", None)),
        ({"status": "UP 1/2", "check_status": "L4CON"}, {"seen_up": True}, ("healthy", None)),
        ({"status": "DOWN", "check_status": "L7STS", "check_code": "500"}, {"seen_up": True}, ("unhealthy", "Target.ResponseCodeMismatch")),
        ({"status": "DOWN", "check_status": "L7TOUT"}, {"seen_up": True}, ("unhealthy", "Target.Timeout")),
        ({"status": "DOWN", "check_status": "L4CON"}, {"seen_up": True}, ("unhealthy", "Target.FailedHealthChecks")),
        ({"status": "DOWN", "check_status": "L7RSP"}, {"age": 60.0}, ("unhealthy", "Target.FailedHealthChecks")),
        ({"status": "DOWN", "check_status": "L7RSP"}, {"age": 1.0}, ("initial", "Elb.InitialHealthChecking")),
        (UP, {"draining": True}, ("draining", "Target.DeregistrationInProgress")),
        (UP, {"in_use": False}, ("unused", "Target.NotInUse")),
        (UP, {"instance_state": "stopped"}, ("unused", "Target.InvalidState")),
        (None, {"instance_state": "pending"}, ("initial", "Elb.RegistrationInProgress")),
    ],
)
def test_target_health(row, kwargs, expected):
    args = {"instance_state": "running", "in_use": True, "draining": False, "seen_up": False, "age": 0.0, **kwargs}
    assert target_health(row, CHECK, **args)[:2] == expected
