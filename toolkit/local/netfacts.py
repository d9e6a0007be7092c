"""Moto's EC2 network state as ``toolkit.vpc``'s facts (in moto's own process).

``network_view`` answers the controller's two questions for the instances it
booted: which AWS services each reaches, and whether the load balancer may
reach each registered port. ``read_network`` copies, per account and region,
the security groups' ingress rules, subnets, route tables, NAT and internet
gateways and VPC endpoints into a ``network.Vpc``; ``host_of`` and
``load_balancer_of`` read an instance's and a load balancer's side. The copy
is a few dozen objects on the local stack: cheap enough for every poll.
"""

from __future__ import annotations

import re

from toolkit.local import classic
from toolkit.local.motostate import LOCK, World, forwarded
from toolkit.vpc import (
    Endpoint,
    Host,
    Route,
    Rule,
    Vpc,
    admits_load_balancer,
    endpoint_reach,
    endpoint_service,
)


def network_view(world: World, booted: set[str]) -> tuple[dict[str, frozenset], dict[tuple[str, int], bool]]:
    """``(reach, admitted)``: instance id -> the services it reaches; (instance id, port) -> a load balancer reaches it.

    A port registered in several target groups (or Classic ELBs) is admitted
    when any load balancer forwarding to one of them is. Read under ``LOCK``, between two requests.
    """
    with LOCK:
        return _network_view(world, booted)


def _network_view(world: World, booted: set[str]) -> tuple[dict[str, frozenset], dict[tuple[str, int], bool]]:
    vpcs: dict[int, Vpc] = {}

    def vpc_of(inst) -> Vpc:
        if id(inst.ec2_backend) not in vpcs:
            vpcs[id(inst.ec2_backend)] = read_network(inst.ec2_backend)
        return vpcs[id(inst.ec2_backend)]

    ours = {iid: world.instances[iid] for iid in booted if iid in world.instances}
    reach = {iid: endpoint_reach(host_of(inst), vpc_of(inst)) for iid, inst in ours.items()}
    balancers: dict[str, list] = {}
    for lb, listener in world.listeners.values():
        for tg_arn in forwarded(listener):
            balancers.setdefault(tg_arn, []).append(load_balancer_of(lb))
    admitted: dict[tuple[str, int], bool] = {}
    for tg in world.target_groups.values():
        for target in list(tg.targets.values()):
            inst = ours.get(target["Id"])
            if inst is None:
                continue
            key = (inst.id, int(target.get("Port") or tg.port))
            ok = any(
                admits_load_balancer(host_of(inst), key[1], groups, subnets, vpc_of(inst))
                for groups, subnets in balancers.get(tg.arn, [])
            )
            admitted[key] = admitted.get(key, False) or ok
    for lb in world.classics.values():  # a Classic ELB reaches its instances' ports by its own security groups
        groups, subnets = load_balancer_of(lb)
        ports = {int(listener.instance_port) for listener in list(lb.listeners)} | check_ports(lb)
        for iid in dict.fromkeys(list(lb.instance_ids)):
            inst = ours.get(iid)
            for port in ports if inst is not None else ():
                ok = admits_load_balancer(host_of(inst), port, groups, subnets, vpc_of(inst))
                admitted[(iid, port)] = admitted.get((iid, port), False) or ok
    return reach, admitted


def check_ports(lb) -> set[int]:
    """The port a Classic ELB's health check reaches (none when its target is one AWS refuses)."""
    try:
        return {classic.check_port(classic.health_check_of(lb), 0)} - {0}
    except ValueError:
        return set()


def read_network(backend) -> Vpc:
    """One moto EC2 backend (an account and region) as a ``Vpc`` of facts."""
    ingress, default_group = {}, {}
    for vpc_id, groups in list(backend.groups.items()):
        for group in list(groups.values()):
            ingress[group.id] = tuple(_rule(r) for r in list(group.ingress_rules))
            if group.name == "default" and vpc_id:
                default_group[vpc_id] = group.id
    subnets = {
        s.id: (s.vpc_id, str(s.cidr_block)) for zone in list(backend.subnets.values()) for s in list(zone.values())
    }
    tables, associations, mains = {}, {}, {}
    for table in list(backend.route_tables.values()):
        tables[table.id] = tuple(
            Route(str(r.destination_cidr_block), _route_target(r)) for r in table.routes if r.destination_cidr_block
        )
        if table.main_association_id is not None:
            mains[table.vpc_id] = table.id
        for target in list(table._associations.values()):
            if target.startswith("subnet-"):
                associations[target] = table.id
    nats = {
        n.id: n.subnet_id
        for n in list(backend.nat_gateways.values())
        if n.state == "available" and getattr(n, "connectivity_type", "public") != "private"
    }
    attached = {g.id: g.vpc.id for g in list(backend.internet_gateways.values()) if g.vpc is not None}
    endpoints = tuple(
        Endpoint(
            e.vpc_id,
            endpoint_service(e.service_name),
            e.vpc_endpoint_type or "Gateway",
            tuple(e.route_table_ids or ()),
            e.private_dns_enabled in (True, "true", "True", None),
            e.state == "available",
        )
        for e in list(backend.vpc_end_points.values())
        if _serves_here(e.service_name, backend.region_name)
    )
    return Vpc(ingress, default_group, subnets, tables, associations, mains, nats, attached, endpoints)


def _serves_here(service_name: str, region: str) -> bool:
    """False for an endpoint of another region's service (``com.amazonaws.<other region>.ssm``, PrivateLink's
    cross-region endpoints): not served here, stricter than AWS, never more forgiving (it would pass this region's
    requests for that service)."""
    named = re.match(r"^(?:aws\.sagemaker\.|com\.amazonaws\.)([a-z0-9-]+)\.", service_name)
    return named is None or named.group(1) == region


def reach_of(inst) -> frozenset:
    """The AWS services one moto instance reaches now (for an instance booted between two polls)."""
    return endpoint_reach(host_of(inst), read_network(inst.ec2_backend))


def _rule(rule) -> Rule:
    cidr = (rule.ip_range or {}).get("CidrIp")
    group = (rule.source_group or {}).get("GroupId")
    protocol = str(rule.ip_protocol or "-1")
    return Rule(protocol, rule.from_port, rule.to_port, (cidr,) if cidr else (), (group,) if group else ())


def _route_target(route) -> str:
    if route.local:
        return "local"
    for target in (route.gateway_id, route.nat_gateway_id, route.instance_id, getattr(route.interface, "id", None)):
        if target:
            return target
    return "blackhole"


def host_of(inst) -> Host:
    """A moto instance as the network sees it: its subnet, security groups and whether it has a public IP."""
    groups = tuple(g.id for g in inst.security_groups if hasattr(g, "id"))
    return Host(inst.subnet_id, groups, bool(inst.public_ip))


def load_balancer_of(lb) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A moto load balancer's (security group ids, subnet ids)."""
    subnets = tuple(getattr(s, "id", s) for s in lb.subnets)
    return tuple(lb.security_groups or ()), subnets


def backends() -> dict:
    """(account, region) -> moto's EC2 backend, for every one moto has made."""
    from moto.ec2.models import ec2_backends

    return {
        (account_id, region): backend
        for account_id, account in list(dict.items(ec2_backends))
        for region, backend in list(dict.items(account))
    }
