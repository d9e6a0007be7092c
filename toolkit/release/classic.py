"""The two slots behind a Classic ELB (``release.load_balancer_type: classic``): a release by rotation.

A Classic ELB has no target groups and no weights: it sends each request to
one of its registered instances that is InService. A slot is its Auto Scaling
group alone, and a slot takes traffic when its group is attached to the ELB
(``AttachLoadBalancers``: the group registers its instances, each InService
once it passes the ELB's health check, never before). So the release's
"weights" are attachments: ``{new: 50, old: 50}`` is both groups attached
(each InService instance its share), ``{new: 100, old: 0}`` the old group
detached (``DetachLoadBalancers``: its instances deregistered, in-flight
requests finishing for the connection draining timeout, the group's
load balancer state ``Removing`` meanwhile). The old group must not scale in
before that ends: detached, its instances are no longer the ELB's, and a
terminated one would cut its requests (``wait_detached``).

A slot not attached has no ELB health: its healthy instances are its group's
InService ones (EC2's checks); once attached, the ELB's InService ones.
https://docs.aws.amazon.com/autoscaling/ec2/userguide/attach-load-balancer-asg.html
https://docs.aws.amazon.com/elasticloadbalancing/latest/classic/config-conn-drain.html
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterator

import botocore.exceptions

from toolkit.aws import error_code
from toolkit.config import Config
from toolkit.errors import ReleaseError
from toolkit.release.planner import SLOTS

ATTACHED = ("Adding", "Added", "InService")  # autoscaling DescribeLoadBalancers states of a group taking traffic


def describe(config: Config, aws: Any, name: str, port: int, hint: str) -> dict:
    """The Classic ELB ``name`` with a listener on ``port``; ReleaseError naming what is absent."""
    try:
        lb = aws.client("elb").describe_load_balancers(LoadBalancerNames=[name])["LoadBalancerDescriptions"][0]
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "LoadBalancerNotFound":
            raise
        raise ReleaseError(f"Classic ELB {name!r} does not exist in {config.region}", hint) from None
    ports = [d["Listener"]["LoadBalancerPort"] for d in lb["ListenerDescriptions"]]
    if port not in ports:
        raise ReleaseError(
            f"Classic ELB {name!r} has no listener on port {port} (ports: {', '.join(map(str, ports)) or 'none'})", hint
        )
    return lb


def states(aws: Any, groups: dict[str, str], load_balancer: str) -> dict[str, str]:
    """Slot -> its group's state on ``load_balancer`` (Adding, Added, InService, Removing, Removed; '' when not attached)."""
    asg = aws.client("autoscaling")
    out = {}
    for slot in SLOTS:
        found = asg.describe_load_balancers(AutoScalingGroupName=groups[slot])["LoadBalancers"]
        out[slot] = next((lb["State"] for lb in found if lb["LoadBalancerName"] == load_balancer), "")
    return out


def weights(aws: Any, groups: dict[str, str], load_balancer: str) -> dict[str, int]:
    """Slot -> its "weight": 100 attached alone, 50 each when both are, 0 when not (or leaving)."""
    attached = [slot for slot, state in states(aws, groups, load_balancer).items() if state in ATTACHED]
    return {slot: (100 // len(attached) if slot in attached else 0) for slot in SLOTS}


def in_service(aws: Any, load_balancer: str, ids: set[str]) -> set[str]:
    """Of ``ids``, those the ELB reports InService (an instance it does not know is not)."""
    if not ids:
        return set()
    found = aws.client("elb").describe_instance_health(LoadBalancerName=load_balancer)["InstanceStates"]
    return {s["InstanceId"] for s in found if s["State"] == "InService"} & ids


def set_weights(aws: Any, groups: dict[str, str], load_balancer: str, wanted: dict[str, int]) -> None:
    """Attach every slot with weight first, then detach the others: a request always has somewhere to go."""
    asg = aws.client("autoscaling")
    now = states(aws, groups, load_balancer)
    for slot in SLOTS:
        if wanted.get(slot, 0) > 0 and now[slot] not in ATTACHED:
            asg.attach_load_balancers(AutoScalingGroupName=groups[slot], LoadBalancerNames=[load_balancer])
    for slot in SLOTS:
        if wanted.get(slot, 0) == 0 and now[slot] in ATTACHED:
            asg.detach_load_balancers(AutoScalingGroupName=groups[slot], LoadBalancerNames=[load_balancer])


def wait_detached(
    aws: Any, groups: dict[str, str], load_balancer: str, slot: str, timeout: float, pauses: Iterator[float]
) -> bool:
    """Until ``slot``'s group has left the ELB (its instances drained: no ``Removing``); False on timeout."""
    deadline = time.monotonic() + timeout
    while states(aws, groups, load_balancer)[slot] == "Removing":
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(next(pauses), max(deadline - time.monotonic(), 0.05)))
    return True


def wait_joined(
    aws: Any,
    load_balancer: str,
    ids: Callable[[], set[str]],
    timeout: float,
    pauses: Iterator[float],
    progress: Callable[[int, int], None] = lambda n, total: None,
) -> bool:
    """Until every instance of ``ids()`` (the slot's InService ones) is InService on the ELB; False on timeout."""
    deadline, seen = time.monotonic() + timeout, -1
    while True:
        wanted = ids()
        healthy = len(in_service(aws, load_balancer, wanted))
        if healthy != seen:
            progress(healthy, len(wanted))
            seen = healthy
        if wanted and healthy == len(wanted):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(next(pauses), max(deadline - time.monotonic(), 0.05)))


def drain_seconds(aws: Any, load_balancer: str) -> int:
    """The ELB's connection draining timeout; 0 when draining is off."""
    attrs = aws.client("elb").describe_load_balancer_attributes(LoadBalancerName=load_balancer)
    return draining_timeout(attrs["LoadBalancerAttributes"])


def draining_timeout(attributes: dict) -> int:
    """``drain_seconds`` of DescribeLoadBalancerAttributes's ``LoadBalancerAttributes`` (pure)."""
    draining = attributes.get("ConnectionDraining", {})
    return int(draining.get("Timeout", 300)) if draining.get("Enabled") else 0
