"""The load balancer's access logs in S3: every request with its target group, status and response time.

An Application Load Balancer with access logs on writes, for each of its
nodes, one gzipped file every 5 minutes (AWS: "Log delivery is eventually
consistent"; "on a best-effort basis") under
``bucket[/prefix]/AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/``,
named ``<account>_elasticloadbalancing_<region>_<lb-id>_<end-time>_<ip>_<random>.log.gz``
(``end-time`` like 20140215T2340Z: the file holds the 5 minutes up to it).
One line per request, space-separated, some fields quoted:
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-access-logs.html

``AccessLogs.read`` lists the files that can hold a window's requests and
keeps the lines of the slots' target groups received within it. The
``target_processing_time`` is the judge's latency: the same figure as the
``TargetResponseTime`` metric, per request. The parsing and naming
functions are pure.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from toolkit.canary.samples import Request, Series
from toolkit.errors import ReleaseError

# The fields of an entry, in order (AWS adds new ones at the end: the parser ignores what follows).
FIELDS = (
    "type",
    "time",
    "elb",
    "client",
    "target",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "received_bytes",
    "sent_bytes",
    "request",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
    "target_group_arn",
    "trace_id",
    "domain_name",
    "chosen_cert_arn",
    "matched_rule_priority",
    "request_creation_time",
    "actions_executed",
    "redirect_url",
    "error_reason",
    "target_port_list",
    "target_status_code_list",
    "classification",
    "classification_reason",
    "conn_trace_id",
)
REQUIRED = FIELDS.index("request_creation_time") + 1  # the fields the samples need
TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
ATTRIBUTES = ("access_logs.s3.enabled", "access_logs.s3.bucket", "access_logs.s3.prefix")


def parse_line(line: str) -> dict[str, str] | None:
    """An entry's fields by name (quotes taken off); None for a line that is no entry."""
    values = [quoted or bare for quoted, bare in TOKEN.findall(line)]
    if len(values) < REQUIRED:
        return None
    return dict(zip(FIELDS, values))


def request_of(fields: dict[str, str]) -> Request | None:
    """The sample of one entry; None when its times or status cannot be read."""
    try:
        at = _epoch(fields["request_creation_time"])
        status = int(fields["elb_status_code"]) if fields["elb_status_code"] != "-" else 0
        seconds = float(fields["target_processing_time"])
    except (KeyError, ValueError):
        return None
    target = fields.get("target", "-")
    return Request(at, status, seconds if seconds >= 0 else None, "" if target == "-" else target)


def resource_id(lb_arn: str) -> str:
    """``app/<name>/<id>`` of a load balancer ARN (the ``elb`` field of each entry)."""
    return lb_arn.split(":loadbalancer/", 1)[-1]


def file_prefix(lb_arn: str) -> str:
    """What every log file name of the load balancer starts with: ``<account>_elasticloadbalancing_<region>_<id>_``."""
    _, _, _, region, account, _ = lb_arn.split(":", 5)
    return f"{account}_elasticloadbalancing_{region}_{resource_id(lb_arn).replace('/', '.')}_"


def day_folder(prefix: str, lb_arn: str, day: datetime) -> str:
    """``[prefix/]AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/``: the files delivered that day."""
    _, _, _, region, account, _ = lb_arn.split(":", 5)
    head = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    return f"{head}AWSLogs/{account}/elasticloadbalancing/{region}/{day:%Y/%m/%d}/"


def end_time(epoch: float) -> str:
    """A file name's end-time: the UTC minute, like ``20140215T2340Z``."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y%m%dT%H%MZ")


def object_key(prefix: str, lb_arn: str, delivered: float, end: float, node_ip: str, random: str) -> str:
    """The key of one log file, as Elastic Load Balancing names it."""
    day = datetime.fromtimestamp(delivered, timezone.utc)
    return f"{day_folder(prefix, lb_arn, day)}{file_prefix(lb_arn)}{end_time(end)}_{node_ip}_{random}.log.gz"


def where(aws: Any, lb_arn: str) -> tuple[str, str]:
    """``(bucket, prefix)`` the load balancer writes its access logs to; ReleaseError when they are off."""
    answer = aws.client("elbv2").describe_load_balancer_attributes(LoadBalancerArn=lb_arn)["Attributes"]
    attrs = {a["Key"]: a.get("Value", "") for a in answer if a["Key"] in ATTRIBUTES}
    if attrs.get("access_logs.s3.enabled", "false").lower() != "true" or not attrs.get("access_logs.s3.bucket"):
        raise ReleaseError(
            f"release.analysis judges each step on the access logs of load balancer {resource_id(lb_arn)}, "
            "and they are off",
            "turn them on in your infrastructure code (access_logs.s3.enabled, a bucket whose policy lets Elastic "
            "Load Balancing write: see the README's 'Canary analysis'), or set release.analysis.enabled: false",
        )
    return attrs["access_logs.s3.bucket"], attrs.get("access_logs.s3.prefix", "")


@dataclass
class AccessLogs:
    """The requests of a load balancer's target groups, read from its access logs (files read once, then kept)."""

    aws: Any
    lb_arn: str
    bucket: str
    prefix: str = ""
    files: dict[str, list[tuple[str, Request]]] = field(default_factory=dict, repr=False)

    def read(self, target_groups: dict[str, str], start: float, end: float) -> dict[str, Series]:
        """Per slot (``target_groups``: slot -> ARN), the requests received in [start, end] that have reached S3."""
        slot_of = {arn: slot for slot, arn in target_groups.items()}
        found: dict[str, list[Request]] = {slot: [] for slot in target_groups}
        for key in self._keys(start, end):
            if key not in self.files:
                self.files[key] = self._load(key)
            for arn, request in self.files[key]:
                if arn in slot_of and start <= request.at <= end:
                    found[slot_of[arn]].append(request)
        return {slot: Series(tuple(sorted(rs, key=lambda r: r.at))) for slot, rs in found.items()}

    def _keys(self, start: float, end: float) -> list[str]:
        """The files delivered from the window's start on (a file is named by its delivery day and end time)."""
        s3 = self.aws.client("s3")
        first = datetime.fromtimestamp(start, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        last = datetime.fromtimestamp(end, timezone.utc) + timedelta(days=1)  # delivered after midnight
        keys: list[str] = []
        day = first
        while day <= last:
            head = day_folder(self.prefix, self.lb_arn, day) + file_prefix(self.lb_arn)
            args = {"Bucket": self.bucket, "Prefix": head}
            if day == first:
                args["StartAfter"] = head + end_time(start)  # files whose 5 minutes ended before the window
            for page in s3.get_paginator("list_objects_v2").paginate(**args):
                keys += [o["Key"] for o in page.get("Contents", [])]
            day += timedelta(days=1)
        return keys

    def _load(self, key: str) -> list[tuple[str, Request]]:
        body = self.aws.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        out = []
        for line in gzip.decompress(body).decode(errors="replace").splitlines():
            fields = parse_line(line)
            request = request_of(fields) if fields else None
            if request is not None:
                out.append((fields["target_group_arn"], request))
        return out


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
