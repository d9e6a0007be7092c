"""Doctor's network checks, pure on ``Facts``: the instances' way to AWS, the load balancer's zones and its way in.

On AWS an instance with no route out reaches nothing: its config loader
cannot read SSM, its logs never reach CloudWatch Logs, and ``web.service``
never starts. A target whose security groups do not admit the load
balancer's is never healthy. Neither shows until the first release.
"""

from __future__ import annotations

from toolkit import vpc
from toolkit.doctor.checks import FAIL, OK, WARN, Check, listed, no_load_balancer
from toolkit.doctor.facts import Facts, Subnet

# What the instances call at boot: their config vars (SSM), their logs (CloudWatch Logs), and S3 (packages, artifacts).
SERVICES = ("ssm", "logs", "s3")


def way_out(subnet: Subnet, facts: Facts) -> tuple[str, list[str]]:
    """How instances in ``subnet`` reach AWS's endpoints, and the services they cannot reach ([] when all).

    ``toolkit.vpc.endpoint_reach``, the rule the local stack enforces: a route
    to an available NAT gateway (itself routed to an attached internet
    gateway), or to an attached internet gateway with a public IP on launch,
    reaches every service; otherwise each service needs a VPC endpoint: an
    interface endpoint with private DNS (so the SDK's default host name
    resolves to it), or a gateway endpoint on the subnet's route table.
    https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html
    """
    reach = vpc.endpoint_reach(vpc.Host(subnet.id, (), subnet.public_ip_on_launch), facts.network or vpc.Vpc())
    route = subnet.default_route
    if reach == vpc.ALL:
        return (f"NAT gateway {route}" if route.startswith("nat-") else f"internet gateway {route} with public IPs"), []
    # A release in waves' instances read their config vars (SSM) in region:, which no endpoint of theirs serves.
    return "VPC endpoints", [
        s for s in SERVICES if not vpc.reaches(reach, s, elsewhere=bool(facts.config_region) and s == "ssm")
    ]


def _why_not(subnet: Subnet) -> str:
    route = subnet.default_route
    if route.startswith("igw-"):
        return f"a route to internet gateway {route} but no public IP on launch (or the gateway is not attached)"
    if route.startswith("nat-"):
        return f"a route to NAT gateway {route}, which is not available or has no route to an internet gateway"
    return "no route to a NAT or internet gateway"


def instance_network(facts: Facts) -> Check:
    """Each subnet the instances launch in reaches SSM, CloudWatch Logs and S3."""
    rel = facts.release
    if rel is None:
        return Check("network", OK, "no release: no instances to check")
    if "network" in facts.errors:
        return Check("network", FAIL, f"cannot read the instances' subnets: {facts.errors['network']}")
    if facts.load_balancer is None and not rel.subnets:
        return no_load_balancer(facts, "network")
    bad: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for subnet in facts.subnets:
        missing = way_out(subnet, facts)[1]
        if missing:
            bad.setdefault((_why_not(subnet), tuple(missing)), []).append(f"{subnet.id} ({subnet.zone})")
    if bad:
        said = [
            f"subnet{'s' if len(where) > 1 else ''} {', '.join(where)}: {why}, and no VPC endpoint for {', '.join(missing)}"
            + (
                f" (config vars are read in {facts.config_region}, which no VPC endpoint here serves)"
                if facts.config_region and "ssm" in missing
                else ""
            )
            for (why, missing), where in bad.items()
        ]
        return Check(
            "network",
            FAIL,
            f"{'; '.join(said)}: instances there cannot load their config or ship logs; route 0.0.0.0/0 to a NAT "
            "gateway or add the endpoints",
        )
    ways = sorted({way_out(s, facts)[0] for s in facts.subnets})
    return Check("network", OK, f"{len(facts.subnets)} instance subnet(s) reach SSM, Logs and S3 ({', '.join(ways)})")


def lb_zones(facts: Facts) -> Check:
    """The load balancer spans two zones or more, and serves every zone the instances launch in."""
    rel = facts.release
    if rel is None:
        return Check("lb-zones", OK, "no release load balancer to check")
    if facts.load_balancer is None:
        return no_load_balancer(facts, "lb-zones")
    zones = facts.lb_zones
    if len(set(zones)) < 2 and rel.load_balancer_type == "classic":  # AWS allows it; a lost zone takes it down
        return Check(
            "lb-zones",
            WARN,
            f"Classic ELB {facts.load_balancer} spans {len(set(zones))} zone ({', '.join(zones) or 'none'}); "
            "give it subnets in two zones or more, or a lost zone takes every instance with it",
        )
    if len(set(zones)) < 2:
        return Check(
            "lb-zones",
            FAIL,
            f"load balancer {facts.load_balancer} spans {len(set(zones))} zone ({', '.join(zones) or 'none'}); "
            "an Application Load Balancer needs subnets in at least two zones",
        )
    outside = sorted({s.zone for s in facts.subnets} - set(zones))
    if outside:
        return Check(
            "lb-zones",
            FAIL,
            f"instances launch in {', '.join(outside)}, where load balancer {facts.load_balancer} has no subnet: "
            "their targets stay unused; enable that zone on it or fix release.subnets",
        )
    return Check(
        "lb-zones", OK, f"load balancer {facts.load_balancer} spans {len(set(zones))} zones ({', '.join(zones)})"
    )


def admits(facts: Facts, port: int) -> bool:
    """Whether the instances' security groups let the load balancer in on ``port`` (``toolkit.vpc.admits_load_balancer``,
    the rule the local stack enforces): from one of its security groups, or from a range holding all of its subnets."""
    lb_subnets = tuple(f"lb-subnet-{n}" for n in range(len(facts.lb_subnet_cidrs)))  # the rule needs their ranges only
    model = vpc.Vpc(
        ingress={group: facts.ingress for group in facts.instance_groups},
        subnets={name: ("", cidr) for name, cidr in zip(lb_subnets, facts.lb_subnet_cidrs)},
    )
    return vpc.admits_load_balancer(
        vpc.Host(None, facts.instance_groups, False), port, facts.lb_groups, lb_subnets, model
    )


def lb_to_instances(facts: Facts) -> Check:
    """The instances' security groups admit the load balancer's on each slot's target port."""
    rel = facts.release
    if rel is None:
        return Check("lb-to-instances", OK, "no release load balancer to check")
    if facts.load_balancer is None:
        return no_load_balancer(facts, "lb-to-instances")
    if "security_groups" in facts.errors:
        return Check(
            "lb-to-instances", FAIL, f"cannot read the instances' security groups: {facts.errors['security_groups']}"
        )
    ports = sorted({g.port for g in facts.target_groups})
    shut = [p for p in ports if not admits(facts, p)]
    lb = listed(list(facts.lb_groups)) or "(none)"
    groups = listed(list(facts.instance_groups)) + ("" if rel.security_groups else " (the VPC's default)")
    if shut:
        return Check(
            "lb-to-instances",
            FAIL,
            f"the instances' security groups {groups} do not admit the load balancer's {lb} on port "
            f"{', '.join(map(str, shut))}: health checks time out; allow tcp {shut[0]} from {facts.lb_groups[0] if facts.lb_groups else 'it'}",
        )
    return Check(
        "lb-to-instances",
        OK,
        f"the instances' security groups admit the load balancer on port {', '.join(map(str, ports))}",
    )
