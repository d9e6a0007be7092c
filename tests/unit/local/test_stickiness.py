"""Stickiness in the live stack's HAProxy config (toolkit.local.balancer) and the release's wait for it, as tables."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from toolkit.local.balancer import (
    Backend,
    Check,
    Frontend,
    render_config,
    render_group_stickiness,
    render_target_stickiness,
)
from toolkit.local.motostate import group_stickiness, target_stickiness
from toolkit.release.slots import stickiness_seconds


def test_a_sticky_forward_action_sends_a_valid_cookie_to_its_group_whatever_the_weights():
    lines = render_group_stickiness(Frontend("fe", 8000, sticky_seconds=120, sticky_backends=("tg-blue", "tg-green")))
    assert lines == [
        "  acl tg_stuck req.cook(AWSALBTG) -m str tg-blue tg-green",
        "  http-request set-var(txn.tg_stuck) req.cook(AWSALBTG) if tg_stuck",
        "  use_backend %[req.cook(AWSALBTG)] if tg_stuck",
        '  http-response add-header Set-Cookie "AWSALBTG=%[be_name]; Max-Age=120; Path=/" if { be_name -m str tg-blue tg-green } !{ var(txn.tg_stuck) -m found }',
    ]


@pytest.mark.parametrize(
    "frontend",
    [
        Frontend("fe", 8000),
        Frontend("fe", 8000, sticky_seconds=0, sticky_backends=("tg-blue",)),
        Frontend("fe", 8000, sticky_seconds=60),
    ],
)
def test_no_group_stickiness_without_it_on_the_action(frontend):
    assert render_group_stickiness(frontend) == []


def test_target_stickiness_is_a_stick_table_keyed_by_the_awsalb_cookie():
    lines = render_target_stickiness(Backend("tg-blue", Check(), sticky_seconds=30))
    assert lines[0] == "  stick-table type string len 40 size 100k expire 30s"
    assert lines[-1] == '  http-response add-header Set-Cookie "AWSALB=%[var(txn.awsalb)]; Max-Age=30; Path=/"'
    assert render_target_stickiness(Backend("tg-blue", Check())) == []


def test_the_config_puts_stickiness_before_the_weights():
    text = render_config(Path("/run/x"), [Frontend("fe", 8000, 60, ("tg-b",))], [Backend("tg-b", Check(), 30)], [])
    lines = text.splitlines()
    assert lines.index("  use_backend %[req.cook(AWSALBTG)] if tg_stuck") < lines.index(
        "  use_backend %[rand(100),map_int(/run/x/fe.map,no-targets)]"
    )
    assert "  stick match var(txn.awsalb)" in lines


def listener(config: dict | None):
    data = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [],
            **({"TargetGroupStickinessConfig": config} if config is not None else {}),
        },
    }
    return SimpleNamespace(default_actions=[SimpleNamespace(type="forward", data=data)])


@pytest.mark.parametrize(
    "config,seconds",
    [
        (None, 0),
        ({"Enabled": False}, 0),
        ({"Enabled": True, "DurationSeconds": 300}, 300),
        ({"Enabled": "true", "DurationSeconds": "60"}, 60),
    ],
)
def test_group_stickiness_of_a_listener(config, seconds):
    assert group_stickiness(listener(config)) == seconds


@pytest.mark.parametrize(
    "attributes,seconds",
    [
        ({}, 0),
        ({"stickiness.enabled": "false"}, 0),
        ({"stickiness.enabled": "true", "stickiness.type": "lb_cookie"}, 86400),
        (
            {
                "stickiness.enabled": "true",
                "stickiness.type": "lb_cookie",
                "stickiness.lb_cookie.duration_seconds": "45",
            },
            45,
        ),
        ({"stickiness.enabled": "true", "stickiness.type": "app_cookie"}, 0),
    ],
)
def test_target_stickiness_of_a_target_group(attributes, seconds):
    assert target_stickiness(SimpleNamespace(attributes=attributes)) == seconds


@pytest.mark.parametrize(
    "action,seconds",
    [
        ({}, 0),
        ({"ForwardConfig": {"TargetGroupStickinessConfig": {"Enabled": False, "DurationSeconds": 300}}}, 0),
        ({"ForwardConfig": {"TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 300}}}, 300),
    ],
)
def test_stickiness_seconds_of_the_listener_action_a_release_waits_out(action, seconds):
    assert stickiness_seconds(SimpleNamespace(action=action)) == seconds
