"""Classic Load Balancers (API ``elb``) as the live stack serves them (pure).

A Classic ELB's HTTP listener is a HAProxy frontend like an ALB listener's,
with one backend of its own: each registered instance a server on the
listener's ``InstancePort``, checked by the ELB's ``HealthCheck``
(``check_of``). Its health is ``toolkit.local.health.instance_health``. An
Auto Scaling group's attachment to it has a state (``attachment_state``),
and AWS's rules for its settings are ``refusal_of_*`` (enforced by
``toolkit.local.awsrules``).

AWS's references: https://docs.aws.amazon.com/elasticloadbalancing/2012-06-01/APIReference/API_HealthCheck.html,
https://docs.aws.amazon.com/elasticloadbalancing/latest/classic/elb-listener-config.html,
https://docs.aws.amazon.com/elasticloadbalancing/latest/classic/config-conn-drain.html,
https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_LoadBalancerState.html.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from toolkit.local.balancer import Check

PROTOCOLS = ("HTTP", "HTTPS", "TCP", "SSL")
SERVED = "HTTP"  # the listener protocol the live stack serves (front and back)
NAME = re.compile(r"^[A-Za-z0-9-]+$")
NAME_LIMIT = 32
TARGET = re.compile(r"^(?P<protocol>[A-Za-z]+):(?P<port>[0-9]+)(?P<path>/.*)?$")
TARGET_LIMIT = 1024
# (low, high) of each HealthCheck field (botocore's elb model; Timeout must also be under Interval)
RANGES = {"Interval": (5, 300), "Timeout": (2, 60), "UnhealthyThreshold": (2, 10), "HealthyThreshold": (2, 10)}
DRAIN_RANGE = (1, 3600)
DEFAULT_DRAIN = 300
# AWS's default health check of a load balancer made without one (the console's and the API's)
DEFAULT_CHECK = {"Interval": 30, "Timeout": 5, "UnhealthyThreshold": 2, "HealthyThreshold": 10}
# An Auto Scaling group's attachment (autoscaling DescribeLoadBalancers' State)
ADDING, ADDED, IN_SERVICE, REMOVING = "Adding", "Added", "InService", "Removing"


@dataclass(frozen=True)
class Target:
    """A ``HealthCheck.Target``: ``HTTP:80/health`` is ("HTTP", 80, "/health"); ``TCP:80`` ("TCP", 80, "")."""

    protocol: str
    port: int
    path: str = ""


def parse_target(text: str) -> Target:
    """A health check target as AWS reads it; ValueError with AWS's reason when AWS refuses it."""
    why = refusal_of_target(text)
    if why is not None:
        raise ValueError(why)
    found = TARGET.match(text)
    assert found is not None
    return Target(found["protocol"].upper(), int(found["port"]), found["path"] or "")


def refusal_of_target(text: str) -> str | None:
    """Why AWS refuses ``HealthCheck.Target`` ``text``, or None: TCP:port and SSL:port take no path, HTTP:port/path
    and HTTPS:port/path need one, ports 1-65535, at most 1024 characters."""
    found = TARGET.match(text or "")
    if found is None or found["protocol"].upper() not in PROTOCOLS:
        return f"Invalid HealthCheck Target: {text!r}; it must be one of TCP:port, SSL:port, HTTP:port/path, HTTPS:port/path"
    protocol, port, path = found["protocol"].upper(), int(found["port"]), found["path"]
    if not 1 <= port <= 65535:
        return f"Invalid HealthCheck Target: {text!r}; the port must be from 1 to 65535"
    if protocol in ("HTTP", "HTTPS") and not path:
        return f"Invalid HealthCheck Target: {text!r}; an {protocol} target needs a path (e.g. {protocol}:{port}/)"
    if protocol in ("TCP", "SSL") and path:
        return f"Invalid HealthCheck Target: {text!r}; a {protocol} target takes no path"
    if len(text) > TARGET_LIMIT:
        return f"Invalid HealthCheck Target: longer than {TARGET_LIMIT} characters"
    return None


def refusal_of_check(check: dict) -> str | None:
    """Why AWS refuses a ``HealthCheck`` (ConfigureHealthCheck), or None."""
    why = refusal_of_target(str(check.get("Target") or ""))
    if why is not None:
        return why
    for field, (low, high) in RANGES.items():
        value = int(check.get(field) or 0)
        if not low <= value <= high:
            return f"HealthCheck {field} must be from {low} to {high}, not {value}"
    if int(check["Timeout"]) >= int(check["Interval"]):
        return "HealthCheck Timeout must be smaller than Interval"
    return None


def refusal_of_name(name: str) -> str | None:
    """Why AWS refuses a load balancer name (CreateLoadBalancer), in AWS's words, or None."""
    if len(name) > NAME_LIMIT:
        return f"LoadBalancer name cannot be longer than {NAME_LIMIT} characters"
    if not NAME.match(name):
        return "LoadBalancer name cannot contain characters that are not letters, or digits or the dash."
    if name.startswith("-") or name.endswith("-"):
        return "LoadBalancer name cannot begin or end with a dash."
    return None


