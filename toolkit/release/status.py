"""``invoke status``: the active slot, its AMI and config version, weights, health per slot, the last releases, the lock
and the newest release's picture."""

from __future__ import annotations

from typing import Any

from toolkit import lock, regions
from toolkit.config import Config
from toolkit.configvars import store as configvars
from toolkit.lineage import app_source, find_ami
from toolkit.release import ledger, report, scaled, scaling, slots


def everywhere(config: Config, aws: Any, history: int = 5) -> dict:
    """``status``, or with ``release.regions`` ``{"regions": {region: status there, ...}}`` in wave order."""
    if not slots.release_of(config).regions:
        return status(config, aws, history)
    return {"regions": {here.region: status(here, env, history) for here, env in regions.each(config, aws)}}


def status(config: Config, aws: Any, history: int = 5) -> dict:
    """Active slot, its AMI and git sha, weights, healthy/total per slot, last releases, lock, the newest picture's path."""
    rel = slots.release_of(config)
    env = slots.resolve(config, aws)
    state = slots.read(env, aws)
    active = state.active
    found = find_ami(aws, active.ami) if active.ami else None
    app = app_source((found or {}).get("tags", {}))
    per_slot = {
        s.name: {
            "target_group": env.groups[s.name],
            "weight": s.weight,
            "healthy": s.healthy,
            "instances": s.instances,
            "desired": s.desired,
            "ami": s.ami,
            "version": s.version,
            "config_version": s.config,
        }
        for s in (state.blue, state.green)
    }
    for name, group in scaling.read(env, aws).items():
        per_slot[name]["scaling"] = scaling.slot_status(config, env, group, state.slot(name).weight > 0)
    return {
        "app": config.app,
        "env": config.env,
        "active_slot": active.name,
        "ami": active.ami,
        "git_sha": (found or {}).get("tags", {}).get("rodeo:git-sha"),
        "app_version": app.get("version"),
        "app_commit": app.get("commit"),
        "config_version": active.config,
        "newest_config_version": configvars.newest(config, aws).number,
        "split": state.split,
        "weights": state.weights,
        "slots": per_slot,
        "releases": ledger.recent(config, aws, history),
        "lock": lock.holder(config, aws),
        "scaled": (found_scale.to_dict() if (found_scale := scaled.recorded(config, aws)) else None),
        "load_balancer_url": aws.listener_url(rel.load_balancer, rel.listener_port),
        "report": report.latest(config, getattr(aws, "state_dir", None)),
    }


def lines(config: Config, info: dict) -> list[str]:
    """The status as a person reads it (each region's in turn, for a release in waves)."""
    if "regions" in info:
        out = []
        for region, there in info["regions"].items():
            here = regions.in_region(config, next(w for w in regions.waves(config) if w.region == region))
            out += [f"{region}:"] + [f"  {line}" for line in lines(here, there)]
        return out
    out = [f"load balancer at {info['load_balancer_url']}"] if info.get("load_balancer_url") else []
    app = (
        f", app {info['app_version']} at {info['app_commit'].removeprefix('sha256:')[:12]}"
        if info.get("app_commit")
        else ""
    )
    staged = (
        f", newest v{info['newest_config_version']} not released"
        if info.get("newest_config_version", 0) != info.get("config_version", 0)
        else ""
    )
    out += [
        f"{config.app}/{config.env}: active {info['active_slot']} with {info['ami']} (git {info['git_sha'] or '?'}{app}), config v{info.get('config_version', 0)}{staged}"
        + ("  [traffic split: a release is in progress or was interrupted]" if info["split"] else "")
    ]
    for name, slot in info["slots"].items():
        out.append(
            f"  {name:5} weight {slot['weight']:3}  healthy {slot['healthy']}/{slot['instances']} (desired {slot['desired']})  {slot['ami']} config v{slot.get('config_version', 0)} (template v{slot['version']})"
        )
        out += scaling.status_lines(slot["scaling"], release_running=bool(info["lock"])) if "scaling" in slot else []
    if info.get("scaled"):
        sc = info["scaled"]
        out.append(
            f"  scaled to web={sc['desired']} (min {sc['min']}, max {sc['max']}) by {sc['by']} at {sc['at']}: the next release starts at it"
        )
    if info["lock"]:
        out.append(f"  locked by {info['lock']['by']} (pid {info['lock']['pid']}) since {info['lock']['since']}")
    for entry in info["releases"]:
        app = f" (app {entry['app_version']})" if entry.get("app_version") else ""
        cfg = (
            f" config v{entry.get('from_config_version') or 0} -> v{entry['config_version']}"
            if "config_version" in entry
            else ""
        )
        out.append(
            f"  {'v' + str(entry['number']) if entry.get('number') else '-':>5} {entry['started_at']}  {entry.get('kind', 'release'):8} {entry['outcome']:11} {entry.get('from_ami')} -> {entry['to_ami']}{app}{cfg} into {entry['new_slot']} steps {entry.get('steps')}"
            + (f"  ({entry['reason']})" if entry.get("reason") else "")
        )
    if info.get("report"):
        out.append(f"  picture of the last release drawn: {info['report']} ('invoke releases --report' draws it again)")
    return out
