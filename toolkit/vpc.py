"""The VPC's rules as AWS applies them (pure): what the live local stack enforces, what ``invoke doctor`` checks.

The live local stack (``toolkit.local.netfacts``: facts read from moto) asks
two questions of EC2's state, every time it changes, and ``invoke doctor``
(``toolkit.doctor.facts``: facts read from an account) asks them before the
first release:

- ``admits_load_balancer``: may the load balancer reach an instance's target
  port? Only when one of the instance's security groups has an ingress rule
  on that port naming one of the load balancer's security groups, or a CIDR
  range holding the load balancer's addresses. An ALB's nodes take private
  addresses in each of its subnets, so a CIDR admits it when it contains
  every one of the load balancer's subnets. Otherwise the packets are
  dropped: health checks time out (``Target.Timeout``).
  https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-register-targets.html#target-security-groups
- ``endpoint_reach``: which AWS services can an instance reach? All of them
  when its subnet's route table (its own, else the VPC's main one) sends
  ``0.0.0.0/0`` to an available NAT gateway (itself in a subnet routed to an
  attached internet gateway), or to an attached internet gateway while the
  instance has a public IP; else only the services the VPC has an available
  endpoint for (a gateway endpoint when the subnet's route table is one of
  its route tables; an interface endpoint with private DNS, for the whole
  VPC); else none. An endpoint serves its own region only: a request for
  another region's service needs the NAT or internet gateway (``reaches``).
  https://docs.aws.amazon.com/vpc/latest/userguide/route-table-options.html
  https://docs.aws.amazon.com/vpc/latest/privatelink/privatelink-access-aws-services.html

Not modelled: network ACLs, security group egress rules, an interface
endpoint's own security groups, prefix-list rules, IPv6.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

EVERY_SERVICE = "*"
ALL = frozenset({EVERY_SERVICE})
NONE: frozenset = frozenset()


@dataclass(frozen=True)
class Rule:
    """One ingress permission of a security group."""

    protocol: str  # "-1" (all), "tcp", "udp", "icmp" or a number
    from_port: int | None = None
    to_port: int | None = None
    cidrs: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()  # source security group ids


@dataclass(frozen=True)
class Route:
    destination: str  # an IPv4 CIDR
    target: str  # "local", "igw-...", "nat-...", "vpce-...", "eni-..."


@dataclass(frozen=True)
class Endpoint:
    """A VPC endpoint: ``service`` is the service's signing name (``ssm``, ``logs``, ``s3``)."""

    vpc: str
    service: str
    kind: str  # "Gateway" or "Interface"
    route_tables: tuple[str, ...] = ()
    private_dns: bool = True
    available: bool = True


@dataclass(frozen=True)
class Vpc:
    """What decides reachability in one account and region (ids are unique in it)."""

    ingress: dict[str, tuple[Rule, ...]] = field(default_factory=dict)  # security group id -> rules
    default_group: dict[str, str] = field(default_factory=dict)  # vpc id -> its "default" group id
    subnets: dict[str, tuple[str, str]] = field(default_factory=dict)  # subnet id -> (vpc id, CIDR)
    route_tables: dict[str, tuple[Route, ...]] = field(default_factory=dict)
    associations: dict[str, str] = field(default_factory=dict)  # subnet id -> its route table id
    main_tables: dict[str, str] = field(default_factory=dict)  # vpc id -> main route table id
    nat_gateways: dict[str, str] = field(default_factory=dict)  # available NAT gateway id -> its subnet id
    attached_gateways: dict[str, str] = field(default_factory=dict)  # internet gateway id -> vpc id
    endpoints: tuple[Endpoint, ...] = ()


@dataclass(frozen=True)
class Host:
    """An instance as the network sees it."""

    subnet: str | None
    groups: tuple[str, ...]
    public_ip: bool


def endpoint_service(service_name: str) -> str:
    """A VPC endpoint's service name (``com.amazonaws.us-east-1.ssm``) as a signing name (``ssm``)."""
    name = re.sub(r"^(aws\.sagemaker\.|com\.amazonaws\.)[a-z0-9-]+\.", "", service_name)
    return {"ecr.api": "ecr", "ecr.dkr": "ecr"}.get(name, name)


def port_allowed(rule: Rule, port: int) -> bool:
    """True when ``rule`` covers TCP ``port``."""
    if rule.protocol in ("-1", "all"):
        return True
    if rule.protocol not in ("tcp", "6"):
        return False
    return rule.from_port is not None and rule.to_port is not None and rule.from_port <= port <= rule.to_port