def refusal_of_listener(listener: dict) -> tuple[str, str] | None:
    """(error code, message) AWS refuses a listener with (CreateLoadBalancer, CreateLoadBalancerListeners), or None."""
    protocol = str(listener.get("Protocol") or "").upper()
    back = str(listener.get("InstanceProtocol") or protocol).upper()
    for given in (protocol, back):
        if given not in PROTOCOLS:
            return (
                "ValidationError",
                f"Invalid protocol: {given or '(none)'}; valid protocols are {', '.join(PROTOCOLS)}",
            )
    for field in ("LoadBalancerPort", "InstancePort"):
        port = int(listener.get(field) or 0)
        if not 1 <= port <= 65535:
            return "ValidationError", f"{field} must be from 1 to 65535, not {port}"
    if (protocol in ("HTTP", "HTTPS")) != (back in ("HTTP", "HTTPS")):
        return (
            "InvalidConfigurationRequest",
            f"Listener protocol {protocol} cannot route to instance protocol {back}: HTTP and HTTPS route to HTTP or "
            "HTTPS, TCP and SSL to TCP or SSL",
        )
    if protocol in ("HTTPS", "SSL") and not listener.get("SSLCertificateId"):
        return "ValidationError", f"A {protocol} listener needs an SSLCertificateId"
    return None


def refusal_of_draining(draining: dict) -> str | None:
    """Why AWS refuses a ``ConnectionDraining`` attribute, or None (Timeout 1-3600 seconds)."""
    if "Timeout" not in draining or draining["Timeout"] in (None, ""):
        return None
    timeout = int(draining["Timeout"])
    if not DRAIN_RANGE[0] <= timeout <= DRAIN_RANGE[1]:
        return f"ConnectionDraining Timeout must be from {DRAIN_RANGE[0]} to {DRAIN_RANGE[1]} seconds, not {timeout}"
    return None


def health_check_of(lb) -> dict | None:
    """moto's ``FakeHealthCheck`` of an ELB as ConfigureHealthCheck's ``HealthCheck`` (None: it has none)."""
    found = lb.health_check
    if found is None:
        return None
    return {
        "Target": found.target,
        "Interval": found.interval,
        "Timeout": found.timeout,
        "HealthyThreshold": found.healthy_threshold,
        "UnhealthyThreshold": found.unhealthy_threshold,
    }


def check_of(health_check: dict | None, instance_port: int) -> Check:
    """A Classic ELB's ``HealthCheck`` (None: AWS's default, TCP on the first listener's instance port) as HAProxy's."""
    found = dict(DEFAULT_CHECK, Target=f"TCP:{instance_port}") if health_check is None else health_check
    target = parse_target(str(found["Target"]))
    return Check(
        path=target.path or "/",
        interval=int(found["Interval"]),
        timeout=int(found["Timeout"]),
        rise=int(found["HealthyThreshold"]),
        fall=int(found["UnhealthyThreshold"]),
        matcher="200",  # "Any answer other than 200 OK within the timeout period is considered unhealthy."
        tcp=target.protocol in ("TCP", "SSL"),
    )


def check_port(health_check: dict | None, instance_port: int) -> int:
    """The port an ELB's health check reaches (its target's; the default checks the instance port)."""
    return instance_port if health_check is None else parse_target(str(health_check["Target"])).port


def drain_seconds(attributes: dict) -> float:
    """How long a deregistered instance drains: ConnectionDraining's Timeout when it is enabled, else 0 (removed at once)."""
    draining = {k.lower(): v for k, v in (attributes.get("connection_draining") or {}).items()}  # moto keeps the
    # request's own keys (Enabled, Timeout), its default lower-case ones
    if str(draining.get("enabled", False)).lower() != "true":
        return 0.0
    return float(draining.get("timeout") or DEFAULT_DRAIN)


def arn_of(account: str, region: str, name: str) -> str:
    """A Classic ELB's ARN (its name is unique per account and region)."""
    return f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/{name}"


def backend_name(name: str, arn: str, instance_port: int) -> str:
    """HAProxy's backend for an ELB's instances on one instance port (one per ELB in the usual single-port case)."""
    return f"clb-{name}-{instance_port}-{hashlib.sha256(arn.encode()).hexdigest()[:6]}"


def attachment_state(
    *, removing: bool, described: bool, at_create: bool, elb_checks: bool, any_in_service: bool
) -> str:
    """An Auto Scaling group's attachment to a Classic ELB, as autoscaling DescribeLoadBalancers says it.

    ``Removing`` while the group's instances deregister (draining); ``Adding``
    at the first look after AttachLoadBalancers (registration is not
    instant on AWS), then ``Added``; ``InService`` once an instance passed
    the ELB's check when the group's HealthCheckType is ELB, and at once
    for an ELB the group was made with (CreateAutoScalingGroup).
    """
    if removing:
        return REMOVING
    if at_create:
        return IN_SERVICE
    if not described:
        return ADDING
    if elb_checks and any_in_service:
        return IN_SERVICE
    return ADDED
