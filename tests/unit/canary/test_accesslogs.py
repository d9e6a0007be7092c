"""ALB access logs: AWS's own example entry parsed, files named as Elastic Load Balancing names them (tables, no I/O)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from toolkit.canary import accesslogs
from toolkit.canary.samples import Request

LB = "arn:aws:elasticloadbalancing:us-east-2:123456789012:loadbalancer/app/my-loadbalancer/50dc6c495c0c9188"
TG = "arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067"
# The HTTP example of AWS's guide (load-balancer-access-logs.html), on one line, with the newer fields at the end.
EXAMPLE = (
    "http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 "
    '0.000 0.001 0.000 200 200 34 366 "GET http://www.example.com:80/ HTTP/1.1" "curl/7.46.0" - - '
    f'{TG} "Root=1-58337262-36d228ad5d99923122bbe354" "-" "-" 0 2018-07-02T22:22:48.364000Z "forward" "-" "-" '
    '"10.0.0.1:80" "200" "-" "-" TID_1234abcd'
)


def test_aws_example_entry():
    fields = accesslogs.parse_line(EXAMPLE)
    assert fields["target_group_arn"] == TG and fields["request"] == "GET http://www.example.com:80/ HTTP/1.1"
    assert fields["user_agent"] == "curl/7.46.0" and fields["conn_trace_id"] == "TID_1234abcd"
    received = datetime(2018, 7, 2, 22, 22, 48, 364000, tzinfo=timezone.utc).timestamp()
    assert accesslogs.request_of(fields) == Request(received, 200, 0.001, "10.0.0.1:80")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # no target reached: -1 times, no target status, the load balancer's own 503
        (("10.0.0.1:80 0.000 0.001 0.000 200 200", "- -1 -1 -1 503 -"), Request(0, 503, None, "")),
        # the target answered 500
        (("0.000 0.001 0.000 200 200", "0.000 0.250 0.000 500 500"), Request(0, 500, 0.25, "10.0.0.1:80")),
    ],
)
def test_entries_without_an_answer_or_with_an_error(change, expected):
    request = accesslogs.request_of(accesslogs.parse_line(EXAMPLE.replace(*change)))
    assert (request.status, request.seconds, request.target) == (expected.status, expected.seconds, expected.target)


@pytest.mark.parametrize("line", ["", "http 2018-07-02T22:23:00Z app/x", "# a comment"])
def test_what_is_no_entry(line):
    assert accesslogs.parse_line(line) is None


def test_an_older_entry_without_the_newer_fields_still_parses():
    short = EXAMPLE.split(' "forward"')[0]
    assert accesslogs.request_of(accesslogs.parse_line(short)).status == 200


def test_file_names_as_elastic_load_balancing_writes_them():
    """The guide's example name: my-bucket/prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/..."""
    delivered = datetime(2016, 5, 1, 0, 1, tzinfo=timezone.utc).timestamp()
    end = datetime(2014, 2, 15, 23, 40, tzinfo=timezone.utc).timestamp()
    key = accesslogs.object_key("prefix", LB, delivered, end, "172.160.001.192", "20sg8hgm")
    assert key == (
        "prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/"
        "123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.50dc6c495c0c9188_20140215T2340Z_"
        "172.160.001.192_20sg8hgm.log.gz"
    )
    assert accesslogs.object_key("", LB, delivered, end, "1.2.3.4", "x").startswith("AWSLogs/123456789012/")
    assert accesslogs.resource_id(LB) == "app/my-loadbalancer/50dc6c495c0c9188"
