"""The live stack's access logs: HAProxy's request log line in, AWS's access log entry out, read back as AWS's (tables)."""

from __future__ import annotations

import pytest

from toolkit.canary import accesslogs as aws_format
from toolkit.local import accesslogs
from toolkit.local.balancer import REQUEST_LOG_FORMAT

LB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0123456789abcdef"
TG = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-green/fedcba9876543210"
NAMES = accesslogs.Names(
    balancers={"lb-web-80-abc": (LB, 80, "web-1.us-east-1.elb.amazonaws.com")},
    groups={"tg-web-green-1a2b3c": TG},
    targets={("tg-web-green-1a2b3c", "i-1-8080"): "10.0.1.7:8080"},
)
# As HAProxy 2.6 writes REQUEST_LOG_FORMAT: a kept-alive request that waited 300 ms idle, 201 ms at the server.
SLOW = '1796477530.935 lb-web-80-abc tg-web-green-1a2b3c i-1-8080 0 300 0 0 1 201 202 200 79 116 127.0.0.1:52596 "GET /slow HTTP/1.1"'
NO_SERVER = '1796477531.500 lb-web-80-abc tg-web-green-1a2b3c <NOSRV> 0 0 0 -1 -1 -1 0 503 78 217 127.0.0.1:52597 "GET / HTTP/1.1"'


def test_the_format_has_the_fields_parse_reads():
    assert len(REQUEST_LOG_FORMAT.split(" ")) == 16 and REQUEST_LOG_FORMAT.endswith("%{+Q}r")


def test_a_haproxy_line():
    hit = accesslogs.parse(SLOW + "\n")
    assert hit.received == pytest.approx(1796477530.935 + 0.300)  # accept date + idle: when the request came
    assert hit.ended == pytest.approx(hit.received + 0.202)
    assert (hit.backend, hit.server, hit.target_ms, hit.request_ms, hit.status) == (
        "tg-web-green-1a2b3c",
        "i-1-8080",
        201,
        1,
        200,
    )
    assert hit.request == "GET /slow HTTP/1.1"


@pytest.mark.parametrize("line", ["", "garbage", SLOW.replace(" 201 ", " x ")])
def test_lines_that_are_no_request(line):
    assert accesslogs.parse(line) is None


def test_an_entry_reads_back_as_aws_writes_it():
    lb, line = accesslogs.entry(accesslogs.parse(SLOW), NAMES, "0" * 24)
    fields = aws_format.parse_line(line)
    assert lb == LB and fields["elb"] == "app/web/0123456789abcdef" and fields["target_group_arn"] == TG
    assert fields["request"] == "GET http://web-1.us-east-1.elb.amazonaws.com:80/slow HTTP/1.1"
    assert (fields["target_processing_time"], fields["elb_status_code"], fields["target_status_code"]) == (
        "0.201",
        "200",
        "200",
    )
    request = aws_format.request_of(fields)
    assert request.at == pytest.approx(1796477531.235, abs=1e-3) and request.seconds == pytest.approx(0.201)
    assert (request.status, request.target) == (200, "10.0.1.7:8080")


def test_a_request_no_target_answered():
    _, line = accesslogs.entry(accesslogs.parse(NO_SERVER), NAMES, "0" * 24)
    fields = aws_format.parse_line(line)
    assert (fields["target"], fields["target_processing_time"], fields["target_status_code"]) == ("-", "-1", "-")
    request = aws_format.request_of(fields)
    assert (request.status, request.seconds, request.error) == (503, None, True)


def test_a_frontend_that_is_no_listener_is_left_out():
    assert accesslogs.entry(accesslogs.parse(SLOW.replace("lb-web-80-abc", "other")), NAMES, "0" * 24) is None


def test_a_listener_deleted_before_its_requests_were_taken_still_names_them():
    """The smoke check's test listener is deleted right after its GETs: their lines come on the next tick."""
    gone = accesslogs.Names(balancers={}, groups=NAMES.groups, targets={})
    known = accesslogs.merged(NAMES, gone)
    lb, line = accesslogs.entry(accesslogs.parse(SLOW), known, "0" * 24)
    assert lb == LB and aws_format.parse_line(line)["target"] == "10.0.1.7:8080"
    moved = accesslogs.Names(balancers={"lb-web-80-abc": ("arn:other", 81, "x")}, groups={}, targets={})
    assert accesslogs.merged(known, moved).balancers["lb-web-80-abc"] == ("arn:other", 81, "x")  # the newest wins
