"""Listener rules in the live stack's HAProxy (toolkit.local.listenerrules, motostate.rules_of), as tables."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from toolkit.local.balancer import Backend, Check, Frontend, render_config
from toolkit.local.listenerrules import Rule, map_name, pattern, render_rules, rule_of, write_patterns
from toolkit.local.motostate import World, backend_name, rules_of


@pytest.mark.parametrize(
    "value,matches,misses",
    [
        ("pr-7.review.localhost", ["pr-7.review.localhost"], ["pr-70.review.localhost", "xpr-7.review.localhost"]),
        ("*.review.example.com", ["a.review.example.com", "a.b.review.example.com"], ["review.example.com"]),
        ("pr-?.review.localhost", ["pr-1.review.localhost"], ["pr-12.review.localhost"]),
        ("/review/*", ["/review/", "/review/a/b"], ["/review", "/reviews/a"]),
        ("/a+b$c/(x)", ["/a+b$c/(x)"], ["/aab$c/x"]),  # regex characters an ALB pattern may hold are literal
    ],
)
def test_a_condition_value_is_an_anchored_pattern_with_the_albs_two_wildcards(value, matches, misses):
    regex = re.compile(pattern(value))
    assert all(regex.match(m) for m in matches) and not any(regex.match(m) for m in misses)


@pytest.mark.parametrize(
    "conditions,expected",
    [
        ([{"Field": "host-header", "HostHeaderConfig": {"Values": ["a.x.io"]}}], Rule("r", 1, hosts=("a.x.io",))),
        ([{"Field": "host-header", "Values": ["a.x.io"]}], Rule("r", 1, hosts=("a.x.io",))),
        (
            [
                {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/a/*", "/b"]}},
                {"Field": "host-header", "Values": ["a.x.io"]},
            ],
            Rule("r", 1, hosts=("a.x.io",), paths=("/a/*", "/b")),
        ),
        # Conditions the stack does not serve: the whole rule is left out, never served as a looser one.
        ([{"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET"]}}], None),
        (
            [{"Field": "host-header", "Values": ["a.x.io"]}, {"Field": "source-ip", "SourceIpConfig": {"Values": []}}],
            None,
        ),
        ([], None),
    ],
)
def test_a_rules_conditions(conditions, expected):
    assert rule_of("r", 1, conditions) == expected


def test_rules_come_in_priority_order_before_the_default_action_and_its_stickiness(tmp_path):
    late, early = Rule("r900-b", 900, hosts=("b.x.io",)), Rule("r5-a", 5, hosts=("a.x.io",), paths=("/api/*",))
    fe = Frontend("fe", 8000, sticky_seconds=60, sticky_backends=("tg-blue",), rules=(late, early))
    lines = render_config(Path("/run/x"), [fe], [Backend("tg-blue", Check())], []).splitlines()
    uses = [line for line in lines if line.startswith("  use_backend")]
    assert uses == [
        "  use_backend %[rand(100),map_int(/run/x/fe-r5-a.map,no-targets)] if r5-a-host r5-a-path",
        "  use_backend %[rand(100),map_int(/run/x/fe-r900-b.map,no-targets)] if r900-b-host",
        "  use_backend %[req.cook(AWSALBTG)] if tg_stuck",
        "  use_backend %[rand(100),map_int(/run/x/fe.map,no-targets)]",
    ]
    assert "  acl r5-a-host req.hdr(host),field(1,:),lower -m reg -i -f /run/x/fe-r5-a-host.pat" in lines
    assert "  acl r5-a-path path -m reg -f /run/x/fe-r5-a-path.pat" in lines


def test_the_patterns_are_files_one_value_a_line(tmp_path):
    rule = Rule("r5-a", 5, hosts=("a.x.io", "*.y.io"), paths=("/it's",))
    write_patterns(tmp_path, {"fe": (rule,)})
    assert (tmp_path / "fe-r5-a-host.pat").read_text() == "^a\\.x\\.io$\n^.*\\.y\\.io$\n"
    assert (tmp_path / "fe-r5-a-path.pat").read_text() == "^/it's$\n"  # a quote needs no HAProxy quoting in a file
    assert render_rules(tmp_path, "fe", (), "no-targets") == []


def _rule(priority, conditions, actions, arn="arn:rule/1"):
    return SimpleNamespace(
        priority=priority,
        arn=arn,
        conditions=conditions,
        actions=[SimpleNamespace(type=a["Type"], data=a) for a in actions],
        is_default=False,
    )


def test_moto_rules_become_rules_with_their_weights_and_unserved_ones_are_left_out():
    review = SimpleNamespace(name="rv-a", arn="arn:tg/review")
    blue = SimpleNamespace(name="web-blue", arn="arn:tg/blue")
    world = World({}, {review.arn: review, blue.arn: blue}, {}, set())
    host = [{"Field": "host-header", "Values": ["a.review.localhost"]}]
    listener = SimpleNamespace(
        rules={
            "1": _rule("40001", host, [{"Type": "forward", "TargetGroupArn": review.arn}], "arn:rule/1"),
            "2": _rule(
                7,
                host,
                [
                    {
                        "Type": "forward",
                        "ForwardConfig": {
                            "TargetGroups": [
                                {"TargetGroupArn": blue.arn, "Weight": 3},
                                {"TargetGroupArn": review.arn, "Weight": 1},
                            ]
                        },
                    }
                ],
                "arn:rule/2",
            ),
            "3": _rule(9, host, [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]),
            "default": SimpleNamespace(is_default=True, priority="default"),
        }
    )
    served = rules_of(listener, world)
    assert [(r.priority, weights) for r, weights in served] == [
        (7, [(backend_name(blue), 3), (backend_name(review), 1)]),
        (40001, [(backend_name(review), 1)]),
    ]
    assert served[0][0].name.startswith("r7-") and map_name("fe", served[0][0]) == f"fe-{served[0][0].name}"


def test_a_listener_forwards_to_its_default_actions_groups_and_its_rules():
    from toolkit.local.motostate import forwarded

    default = SimpleNamespace(
        type="forward", data={"ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "arn:tg/blue"}]}}
    )
    host = [{"Field": "host-header", "Values": ["a.review.localhost"]}]
    listener = SimpleNamespace(
        default_actions=[default],
        rules={
            "1": _rule(40001, host, [{"Type": "forward", "TargetGroupArn": "arn:tg/review"}]),
            "2": _rule(40002, host, [{"Type": "forward", "TargetGroupArn": "arn:tg/blue"}], "arn:rule/2"),
        },
    )
    # In use (its targets checked and served), and the load balancer's (for the security groups' check).
    assert forwarded(listener) == ["arn:tg/blue", "arn:tg/review"]


def test_a_target_group_reached_only_through_a_rule_gets_its_alb_metrics():
    """A review app's target group is forwarded to by a rule, not by the listener's default action: the monitor still
    names its HAProxy backend, so its requests reach CloudWatch as AWS/ApplicationELB metrics of that target group."""
    from toolkit.canary.metrics import dimension_value
    from toolkit.local.metrics import alb_datums
    from toolkit.local.monitor import names_by_balancer

    lb = SimpleNamespace(arn="arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/web/50dc")
    blue = SimpleNamespace(name="web-blue", arn="arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-blue/1a")
    review = SimpleNamespace(name="rv-a", arn="arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/rv-a/2b")
    host = [{"Field": "host-header", "Values": ["a.review.localhost"]}]
    listener = SimpleNamespace(
        default_actions=[SimpleNamespace(type="forward", data={"TargetGroupArn": blue.arn})],
        rules={"1": _rule(40001, host, [{"Type": "forward", "TargetGroupArn": review.arn}])},
    )
    world = World({}, {blue.arn: blue, review.arn: review}, {"arn:listener/80": (lb, listener)}, set())
    names = names_by_balancer(world, {"arn:listener/80": SimpleNamespace(name="fe-80")})[lb.arn]
    lb_value = dimension_value(lb.arn)
    assert names.groups == {
        backend_name(blue): (lb_value, dimension_value(blue.arn)),
        backend_name(review): (lb_value, dimension_value(review.arn)),
    }
    row = {"req_tot": 3, "hrsp_2xx": 3, "hrsp_5xx": 0, "rtime": 4}
    delta = {(backend_name(review), "BACKEND"): row, ("fe-80", "FRONTEND"): row}
    counted = {
        tuple(d["Value"] for d in datum["Dimensions"]): datum["Value"]
        for datum in alb_datums(delta, names)
        if datum["MetricName"] == "RequestCount"
    }
    assert counted == {(lb_value, "targetgroup/rv-a/2b"): 3.0, (lb_value,): 3.0}