def groups_of(host: Host, vpc: Vpc) -> tuple[str, ...]:
    """The host's security groups; none named: its VPC's default group (as EC2 assigns it)."""
    if host.groups:
        return host.groups
    vpc_id = vpc.subnets.get(host.subnet or "", ("", ""))[0]
    return (vpc.default_group[vpc_id],) if vpc_id in vpc.default_group else ()


def admits_load_balancer(
    host: Host, port: int, lb_groups: tuple[str, ...], lb_subnets: tuple[str, ...], vpc: Vpc
) -> bool:
    """True when one of ``host``'s security groups lets the load balancer in on TCP ``port``.

    ``lb_groups`` are the load balancer's security groups (none: its VPC's
    default group), ``lb_subnets`` its subnets (their CIDRs are where its
    nodes' addresses come from).
    """
    if not lb_groups and lb_subnets:
        vpc_id = vpc.subnets.get(lb_subnets[0], ("", ""))[0]
        lb_groups = (vpc.default_group[vpc_id],) if vpc_id in vpc.default_group else ()
    lb_cidrs = [ipaddress.ip_network(vpc.subnets[s][1]) for s in lb_subnets if s in vpc.subnets]
    for group in groups_of(host, vpc):
        for rule in vpc.ingress.get(group, ()):
            if not port_allowed(rule, port):
                continue
            if set(rule.groups) & set(lb_groups):
                return True
            if lb_cidrs and any(_contains_all(cidr, lb_cidrs) for cidr in rule.cidrs):
                return True
    return False


def _contains_all(cidr: str, networks: list) -> bool:
    try:
        outer = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False
    return all(outer.version == n.version and n.subnet_of(outer) for n in networks)


def route_table_of(subnet: str, vpc: Vpc) -> str | None:
    """The subnet's route table: its explicit association, else its VPC's main table."""
    if subnet in vpc.associations:
        return vpc.associations[subnet]
    vpc_id = vpc.subnets.get(subnet, ("", ""))[0]
    return vpc.main_tables.get(vpc_id)


def default_target(table: str | None, vpc: Vpc) -> str | None:
    """Where ``table`` sends traffic for the internet (its ``0.0.0.0/0`` route), if anywhere."""
    for route in vpc.route_tables.get(table or "", ()):
        if route.destination == "0.0.0.0/0":
            return route.target
    return None


def _internet_gateway_route(subnet: str, vpc: Vpc) -> bool:
    target = default_target(route_table_of(subnet, vpc), vpc) or ""
    vpc_id = vpc.subnets.get(subnet, ("", ""))[0]
    return target.startswith("igw-") and vpc.attached_gateways.get(target) == vpc_id


def endpoint_reach(host: Host, vpc: Vpc) -> frozenset:
    """The services ``host`` can reach: ``ALL``, a set of signing names, or ``NONE``."""
    if not host.subnet or host.subnet not in vpc.subnets:
        return NONE
    table = route_table_of(host.subnet, vpc)
    target = default_target(table, vpc) or ""
    if (
        target.startswith("nat-")
        and target in vpc.nat_gateways
        and _internet_gateway_route(vpc.nat_gateways[target], vpc)
    ):
        return ALL
    if host.public_ip and _internet_gateway_route(host.subnet, vpc):
        return ALL
    vpc_id = vpc.subnets[host.subnet][0]
    services = {
        e.service
        for e in vpc.endpoints
        if e.available
        and e.vpc == vpc_id
        and ((e.kind == "Gateway" and table in e.route_tables) or (e.kind == "Interface" and e.private_dns))
    }
    return frozenset(services)


def reaches(reach: frozenset, service: str | None, elsewhere: bool = False) -> bool:
    """True when a request for ``service`` (None: unsigned, unknown) gets through with ``reach``.

    ``elsewhere``: the request is for another region than the VPC's (an instance of a release in waves reading its
    config in ``region:``). A VPC endpoint serves its own region's service (``com.amazonaws.<region>.ssm``); another
    region's endpoint name resolves to that region's public addresses, so only a way to the internet (``ALL``: a
    NAT or internet gateway) carries it.
    """
    if elsewhere:
        return EVERY_SERVICE in reach
    return EVERY_SERVICE in reach or (service is not None and service in reach)
