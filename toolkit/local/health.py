"""Target health in ELBv2's words, from HAProxy's view of a server (pure).

``target_health`` maps one ``show stat`` row, plus what the controller knows
(booting, draining, ever passed its checks), to ``(State, Reason,
Description)`` as ``describe_target_health`` answers them on AWS.
``passed_its_first_check`` says when a new target is healthy: AWS's
Application Load Balancer guide ("Health checks for Application Load
Balancer target groups"): "After your target is registered, it must pass
one health check to be considered healthy"; ``HealthyThresholdCount`` is what
an unhealthy target needs to be healthy again. HAProxy's ``rise`` counts for
both, so the controller forces such a server up (``set server ... health
up``) at its first passed check.
"""

from __future__ import annotations

from toolkit.local.balancer import Check

INITIAL = ("initial", "Elb.RegistrationInProgress", "Target registration is in progress")
CHECKING = ("initial", "Elb.InitialHealthChecking", "Initial health checks in progress")
DRAINING = ("draining", "Target.DeregistrationInProgress", "Target deregistration is in progress")
NOT_IN_USE = ("unused", "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer")
STOPPED = ("unused", "Target.InvalidState", "Target is in the stopped state")
DISABLED = ("unavailable", "Target.HealthCheckDisabled", "Health checks are disabled")
HEALTHY = ("healthy", None, None)
_STOPPED_STATES = {"stopping", "stopped", "shutting-down", "terminated"}
_TIMEOUTS = {"L4TOUT", "L6TOUT", "L7TOUT"}


def target_health(
    row: dict | None, check: Check, *, instance_state: str, in_use: bool, draining: bool, seen_up: bool, age: float
) -> tuple:
    """``(state, reason, description)`` of one registered target.

    ``row`` is the server's ``show stat`` row (None before it exists); ``age``
    seconds since it was added to HAProxy. A target that never passed its
    checks stays ``initial`` until it has had time to fail ``fall`` of them.
    """
    if draining:
        return DRAINING
    if instance_state in _STOPPED_STATES:
        return STOPPED
    if not in_use:
        return NOT_IN_USE
    if row is None or instance_state == "pending":
        return INITIAL
    if not check.enabled:
        return DISABLED
    status = row.get("status", "")
    if status.startswith(("UP", "NOLB", "DRAIN")):
        return HEALTHY
    if not seen_up and (
        row.get("check_status") in ("INI", "L7OK", "") or age < check.fall * check.interval + check.timeout
    ):
        return CHECKING
    return unhealthy(row)


def passed_its_first_check(row: dict | None, check: Check, *, settled: bool) -> bool:
    """True for a target group's server not ``settled`` (never up, never reported unhealthy) whose last check, so its
    first passing one, passed."""
    if row is None or settled or not check.enabled:
        return False
    return row.get("status", "").startswith("DOWN") and row.get("check_status") == "L7OK"


def unhealthy(row: dict) -> tuple:
    """The ``unhealthy`` answer with AWS's reason code for HAProxy's last check result."""
    status = row.get("check_status", "")
    if status == "L7STS":
        return (
            "unhealthy",
            "Target.ResponseCodeMismatch",
            f"Health checks failed with these codes: [{row.get('check_code', '')}]",
        )
    if status in _TIMEOUTS:
        return ("unhealthy", "Target.Timeout", "Request timed out")
    return ("unhealthy", "Target.FailedHealthChecks", "Health checks failed")


# --- Classic ELB (DescribeInstanceHealth's State, ReasonCode, Description) ---------------------------------------

IN_SERVICE = ("InService", "N/A", "N/A")
REGISTERING = ("OutOfService", "ELB", "Instance registration is still in progress.")
FAILED = (
    "OutOfService",
    "Instance",
    "Instance has failed at least the UnhealthyThreshold number of health checks consecutively.",
)
# While its in-flight requests finish, a deregistering instance is InService (AWS's config-conn-drain.html).
DEREGISTERING = ("InService", "N/A", "Instance deregistration currently in progress.")
NOT_REGISTERED = ("OutOfService", "ELB", "Instance is not currently registered with the LoadBalancer.")
OTHER_ZONE = (
    "OutOfService",
    "ELB",
    "Instance is in the EC2 Availability Zone for which LoadBalancer is not configured to route traffic to.",
)
PENDING = ("OutOfService", "Instance", "Instance is in pending state.")
STOPPED_INSTANCE = ("OutOfService", "Instance", "Instance is in stopped state.")
TERMINATED = ("OutOfService", "Instance", "Instance is in terminated state.")


def instance_health(
    row: dict | None,
    check: Check,
    *,
    instance_state: str,
    registered: bool,
    draining: bool,
    zone_served: bool,
    seen_up: bool,
    age: float,
) -> tuple:
    """``(State, ReasonCode, Description)`` of one instance of a Classic ELB, as DescribeInstanceHealth answers.

    ``row`` is its server's ``show stat`` row (None before it exists), ``age``
    seconds since it was added to HAProxy. A new instance is ``OutOfService``
    (registration in progress) until it passes ``HealthyThreshold`` checks,
    or has had the time to fail ``UnhealthyThreshold`` of them.
    """
    if draining:
        return DEREGISTERING
    if not registered:
        return NOT_REGISTERED
    if instance_state in ("stopping", "stopped"):
        return STOPPED_INSTANCE
    if instance_state in ("shutting-down", "terminated"):
        return TERMINATED
    if instance_state == "pending":
        return PENDING
    if not zone_served:
        return OTHER_ZONE
    if row is None:
        return REGISTERING
    if row.get("status", "").startswith("UP"):
        return IN_SERVICE
    if not seen_up and (row.get("check_status") in ("INI", "") or age < check.fall * check.interval + check.timeout):
        return REGISTERING
    return FAILED
