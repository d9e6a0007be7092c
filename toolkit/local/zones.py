"""Which zone an Auto Scaling group launches in, which instances it terminates, and the zones a drill lost.

EC2 Auto Scaling keeps a group's instances balanced across the Availability
Zones of its subnets: it launches each new instance in the zone with the
fewest, and when it scales in, "maintaining zonal balance takes precedence
over the termination policy"
(https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-termination-policies.html).
The default termination policy, in the zone (or zones) with the most
instances that has at least one not protected from scale in, picks:

1. an instance launched from another launch template than the group's, then
   one launched from the oldest version of its template;
2. then the one closest to its next billing hour;
3. then one at random.

moto 5.2.6 launches every instance of a group in its first subnet and
terminates in the order it holds them; ``toolkit.local.motoserver`` asks this
module instead. Ties AWS breaks at random are broken here by the order of the
group's subnets (launch) and by instance id (termination), so a test can
predict them.

A lost zone (``lose``, the live stack's drill: ``invoke local.fail-zone``)
is an Availability Zone gone dark: the live stack freezes every instance in
it (they stay ``running`` to EC2 and answer nothing, so the load balancer's
checks time out) and no group launches there, as EC2 Auto Scaling launches
in the zones that still work when one is impaired. The zones lost are the
lines of the live stack's ``lost-zones`` file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BILLING_HOUR = 3600.0
LOST_FILE = "lost-zones"  # in the live stack's folder: one lost zone a line


@dataclass(frozen=True)
class Member:
    """One instance of a group, as the termination policy sees it."""

    id: str
    zone: str
    template: str | None = None  # the launch template it was launched from (its id)
    version: int | None = None  # that template's version
    age: float = 0.0  # seconds since its launch
    protected: bool = False  # protected from scale in


def launch_subnets(
    subnets: list[tuple[str, str]], members: list[Member], count: int, lost: frozenset[str] = frozenset()
) -> list[str]:
    """The subnet of each of ``count`` new instances: each in the zone with the fewest instances then.

    ``subnets``: the group's (subnet, zone) pairs in its order; a zone's first
    subnet is used. Ties go to the zone listed first. No instance goes to a
    ``lost`` zone: with every zone lost, none is launched (fewer subnets than ``count``).
    """
    first_subnet: dict[str, str] = {}
    for subnet, zone in subnets:
        if zone not in lost:
            first_subnet.setdefault(zone, subnet)
    zones = list(first_subnet)
    if not zones:
        return []
    counts = {zone: sum(1 for m in members if m.zone == zone) for zone in zones}
    chosen = []
    for _ in range(count):
        zone = min(zones, key=lambda z: (counts[z], zones.index(z)))
        counts[zone] += 1
        chosen.append(first_subnet[zone])
    return chosen


def termination_order(members: list[Member], count: int, template: str | None) -> list[str]:
    """The ids of the ``count`` instances the default termination policy ends, in the order it ends them.

    ``template``: the launch template the group launches from now. Protected
    instances are never chosen (fewer than ``count`` ids when too few are not).
    """
    left = list(members)
    chosen: list[str] = []
    while len(chosen) < count:
        open_zones = {m.zone for m in left if not m.protected}
        if not open_zones:
            break
        most = max(sum(1 for m in left if m.zone == zone) for zone in open_zones)
        zones = {zone for zone in open_zones if sum(1 for m in left if m.zone == zone) == most}
        candidates = [m for m in left if m.zone in zones and not m.protected]
        oldest_version = min((m.version for m in candidates if m.version is not None), default=None)
        pick = min(
            candidates,
            key=lambda m: (
                m.template == template,  # another template's first
                m.version != oldest_version,  # then the oldest version's
                BILLING_HOUR - m.age % BILLING_HOUR,  # then the closest to its next billing hour
                m.id,
            ),
        )
        chosen.append(pick.id)
        left.remove(pick)
    return chosen


def lost_zones(live_dir: Path | None) -> frozenset[str]:
    """The zones the live stack in ``live_dir`` has lost (none without a live stack or a drill)."""
    if live_dir is None:
        return frozenset()
    try:
        return frozenset(line.strip() for line in (live_dir / LOST_FILE).read_text().splitlines() if line.strip())
    except OSError:
        return frozenset()


def lose(live_dir: Path, zone: str, lost: bool = True) -> frozenset[str]:
    """Lose ``zone`` (or get it back, ``lost=False``) on the live stack in ``live_dir``; the zones lost now."""
    now = set(lost_zones(live_dir))
    now = now | {zone} if lost else now - {zone}
    path = live_dir / LOST_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{z}\n" for z in sorted(now)))
    tmp.replace(path)
    return frozenset(now)
