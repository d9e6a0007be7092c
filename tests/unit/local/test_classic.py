"""Classic ELBs' pure parts, as tables: AWS's rules, health checks as HAProxy's, instance health, attachment states."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolkit.local import classic, health
from toolkit.local.balancer import Backend, Check, render_config
from toolkit.local.health import instance_health

CHECK = {"Target": "HTTP:8080/health", "Interval": 5, "Timeout": 2, "HealthyThreshold": 2, "UnhealthyThreshold": 3}


@pytest.mark.parametrize(
    "target, parsed",
    [
        ("HTTP:8080/health", classic.Target("HTTP", 8080, "/health")),
        ("http:80/", classic.Target("HTTP", 80, "/")),
        ("HTTPS:443/a/b?c=d", classic.Target("HTTPS", 443, "/a/b?c=d")),
        ("TCP:22", classic.Target("TCP", 22, "")),
        ("SSL:465", classic.Target("SSL", 465, "")),
    ],
)
def test_a_health_check_target_as_aws_reads_it(target, parsed):
    assert classic.parse_target(target) == parsed


@pytest.mark.parametrize(
    "target, why",
    [
        ("HTTP:8080", "an HTTP target needs a path"),
        ("TCP:80/health", "a TCP target takes no path"),
        ("HTTPX:80/", "it must be one of"),
        ("UDP:53", "it must be one of"),
        ("HTTP:0/", "the port must be from 1 to 65535"),
        ("HTTP:65536/", "the port must be from 1 to 65535"),
        ("HTTP/health", "it must be one of"),
        ("", "it must be one of"),
        ("HTTP:80/" + "a" * 1024, "longer than 1024"),
    ],
)
def test_a_health_check_target_aws_refuses(target, why):
    assert why in classic.refusal_of_target(target)
    with pytest.raises(ValueError, match="Invalid HealthCheck Target"):
        classic.parse_target(target)


@pytest.mark.parametrize(
    "change, why",
    [
        ({}, None),
        ({"Interval": 4}, "Interval must be from 5 to 300"),
        ({"Interval": 301}, "Interval must be from 5 to 300"),
        ({"Timeout": 1}, "Timeout must be from 2 to 60"),
        ({"Timeout": 5, "Interval": 5}, "Timeout must be smaller than Interval"),
        ({"HealthyThreshold": 1}, "HealthyThreshold must be from 2 to 10"),
        ({"UnhealthyThreshold": 11}, "UnhealthyThreshold must be from 2 to 10"),
        ({"Target": "HTTP:80"}, "needs a path"),
    ],
)
def test_a_health_check_aws_refuses(change, why):
    found = classic.refusal_of_check(dict(CHECK, **change))
    assert (found is None) if why is None else (why in found)


@pytest.mark.parametrize(
    "name, why",
    [
        ("seed-web", None),
        ("a" * 32, None),
        ("Web2", None),
        ("a" * 33, "LoadBalancer name cannot be longer than 32 characters"),
        ("seed_web", "LoadBalancer name cannot contain characters that are not letters, or digits or the dash."),
        ("seed.web", "LoadBalancer name cannot contain characters that are not letters, or digits or the dash."),
        ("-web", "LoadBalancer name cannot begin or end with a dash."),
        ("web-", "LoadBalancer name cannot begin or end with a dash."),
    ],
)
def test_load_balancer_names_as_aws_takes_them(name, why):
    assert classic.refusal_of_name(name) == why


@pytest.mark.parametrize(
    "listener, code",
    [
        ({"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}, None),
        ({"Protocol": "http", "LoadBalancerPort": 80, "InstancePort": 8080, "InstanceProtocol": "HTTPS"}, None),
        ({"Protocol": "TCP", "LoadBalancerPort": 5000, "InstancePort": 5000}, None),
        ({"Protocol": "HTTPS", "LoadBalancerPort": 443, "InstancePort": 80, "SSLCertificateId": "arn:x"}, None),
        ({"Protocol": "UDP", "LoadBalancerPort": 53, "InstancePort": 53}, "ValidationError"),
        (
            {"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80, "InstanceProtocol": "FTP"},
            "ValidationError",
        ),
        ({"Protocol": "HTTP", "LoadBalancerPort": 0, "InstancePort": 80}, "ValidationError"),
        ({"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 70000}, "ValidationError"),
        (
            {"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80, "InstanceProtocol": "TCP"},
            "InvalidConfigurationRequest",
        ),
        (
            {"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 80, "InstanceProtocol": "HTTP"},
            "InvalidConfigurationRequest",
        ),
        ({"Protocol": "HTTPS", "LoadBalancerPort": 443, "InstancePort": 80}, "ValidationError"),
    ],
)
def test_listeners_as_aws_takes_them(listener, code):
    found = classic.refusal_of_listener(listener)
    assert (found is None) if code is None else (found[0] == code)


@pytest.mark.parametrize(
    "draining, why",
    [({"Enabled": True, "Timeout": 300}, False), ({"Enabled": True}, False), ({"Enabled": True, "Timeout": 0}, True)]
    + [({"Enabled": True, "Timeout": 3601}, True), ({"Enabled": False, "Timeout": 3600}, False)],
)
def test_connection_draining_timeouts_as_aws_takes_them(draining, why):
    assert (classic.refusal_of_draining(draining) is not None) == why


def test_classic_rules_as_aws_refuses_them():
    """The rules awsrules.classic_load_balancers_checked enforces, each refusing what AWS refuses (one of each)."""
    assert classic.refusal_of_name("no_underscores")
    assert classic.refusal_of_listener({"Protocol": "UDP", "LoadBalancerPort": 53, "InstancePort": 53})
    assert classic.refusal_of_check(dict(CHECK, Target="HTTP:80"))
    assert classic.refusal_of_draining({"Enabled": True, "Timeout": 4000})


@pytest.mark.parametrize(
    "attributes, seconds",
    [
        ({"connection_draining": {"enabled": False}}, 0.0),
        ({"connection_draining": {"enabled": True, "timeout": 7}}, 7.0),
        ({"connection_draining": {"enabled": "true", "timeout": "7"}}, 7.0),
        ({"connection_draining": {"enabled": True}}, 300.0),
        ({"connection_draining": {"Enabled": True, "Timeout": 5}}, 5.0),  # as ModifyLoadBalancerAttributes left it
        ({"connection_draining": {"Enabled": False, "Timeout": 5}}, 0.0),
        ({}, 0.0),
    ],
)
def test_a_deregistered_instance_drains_for_the_timeout_only_when_draining_is_on(attributes, seconds):
    assert classic.drain_seconds(attributes) == seconds


@pytest.mark.parametrize(
    "health_check, port, check",
    [
        (CHECK, 8080, Check(path="/health", interval=5, timeout=2, rise=2, fall=3, matcher="200")),
        (dict(CHECK, Target="TCP:8080"), 8080, Check(path="/", interval=5, timeout=2, rise=2, fall=3, tcp=True)),
        (None, 8080, Check(path="/", interval=30, timeout=5, rise=10, fall=2, tcp=True)),  # AWS's default
    ],
)
def test_a_classic_health_check_as_haproxys(health_check, port, check):
    assert classic.check_of(health_check, port) == check
    assert classic.check_port(health_check, port) == 8080


def test_an_http_check_expects_200_and_a_tcp_one_any_bytes_back():
    http = classic.check_of(CHECK, 8080)
    tcp = classic.check_of(dict(CHECK, Target="TCP:8080"), 8080)
    text = render_config(Path("/run/x"), [], [Backend("clb-a", http), Backend("clb-b", tcp)], [])
    a, b = text.split("backend clb-a\n")[1].split("backend clb-b\n")
    assert "option httpchk GET /health\n  http-check expect rstatus ^(200)$\n  timeout check 2s" in a
    assert (
        'option tcp-check\n  tcp-check connect\n  tcp-check send "HEAD / HTTP/1.0\\r\\n\\r\\n"\n'
        "  tcp-check expect rstring .\n  timeout check 2s"
    ) in b


UP, DOWN = {"status": "UP", "check_status": "L7OK"}, {"status": "DOWN", "check_status": "L7STS"}
FRESH = {"status": "DOWN", "check_status": "INI"}
BASE = dict(instance_state="running", registered=True, draining=False, zone_served=True, seen_up=False, age=1.0)
HC = Check(interval=5, timeout=2, rise=2, fall=3)


@pytest.mark.parametrize(
    "row, change, answer",
    [
        (None, {}, ("OutOfService", "ELB", "Instance registration is still in progress.")),
        (FRESH, {}, health.REGISTERING),
        (DOWN, {"age": 10.0}, health.REGISTERING),  # not yet the time to fail 3 checks of 5 s
        (
            DOWN,
            {"age": 17.0},
            (
                "OutOfService",
                "Instance",
                "Instance has failed at least the UnhealthyThreshold number of health checks consecutively.",
            ),
        ),
        (DOWN, {"seen_up": True}, health.FAILED),
        (UP, {}, ("InService", "N/A", "N/A")),
        ({"status": "UP 1/3"}, {"seen_up": True}, health.IN_SERVICE),  # failing, not yet failed
        (
            UP,
            {"draining": True, "registered": False},
            ("InService", "N/A", "Instance deregistration currently in progress."),
        ),
        (
            None,
            {"registered": False},
            ("OutOfService", "ELB", "Instance is not currently registered with the LoadBalancer."),
        ),
        (None, {"instance_state": "pending"}, ("OutOfService", "Instance", "Instance is in pending state.")),
        (None, {"instance_state": "stopped"}, ("OutOfService", "Instance", "Instance is in stopped state.")),
        (UP, {"instance_state": "shutting-down"}, ("OutOfService", "Instance", "Instance is in terminated state.")),
        (UP, {"zone_served": False}, health.OTHER_ZONE),
    ],
)
def test_instance_health_in_describe_instance_healths_words(row, change, answer):
    assert instance_health(row, HC, **dict(BASE, **change)) == answer


@pytest.mark.parametrize(
    "flags, state",
    [
        (dict(removing=True, described=True, at_create=True, elb_checks=True, any_in_service=True), "Removing"),
        (dict(removing=False, described=True, at_create=True, elb_checks=False, any_in_service=False), "InService"),
        (dict(removing=False, described=False, at_create=False, elb_checks=True, any_in_service=True), "Adding"),
        (dict(removing=False, described=True, at_create=False, elb_checks=False, any_in_service=True), "Added"),
        (dict(removing=False, described=True, at_create=False, elb_checks=True, any_in_service=False), "Added"),
        (dict(removing=False, described=True, at_create=False, elb_checks=True, any_in_service=True), "InService"),
    ],
)
def test_an_auto_scaling_groups_attachment_state(flags, state):
    assert classic.attachment_state(**flags) == state


def counts(req=0, c2=0, c4=0, c5=0, rtime=0) -> dict:
    return {"req_tot": req, "hrsp_1xx": 0, "hrsp_2xx": c2, "hrsp_3xx": 0, "hrsp_4xx": c4, "hrsp_5xx": c5}


@pytest.mark.parametrize(
    "delta, hosts, expected",
    [
        ({}, (0, 0), {}),
        ({}, (1, 1), {"HealthyHostCount": 1.0, "UnHealthyHostCount": 1.0}),
        (
            {
                ("clb-fe", "FRONTEND"): counts(req=10, c2=7, c4=1, c5=2),
                ("clb-be", "BACKEND"): dict(counts(req=10, c2=7, c4=1, c5=2), rtime=200),
                ("clb-be", "i-1-8080"): counts(req=5, c2=4, c5=1),
                ("clb-be", "i-2-8080"): counts(req=4, c2=3, c4=1),
                ("other", "i-3-8080"): counts(req=9, c5=9),  # another load balancer's
            },
            (2, 0),
            {
                "RequestCount": 10.0,
                "HTTPCode_Backend_2XX": 7.0,
                "HTTPCode_Backend_4XX": 1.0,
                "HTTPCode_Backend_5XX": 1.0,
                "HTTPCode_ELB_5XX": 1.0,  # the one 503 no instance answered
                "Latency": {"SampleCount": 9.0, "Sum": 1.8, "Minimum": 0.2, "Maximum": 0.2},
                "HealthyHostCount": 2.0,
                "UnHealthyHostCount": 0.0,
            },
        ),
    ],
)
def test_a_classic_elbs_counts_as_aws_elb_metrics(delta, hosts, expected):
    from toolkit.local.metrics import classic_datums

    datums = classic_datums(delta, "seed-web", ["clb-fe"], ["clb-be"], hosts)
    assert all(d["Dimensions"] == [{"Name": "LoadBalancerName", "Value": "seed-web"}] for d in datums)
    found = {d["MetricName"]: d.get("Value", d.get("StatisticValues")) for d in datums}
    assert {
        k: (v if not isinstance(v, dict) else {s: round(x, 6) for s, x in v.items()}) for k, v in found.items()
    } == expected


def elb(ports: list[int], target: str | None):
    """A stand-in for moto's Classic ELB: HTTP listeners to ``ports``, a health check on ``target`` (None: none)."""
    from types import SimpleNamespace

    listeners = [
        SimpleNamespace(protocol="HTTP", instance_protocol="HTTP", instance_port=p, load_balancer_port=80 + i)
        for i, p in enumerate(ports)
    ]
    check = (
        None
        if target is None
        else SimpleNamespace(target=target, interval=5, timeout=2, healthy_threshold=2, unhealthy_threshold=2)
    )
    return SimpleNamespace(name="web", listeners=listeners, health_check=check, instance_ids=["i-1"])


ARN = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/web"


@pytest.mark.parametrize(
    "ports, target, checked, followers",
    [
        ([8080], "HTTP:8080/health", 8080, []),
        ([8080], None, 8080, []),  # AWS's default: TCP on the instance port
        ([8080, 9090], "HTTP:8080/health", 8080, [9090]),
        ([8080], "TCP:22", 22, [8080]),  # a port no listener routes to: a checked backend of its own
    ],
)
def test_the_backend_on_the_check_port_is_checked_and_the_others_follow_it(ports, target, checked, followers):
    from types import SimpleNamespace

    from toolkit.local.classiclive import backends_of, followed

    world = SimpleNamespace(classics={ARN: elb(ports, target)})
    found = backends_of(world)
    (own,) = [b for b in found.values() if not b.follows]
    assert own.port == checked and own.check.enabled
    assert sorted(b.port for b in found.values() if b.follows) == followers
    for b in found.values():
        assert followed(found, (b.name, f"i-1-{b.port}")) == (None if not b.follows else (own.name, f"i-1-{checked}"))
        assert b.check.enabled == (not b.follows)
