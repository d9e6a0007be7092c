"""What the live stack serves of moto's Classic ELBs, and their instances' health (in moto's own process).

The controller (``toolkit.local.controller``) asks, each poll:

- ``listeners_of``: every HTTP listener (HTTP to HTTP instances) of every
  Classic ELB, each a HAProxy frontend that sends every request to
  ``backends_of``'s backend of its ELB and instance port (HTTPS, TCP and
  SSL listeners are not served: moto keeps them, nothing listens);
- ``servers_of``: each registered instance of a running, booted instance in
  a zone the ELB serves, a server of each of those backends;
- ``healths_of``: DescribeInstanceHealth's answer for each registered or
  draining instance the stack boots (``toolkit.local.health.instance_health``).

The health check reaches the port its target names: the backend on that port
checks its servers (a backend of its own when no listener routes to that
port, which no frontend uses); the ELB's backends on its other instance ports
have no checks of their own, and the controller keeps each of their servers
in maintenance or ready as the same instance's checked server is down or up
(HAProxy 2.6 refuses ``track`` of a dynamic server, and a check's ``port``
cannot move a unix socket): ``follows``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from toolkit.local import classic
from toolkit.local.balancer import Check
from toolkit.local.health import instance_health
from toolkit.local.motostate import LOCK, World, zone_of


@dataclass(frozen=True)
class ClassicBackend:
    """One Classic ELB's instances on one port: its HAProxy backend."""

    elb_arn: str
    name: str
    port: int
    check: Check
    follows: str = ""  # the checked backend whose servers' state its servers take ("": checked itself)


def served_listeners(lb) -> list:
    """The ELB's listeners the stack serves: HTTP in front, HTTP to the instances."""
    return [
        listener
        for listener in list(lb.listeners)
        if listener.protocol.upper() == classic.SERVED
        and str(getattr(listener, "instance_protocol", listener.protocol)).upper() == classic.SERVED
    ]


def listeners_of(world: World) -> list[tuple[str, object, object, str]]:
    """(ELB ARN, moto ELB, listener, backend name) of every served listener."""
    return [
        (arn, lb, listener, classic.backend_name(lb.name, arn, int(listener.instance_port)))
        for arn, lb in world.classics.items()
        for listener in served_listeners(lb)
    ]


def backends_of(world: World) -> dict[str, ClassicBackend]:
    """Backend name -> what it serves: the checked one on each ELB's health check port, one on each other
    instance port that follows it (AWS's default check when the ELB has none)."""
    found: dict[str, ClassicBackend] = {}
    for arn, lb in world.classics.items():
        ports = sorted({int(listener.instance_port) for listener in served_listeners(lb)})
        if not ports:
            continue
        try:
            health_check = classic.health_check_of(lb)
            check, port = classic.check_of(health_check, ports[0]), classic.check_port(health_check, ports[0])
        except ValueError:  # a target AWS refuses (toolkit.local.awsrules keeps it out): AWS's default check
            check, port = classic.check_of(None, ports[0]), ports[0]
        checked = classic.backend_name(lb.name, arn, port)
        found[checked] = ClassicBackend(arn, checked, port, check)
        for other in [p for p in ports if p != port]:
            name = classic.backend_name(lb.name, arn, other)
            found[name] = ClassicBackend(arn, name, other, replace(check, enabled=False), follows=checked)
    return found


def zones(world: World) -> dict[str, set[str]]:
    """ELB ARN -> the zones it routes to (``zones_of``), read under moto's lock."""
    with LOCK:
        return {arn: zones_of(arn, lb) for arn, lb in world.classics.items()}


def zones_of(arn: str, lb) -> set[str]:
    """The Availability Zones an ELB routes to: its subnets' and its own list (empty: moto knows neither)."""
    from moto.ec2.models import ec2_backends

    region, account = arn.split(":")[3:5]
    backend = ec2_backends[account][region]
    zones = set(lb.availability_zones or ())
    for subnet_id in list(lb.subnets or ()):
        try:
            zones.add(backend.get_subnet(getattr(subnet_id, "id", subnet_id)).availability_zone)
        except Exception:  # a subnet gone: no zone of it
            continue
    return zones


def zone_served(lb, inst, zones: set[str]) -> bool:
    """True when the ELB routes to the instance's zone (an ELB of no known zone routes to all)."""
    return not zones or zone_of(inst) in zones


def servers_of(
    world: World, booted: dict, zones: dict[str, set[str]]
) -> dict[tuple[str, str], tuple[str, object, int]]:
    """(backend, server name) -> (ELB ARN, booted instance, port) of every instance HAProxy should serve now."""
    wanted: dict[tuple[str, str], tuple[str, object, int]] = {}
    for backend in backends_of(world).values():
        lb = world.classics[backend.elb_arn]
        for iid in dict.fromkeys(list(lb.instance_ids)):
            found, inst = booted.get(iid), world.instances.get(iid)
            if found is None or not found.ready or inst is None or inst.state != "running":
                continue
            if zone_served(lb, inst, zones.get(backend.elb_arn, set())):
                wanted[(backend.name, f"{iid}-{backend.port}")] = (backend.elb_arn, found, backend.port)
    return wanted


def followed(backends: dict[str, ClassicBackend], key: tuple[str, str]) -> tuple[str, str] | None:
    """The checked server whose state server ``key`` (backend, "<instance id>-<port>") takes, or None."""
    backend = backends.get(key[0])
    if backend is None or not backend.follows:
        return None
    iid = key[1].rsplit("-", 1)[0]
    return backend.follows, f"{iid}-{backends[backend.follows].port}"


def healths_of(
    world: World, zones: dict[str, set[str]], served: dict, stats: dict, manages, now: float
) -> tuple[dict, dict]:
    """``(health, draining)``: (ELB ARN, instance id) -> answer; ELB ARN -> the instances draining from it.

    ``served``: the controller's (backend, server) -> ``Served``; ``stats``:
    ``show stat`` rows by (backend, server); ``manages(instance)``: the stack
    boots it (others are left to moto's answer). The checked backend's server answers.
    """
    health: dict[tuple[str, str], tuple] = {}
    draining: dict[str, list[str]] = {}
    checked = {b.elb_arn: b for b in backends_of(world).values() if not b.follows}
    for arn, lb in world.classics.items():
        backend = checked.get(arn)
        check = backend.check if backend is not None else classic.check_of(None, 80)
        gone = {s.instance_id for s in list(served.values()) if s.tg_arn == arn and s.drain_until is not None}
        draining[arn] = sorted(gone)
        for iid in dict.fromkeys([*lb.instance_ids, *gone]):
            inst = world.instances.get(iid)
            if inst is None or not manages(inst):
                continue
            key = (backend.name, f"{iid}-{backend.port}") if backend is not None else None
            s = served.get(key) if key is not None else None
            row = stats.get(key) if s is not None else None
            if row is not None and row.get("status", "").startswith("UP"):
                s.seen_up = True
            health[(arn, iid)] = instance_health(
                row,
                check,
                instance_state=inst.state,
                registered=iid in lb.instance_ids,
                draining=iid in gone,
                zone_served=zone_served(lb, inst, zones.get(arn, set())),
                seen_up=bool(s and s.seen_up),
                age=now - s.added if s is not None else 0.0,
            )
    return health, draining
