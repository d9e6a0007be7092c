"""The live stack's pure parts, as tables: weight maps, matchers, HAProxy config, target health, ALB metrics, alarms."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from toolkit.canary.metrics import dimension_value
from toolkit.local.alarms import AlarmSpec, Sample, can_evaluate, evaluate
from toolkit.local.balancer import NO_TARGETS, Backend, Check, Frontend, Server, apportion, matcher_regex, render_config
from toolkit.local.health import passed_its_first_check, target_health
from toolkit.local.imds import Identity, Tokens, answer
from toolkit.local.metrics import Names, alb_datums, counters, deltas


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
    [
        ("200", "^(200)$"),
        ("200,202", "^(200|202)$"),
        ("200-202", "^(200|201|202)$"),
        ("302, 200-201", "^(200|201|302)$"),
    ],
)
def test_matcher_regex(codes, regex):
    assert matcher_regex(codes) == regex


def test_config_has_a_frontend_per_listener_and_a_checked_backend_per_group():
    check = Check(path="/health", interval=5, timeout=2, rise=2, fall=3, matcher="200-201")
    text = render_config(
        Path("/run/x"),
        [Frontend("lb-web-80-abc", 40001)],
        [Backend("tg-web-blue-1", check)],
        [Server("tg-web-blue-1", "i-1-8080", "/run/x/i-1-8080.sock")],
    )
    assert "bind 127.0.0.1:40001" in text
    assert "use_backend %[rand(100),map_int(/run/x/lb-web-80-abc.map,no-targets)]" in text
    assert (
        "option httpchk GET /health" in text
        and "http-check expect rstatus ^(200|201)$" in text
        and "timeout check 2s" in text
    )
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
        (
            {"status": "DOWN", "check_status": "L7STS", "check_code": "500"},
            {"seen_up": True},
            ("unhealthy", "Target.ResponseCodeMismatch"),
        ),
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


@pytest.mark.parametrize(
    "row,check,settled,expected",
    [
        ({"status": "DOWN 1/2", "check_status": "L7OK"}, CHECK, False, True),  # AWS: one check for a new target
        ({"status": "DOWN", "check_status": "L7OK"}, CHECK, False, True),
        ({"status": "DOWN", "check_status": "INI"}, CHECK, False, False),  # not checked yet
        ({"status": "DOWN", "check_status": "L7STS"}, CHECK, False, False),  # failed
        ({"status": "DOWN", "check_status": "L4CON"}, CHECK, False, False),
        ({"status": "DOWN 1/2", "check_status": "L7OK"}, CHECK, True, False),  # was up (or unhealthy): rise counts
        ({"status": "UP", "check_status": "L7OK"}, CHECK, False, False),  # up already
        ({"status": "MAINT", "check_status": "L7OK"}, CHECK, False, False),
        ({"status": "DOWN", "check_status": "L7OK"}, replace(CHECK, enabled=False), False, False),
        (None, CHECK, False, False),
    ],
)
def test_a_new_target_is_up_at_its_first_passed_check(row, check, settled, expected):
    assert passed_its_first_check(row, check, settled=settled) is expected


# --- ALB metrics from HAProxy's counters ---------------------------------------------

LB, TG = "app/web/50dc6c495c0c9188", "targetgroup/web-blue/73e2d6bc24d8a067"
NAMES = Names(groups={"tg-blue": (LB, TG)}, balancers={"lb-web": LB})


def _row(px, sv, req=0, c2=0, c5=0, rtime=0):
    return {
        "pxname": px,
        "svname": sv,
        "req_tot": str(req),
        "hrsp_2xx": str(c2),
        "hrsp_5xx": str(c5),
        "rtime": str(rtime),
    }


@pytest.mark.parametrize(
    "before,now,expected",
    [
        ({"req_tot": 10}, {"req_tot": 15}, 5),
        ({"req_tot": 10}, {"req_tot": 3}, 3),  # HAProxy restarted: counting from 0 again
        ({}, {"req_tot": 4}, 4),  # a new server
    ],
)
def test_deltas_between_reads(before, now, expected):
    assert deltas({("b", "s"): before}, {("b", "s"): now})[("b", "s")]["req_tot"] == expected


def _by_name(datums):
    return {(d["MetricName"], len(d["Dimensions"])): d.get("Value", d.get("StatisticValues")) for d in datums}


@pytest.mark.parametrize(
    "rows,expected",
    [
        # 10 requests, 3 answered 500 by a target: counted for the group and the load balancer
        (
            [
                _row("tg-blue", "BACKEND", 10, 7, 3, 20),
                _row("tg-blue", "i-1-8080", 10, 7, 3),
                _row("lb-web", "FRONTEND", 10, 7, 3),
            ],
            {
                ("RequestCount", 2): 10.0,
                ("HTTPCode_Target_5XX_Count", 2): 3.0,
                ("RequestCount", 1): 10.0,
                ("HTTPCode_Target_5XX_Count", 1): 3.0,
                ("TargetResponseTime", 2): {"SampleCount": 10.0, "Sum": 0.2, "Minimum": 0.02, "Maximum": 0.02},
                ("TargetResponseTime", 1): {"SampleCount": 10.0, "Sum": 0.2, "Minimum": 0.02, "Maximum": 0.02},
            },
        ),
        # 503s HAProxy made itself (no server up): ELB 5xx, not target 5xx, and no response time
        (
            [_row("tg-blue", "BACKEND", 4, 0, 4), _row("lb-web", "FRONTEND", 4, 0, 4)],
            {
                ("RequestCount", 2): 4.0,
                ("HTTPCode_ELB_5XX_Count", 2): 4.0,
                ("RequestCount", 1): 4.0,
                ("HTTPCode_ELB_5XX_Count", 1): 4.0,
            },
        ),
        # the listener's no-weight 503 is the load balancer's alone
        (
            [_row("no-targets", "BACKEND", 2, 0, 2), _row("lb-web", "FRONTEND", 2, 0, 2)],
            {("RequestCount", 1): 2.0, ("HTTPCode_ELB_5XX_Count", 1): 2.0},
        ),
        # nothing happened: nothing reported
        ([_row("tg-blue", "BACKEND"), _row("lb-web", "FRONTEND")], {}),
    ],
)
def test_alb_datums(rows, expected):
    delta = deltas({}, counters(rows))
    datums = alb_datums(delta, NAMES)
    assert _by_name(datums) == expected
    for d in datums:
        assert d["Dimensions"][0] == {"Name": "LoadBalancer", "Value": LB}
        assert d["Dimensions"][1:] in ([], [{"Name": "TargetGroup", "Value": TG}])


# --- alarm evaluation -------------------------------------------------------------------

SPEC = AlarmSpec(
    statistic="Sum",
    period=10,
    evaluation_periods=1,
    threshold=2,
    comparison="GreaterThanThreshold",
    treat_missing_data="notBreaching",
)
NOW = 1000.0


@pytest.mark.parametrize(
    "samples,spec,current,expected",
    [
        ([], SPEC, "OK", "OK"),  # no 5xx reported: not breaching
        ([Sample(995, 3)], SPEC, "OK", "ALARM"),
        ([Sample(995, 1), Sample(999, 1)], SPEC, "OK", "OK"),  # 2 is not greater than 2
        ([Sample(995, 1), Sample(999, 2)], SPEC, "OK", "ALARM"),
        ([Sample(985, 9)], SPEC, "ALARM", "OK"),  # the errors are older than the period: back to OK
        ([Sample(1001, 9)], SPEC, "OK", "OK"),  # not yet
        ([Sample(985, 9)], replace(SPEC, evaluation_periods=2), "OK", "OK"),  # one of two periods breaching
        ([Sample(985, 9), Sample(995, 3)], replace(SPEC, evaluation_periods=2), "OK", "ALARM"),
        ([Sample(985, 9)], replace(SPEC, evaluation_periods=2, datapoints_to_alarm=1), "OK", "ALARM"),
        ([], replace(SPEC, treat_missing_data="missing"), "OK", "INSUFFICIENT_DATA"),
        ([], replace(SPEC, treat_missing_data="breaching"), "OK", "ALARM"),
        ([], replace(SPEC, treat_missing_data="ignore"), "ALARM", "ALARM"),
        ([Sample(995, 0.2, 1), Sample(996, 0.6, 1)], replace(SPEC, statistic="Average", threshold=0.3), "OK", "ALARM"),
        ([Sample(995, 1.0, 4, 0.1, 0.7)], replace(SPEC, statistic="Maximum", threshold=0.5), "OK", "ALARM"),
        (
            [Sample(995, 1.0, 4, 0.1, 0.7)],
            replace(SPEC, statistic="Minimum", threshold=0.5, comparison="LessThanThreshold"),
            "OK",
            "ALARM",
        ),
        (
            [Sample(995, 1.0, 4)],
            replace(SPEC, statistic="SampleCount", threshold=4, comparison="GreaterThanOrEqualToThreshold"),
            "OK",
            "ALARM",
        ),
        ([Sample(995, 5)], replace(SPEC, threshold=5, comparison="LessThanOrEqualToThreshold"), "ALARM", "ALARM"),
    ],
)
def test_evaluate_alarm(samples, spec, current, expected):
    assert evaluate(samples, spec, NOW, current) == expected


@pytest.mark.parametrize(
    "spec,ok",
    [
        (SPEC, True),
        (replace(SPEC, statistic="p99"), False),
        (replace(SPEC, comparison="LessThanLowerThreshold"), False),
        (replace(SPEC, period=0), False),
    ],
)
def test_only_plain_alarms_are_evaluated(spec, ok):
    assert can_evaluate(spec) is ok


@pytest.mark.parametrize(
    "arn,value",
    [
        (
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188",
            "app/web/50dc6c495c0c9188",
        ),
        (
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-blue/73e2d6bc24d8a067",
            "targetgroup/web-blue/73e2d6bc24d8a067",
        ),
    ],
)
def test_dimension_values(arn, value):
    assert dimension_value(arn) == value


# --- the instance metadata service ------------------------------------------------------

WHO = Identity(
    instance_id="i-0abc",
    image_id="ami-1",
    instance_type="t3.micro",
    region="us-east-1",
    zone="us-east-1a",
    account="123456789012",
    private_ip="10.0.0.5",
    role="web-instance",
    user_data=b"#!/bin/sh\n",
)
ROLE = {
    "AccessKeyId": "ASIAEXAMPLEEXAMPLE01",
    "SecretAccessKey": "s3cret",
    "Token": "t0ken",
    "Expiration": "2026-11-02T06:00:00Z",
}


@pytest.mark.parametrize(
    "method,path,headers,who,status,body",
    [
        ("GET", "/latest/meta-data/instance-id", {}, WHO, 200, b"i-0abc"),  # IMDSv1 while tokens are optional
        ("GET", "/latest/meta-data/instance-id", {}, replace(WHO, tokens_required=True), 401, None),
        (
            "GET",
            "/latest/meta-data/instance-id",
            {"x-aws-ec2-metadata-token": "GOOD"},
            replace(WHO, tokens_required=True),
            200,
            b"i-0abc",
        ),
        ("GET", "/latest/meta-data/instance-id", {"x-aws-ec2-metadata-token": "forged"}, WHO, 401, None),
        ("GET", "/latest/meta-data/placement/region", {}, WHO, 200, b"us-east-1"),
        ("GET", "/latest/meta-data/placement/", {}, WHO, 200, b"availability-zone\nregion"),
        ("GET", "/latest/meta-data/iam/security-credentials/", {}, WHO, 200, b"web-instance"),
        ("GET", "/latest/meta-data/iam/security-credentials/other", {}, WHO, 404, None),
        ("GET", "/latest/user-data", {}, WHO, 200, b"#!/bin/sh\n"),
        ("GET", "/latest/user-data", {}, replace(WHO, user_data=None), 404, None),
        ("PUT", "/latest/api/token", {}, WHO, 400, None),
        ("PUT", "/latest/api/token", {"x-aws-ec2-metadata-token-ttl-seconds": "21601"}, WHO, 400, None),
        ("PUT", "/latest/meta-data/instance-id", {}, WHO, 405, None),
    ],
)
def test_metadata_answers(method, path, headers, who, status, body):
    tokens = Tokens()
    good = tokens.issue(60, NOW)
    headers = {k: (good if v == "GOOD" else v) for k, v in headers.items()}
    got = answer(method, path, headers, who, tokens, NOW, ROLE)
    assert got[0] == status
    if body is not None:
        assert got[2] == body


def test_metadata_tokens_and_credentials():
    tokens = Tokens()
    status, _, token = answer(
        "PUT", "/latest/api/token", {"x-aws-ec2-metadata-token-ttl-seconds": "10"}, WHO, tokens, NOW
    )
    assert status == 200
    header = {"x-aws-ec2-metadata-token": token.decode()}
    status, kind, body = answer(
        "GET", "/latest/meta-data/iam/security-credentials/web-instance", header, WHO, tokens, NOW, ROLE
    )
    creds = json.loads(body)
    assert (status, kind, creds["Code"], creds["Type"]) == (200, "application/json", "Success", "AWS-HMAC")
    assert {k: creds[k] for k in ROLE} == ROLE  # the role's own credentials, as given
    # No role (no instance profile): no iam/ folder, as on EC2.
    assert answer("GET", "/latest/meta-data/iam/security-credentials/", header, WHO, tokens, NOW, None)[0] == 404
    assert b"iam/" not in answer("GET", "/latest/meta-data/", header, WHO, tokens, NOW, None)[2]
    assert answer("GET", "/latest/meta-data/instance-id", header, WHO, tokens, NOW + 11)[0] == 401  # expired


@pytest.mark.parametrize(
    "healthy,expected",
    [
        ({"tg-blue": 4}, 2.5),  # 10 requests among 4 healthy targets
        ({"tg-blue": 0}, None),  # none healthy: no per-target count
        ({}, None),
    ],
)
def test_request_count_per_target_divides_among_healthy_targets(healthy, expected):
    delta = deltas({}, counters([_row("tg-blue", "BACKEND", 10, 10), _row("lb-web", "FRONTEND", 10, 10)]))
    assert _by_name(alb_datums(delta, NAMES, healthy)).get(("RequestCountPerTarget", 2)) == expected
