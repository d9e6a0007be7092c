"""Keeps real instances and HAProxy in step with moto's EC2 and ELBv2 state.

Runs as a thread inside the moto server's process (``toolkit.local.motoserver
--live DIR``) and reads moto's backends directly, every ``POLL`` seconds:

- an instance whose AMI has a local image boots (``toolkit.local.instances``):
  moto shows it ``pending`` until its systemd is up, then ``running``; an
  image that cannot boot ends ``terminated`` with the reason; a stopped
  instance is shut down and keeps its disk, a terminated one loses it (after
  its targets drained);
- each listener is a HAProxy frontend, each target group a backend, each
  registered target of a running instance a server (``toolkit.local.balancer``);
  each Classic ELB's HTTP listener a frontend too, its registered instances
  the servers of a backend of its own (``toolkit.local.classiclive``), drained
  for its connection draining timeout or until their in-flight requests end;
- ``health_of`` answers ``describe_target_health`` from HAProxy's checks,
  ``classic_health_of`` DescribeInstanceHealth (``toolkit.local.classicpatches``);
  a target moto deregisters is drained in HAProxy before moto answers, not a
  poll later (``deregistered``), as AWS's load balancer stops at once;
- each booted instance has a metadata service on 169.254.169.254 and the
  AWS endpoint on 127.0.0.1:4566 inside its namespace (``toolkit.local.imds``,
  ``Booted.metadata``), and ``AWS_ENDPOINT_URL`` in its services' environment;
- HAProxy's counts become ``AWS/ApplicationELB`` (and ``AWS/ELB``) metrics in moto's CloudWatch,
  and every metric alarm is evaluated on its data (``toolkit.local.monitor``);
- every Auto Scaling group's scheduled actions run at their times on the
  stack's clock (``toolkit.local.clock``), and its target tracking policies
  on those metrics (``ALBRequestCountPerTarget``) or on its instances' CPU,
  measured in their cgroups (``ASGAverageCPUUtilization``,
  ``toolkit.local.cpu``) (``toolkit.local.scaler``), resizing the group
  through moto as SetDesiredCapacity does: its new
  instances boot, and a terminated one drains before it stops (as above);
- HAProxy's log of each request becomes the load balancer's access logs in
  moto's S3, where its attributes turn them on (``toolkit.local.accesslogs``);
- the VPC's rules hold (``toolkit.vpc``, re-read every poll): a
  target port the instance's security groups do not open to the load
  balancer is a black hole (its checks time out), and an instance's AWS
  endpoint carries only what its subnet's routes and the VPC's endpoints
  reach (``toolkit.local.netproxy``).

Packer's build instances (tagged ``rodeo:bake``) boot too, with the
differences ``toolkit.local.buildinstances`` lists. Instances of AMIs
without a local image are left to moto as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

from toolkit.local import (
    accesslogs,
    buildinstances,
    cgroups,
    classic,
    classiclive,
    clock,
    cpu,
    egress,
    instances,
    zones,
)
from toolkit.local.balancer import (
    REQUEST_LOG,
    Backend,
    Check,
    Frontend,
    HAProxy,
    Server,
    apportion,
    render_config,
    servers_of,
)
from toolkit.local.health import DEREGISTERING, DRAINING, NOT_REGISTERED, passed_its_first_check, target_health
from toolkit.local.imds import MetadataServer, role_credentials
from toolkit.local.listenerrules import map_name, write_patterns
from toolkit.local.monitor import Monitor
from toolkit.local.motostate import (
    LOCK,
    World,
    backend_name,
    check_of,
    drain_seconds,
    forget_target,
    forward_weights,
    group_stickiness,
    groups_of_instances,
    identity_of,
    put_metrics,
    read_moto,
    rules_of,
    set_state,
    short,
    target_stickiness,
    vcpus_of,
    zone_of,
)
from toolkit.local.netfacts import network_view, reach_of
from toolkit.local.netproxy import EndpointProxy, TargetPorts
from toolkit.local.scaler import Scaler
from toolkit.local.store import ImageStore
from toolkit.vpc import NONE

POLL = 0.5
_CONTROL = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|[\x00-\x1f\x7f]")
log = logging.getLogger("rodeo.live")


@dataclass
class Served:
    """A server in HAProxy for one (target group, instance, port)."""

    tg_arn: str
    instance_id: str
    port: int
    added: float = field(default_factory=time.monotonic)
    seen_up: bool = False
    seen_unhealthy: bool = False  # reported unhealthy before it was ever up: it needs HealthyThresholdCount checks
    drain_until: float | None = None


def printable(text: str) -> str:
    """``text`` without terminal colour codes or control characters: an instance's state reason is in XML replies, which may hold neither."""
    return _CONTROL.sub("", text)


class Controller:
    """The live local stack's reconciler (one per moto server)."""

    def __init__(self, live_dir: Path, store: ImageStore, run_dir: Path, aws_port: int | None = None) -> None:
        self.dir, self.store, self.run_dir, self.aws_port = live_dir, store, run_dir, aws_port
        self.instances_dir = live_dir / "instances"
        self.booted: dict[str, instances.Booted] = {}
        self.failed: set[str] = set()
        self.frozen: set[str] = set()  # instances of a lost zone (toolkit.local.zones), frozen
        self.bakes: dict[str, str] = {}  # instance id -> the bake it was launched for ("" for any other)
        self._managed: dict[str, bool] = {}
        self.served: dict[tuple[str, str], Served] = {}  # (backend, server name)
        self.frontends: dict[str, Frontend] = {}  # listener ARN -> frontend
        self.urls: dict[str, dict] = {}
        self.structure: tuple | None = None
        self.maps: dict[str, list[str]] = {}
        self.health: dict[tuple[str, str], tuple] = {}  # (tg ARN, target id) -> answer
        self.draining: dict[str, list[dict]] = {}  # tg ARN -> targets being drained
        self.left: dict[tuple[str, str], dict] = {}  # (tg ARN, instance id) -> target deregistered since the read
        self.classic_health: dict[tuple[str, str], tuple] = {}  # (Classic ELB ARN, instance id) -> answer
        self.classic_drains: dict[str, list[str]] = {}  # Classic ELB ARN -> instances being drained
        self.classic_zones: dict[str, set[str]] = {}  # Classic ELB ARN -> the zones it routes to
        self.classic_backends: dict[str, classiclive.ClassicBackend] = {}
        self.following: dict[tuple[str, str], str] = {}  # a server following another's checks -> the state it was set
        self.haproxy = HAProxy(run_dir, live_dir)
        self.monitor = Monitor()
        self.scaler = Scaler()  # scheduled actions (on the stack's clock) and target tracking
        self.cpu = cpu.Meter(self.scaler.period)  # the instances' CPUUtilization, once a tracking period
        self.access_logs: accesslogs.AccessLogs | None = None  # HAProxy's request log, written to S3 as access logs
        self.metadata: dict[str, MetadataServer] = {}  # instance id -> its metadata service
        self.identities: dict = {}  # instance id -> what its metadata service says (read from moto by this thread)
        self.endpoints: EndpointProxy | None = None  # the host side of each instance's AWS endpoint
        self.egress: egress.EgressProxy | None = (
            None  # build instances' way to the package registries (toolkit.local.egress)
        )
        self.ports = TargetPorts()  # which registered ports the load balancer reaches, which are black holes
        self.reach: dict[str, frozenset] = {}  # instance id -> the AWS services its network reaches
        self.admitted: dict[tuple[str, int], bool] = {}  # (instance id, port) -> the load balancer may reach it
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="rodeo-live", daemon=True)

    # --- what moto's patches ask -------------------------------------------------

    def manages(self, instance) -> bool:
        """True for an instance this stack boots: its AMI has a local image (Packer's build instances too)."""
        known = self._managed.get(instance.id)
        if known is None:
            known = self._managed[instance.id] = self.store.has(instance.image_id)
        return known

    def bake_of(self, instance) -> str:
        """The bake ``instance`` was launched for (Packer's build instance), or ""; its tag may come after the launch."""
        if not self.bakes.get(instance.id):
            self.bakes[instance.id] = buildinstances.bake_id_of(instance)
        return self.bakes[instance.id]

    def health_of(self, tg_arn: str, target_id: str) -> tuple | None:
        """``(state, reason, description)``, or None for a target this stack does not serve."""
        if (tg_arn, target_id) in self.left:
            return DRAINING
        return self.health.get((tg_arn, target_id))

    def draining_targets(self, tg_arn: str) -> list[dict]:
        found = list(self.draining.get(tg_arn, []))
        return found + [t for (arn, iid), t in list(self.left.items()) if arn == tg_arn and t not in found]

    def deregistered(self, tg_arn: str, instance_ids: set[str]) -> None:
        """moto has just deregistered these targets (on a request's thread, under moto's lock).

        AWS's load balancer stops sending a deregistered target new requests,
        and calls it ``draining``, as DeregisterTargets answers; the loop
        would act a poll later. So HAProxy drains its server now, and
        ``health_of`` says draining until the loop has read moto since.
        """
        for key, served in list(self.served.items()):
            if served.tg_arn == tg_arn and served.instance_id in instance_ids and served.drain_until is None:
                with contextlib.suppress(OSError):  # HAProxy not running: the loop drains it when it is
                    self.haproxy.drain_server(*key)
                self.left[(tg_arn, served.instance_id)] = {"Id": served.instance_id, "Port": served.port}

    def classic_health_of(self, elb_arn: str, instance_id: str) -> tuple | None:
        """DescribeInstanceHealth's ``(State, ReasonCode, Description)``, or None for an instance the stack does not serve."""
        return self.classic_health.get((elb_arn, instance_id))

    def classic_draining(self, elb_arn: str) -> list[str]:
        return list(self.classic_drains.get(elb_arn, []))

    def classic_serving(self, elb_arn: str, instance_ids: set[str]) -> bool:
        """True while HAProxy still serves (or drains) one of ``instance_ids`` for the Classic ELB."""
        return any(s.tg_arn == elb_arn and s.instance_id in instance_ids for s in list(self.served.values()))

    # --- the loop -----------------------------------------------------------------

    def start(self) -> None:
        self.instances_dir.mkdir(parents=True, exist_ok=True)
        raised = instances.raise_inotify_limit()
        if raised:
            log.info(
                "fs.inotify.max_user_instances raised from %d to %d: each booted instance's systemd needs about 8",
                *raised,
            )
        self.access_logs = accesslogs.AccessLogs(self.run_dir / REQUEST_LOG)  # bound before HAProxy logs to it
        if self.aws_port is not None:
            self.endpoints = EndpointProxy(
                self.aws_port,
                lambda iid: self.reach.get(iid, NONE),
                lambda iid: getattr(self.identities.get(iid), "region", None),
            )
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.step()
            except Exception:  # keep serving: log and try again next round
                log.error("live stack step failed:\n%s", traceback.format_exc())
            self.stopping.wait(POLL)
        self._teardown()

    def stop(self, timeout: float = 20.0) -> None:
        """End the loop; it powers every instance off and stops HAProxy."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout)

    def step(self) -> None:
        with LOCK:  # the targets deregistered before this read: moto's state here shows each of them
            world = read_moto()
            left = dict(self.left)
        self.classic_zones = classiclive.zones(world)
        self._network(world)
        self._instances(world)
        self._balancer(world, left)
        self._enforce()
        rows = self._stat_rows()
        self._health(world, servers_of(rows))
        with LOCK:  # the loop's own answers now say what each of them says
            for key, target in left.items():
                if self.left.get(key) is target:
                    del self.left[key]
        self.monitor.step(world, rows, self.frontends, time.time(), self._healthy(world), self._classic_hosts())
        now = time.time()
        if self.cpu.due(now):  # before the scaler: a CPU policy reads the period that just ended
            self._publish_cpu(world, now)
        self.scaler.step(clock.now(self.dir), now, self.monitor.samples)
        self.scaler.replace_unhealthy(now, self.health_of, self.classic_health_of)
        if self.access_logs is not None:
            names = accesslogs.names_of(world, self.frontends, self.served)
            self.access_logs.step(names, accesslogs.settings_of(world), time.time())
        reap_orphans(self._children())

    def _publish_cpu(self, world: World, now: float) -> None:
        """Each instance's CPU over the period that ended, and its group's average, as EC2 reports them (``cpu``)."""
        measured = {
            iid: world.instances[iid]
            for iid in self.booted
            if iid in world.instances and not self.bake_of(world.instances[iid])
        }
        usage = {iid: cpu.read_usage(self.booted[iid].cgroups) for iid in measured}
        percents = self.cpu.step(now, usage, {iid: vcpus_of(inst.instance_type) for iid, inst in measured.items()})
        groups = groups_of_instances()
        places: dict[tuple[str, str], dict[str, float]] = {}
        for iid, value in percents.items():
            inst = measured[iid]
            places.setdefault((inst.owner_id, inst.region_name), {})[iid] = value
        for (account, region), values in places.items():
            put_metrics(f"arn:aws:ec2:{region}:{account}:instance/-", cpu.NAMESPACE, cpu.datums(values, groups))

    def _children(self) -> set[int]:
        """PIDs of the processes this controller waits for itself."""
        procs = [b.proc for b in self.booted.values()] + [
            f for b in self.booted.values() for f in b.forwarders.values()
        ]
        procs += [p for p in [self.haproxy.proc, *self.haproxy.old] if p is not None]
        return {p.pid for p in procs}

    # --- instances ------------------------------------------------------------------

    def _instances(self, world: World) -> None:
        lost = zones.lost_zones(self.dir)
        for iid in [i for i in self.frozen if i not in world.instances or zone_of(world.instances[i]) not in lost]:
            self._thaw(iid)  # its zone is back (or it is gone)
        for iid, inst in world.instances.items():
            if iid in self.failed or not self.manages(inst):
                continue
            state = inst.state
            booted = self.booted.get(iid)
            if lost and state in ("pending", "running") and zone_of(inst) in lost:
                self._lose(iid, booted)  # running to EC2, answering nothing; never booted while its zone is lost
                continue
            if state in ("pending", "running") and booted is None:
                self._boot(inst)
            elif booted is not None and state in ("pending", "running"):
                self._follow_boot(inst, booted)
            elif booted is not None and state in ("stopping", "stopped"):
                self._shut(iid, keep_disk=True)
            elif booted is not None and state in ("shutting-down", "terminated"):
                if any(s.instance_id == iid for s in self.served.values()):
                    set_state(inst, "shutting-down", 32)
                else:
                    self._shut(iid, keep_disk=False)
                    set_state(inst, "terminated", 48)
        for iid in [i for i in self.booted if i not in world.instances]:
            self._shut(iid, keep_disk=False)

    def _lose(self, iid: str, booted: instances.Booted | None) -> None:
        """Freeze an instance of a lost zone (``toolkit.local.zones``): every process of it stops where it is."""
        if booted is not None and iid not in self.frozen and cgroups.freeze(booted.cgroups):
            log.warning("instance %s: its zone is lost: frozen", iid)
            self.frozen.add(iid)

    def _thaw(self, iid: str) -> None:
        booted = self.booted.get(iid)
        if booted is not None:
            cgroups.freeze(booted.cgroups, frozen=False)
            log.info("instance %s: thawed", iid)
        self.frozen.discard(iid)

    def _boot(self, inst) -> None:
        baking = self.bake_of(inst)
        set_state(inst, "running" if baking else "pending", 16 if baking else 0)
        try:
            files = (
                egress.configuration(egress.host_ca_bundle())
                if baking
                else instances.aws_configuration(inst.region_name)
                if self.aws_port is not None
                else {}
            )
            booted = self.booted[inst.id] = instances.boot(
                inst.id, self.store.layers(inst.image_id), self.instances_dir, self.run_dir, files=files
            )
            if baking:
                buildinstances.mark(booted.dir, baking)
            self._metadata(inst, booted)
        except Exception as exc:  # a boot that cannot even start: say why on the instance
            self._fail(inst, str(exc))

    def _metadata(self, inst, booted: instances.Booted) -> None:
        """The instance's metadata service (answering from moto's instance as it is now) and its forwarders."""
        old = self.metadata.pop(inst.id, None)
        if old is not None:
            old.close()
        # The service answers from the identity this thread read, never from moto itself: a metadata request that
        # waited for moto's lock behind a slow request could outlast cloud-init's short wait at boot.
        self._identify(inst)
        iid = inst.id
        self.metadata[iid] = MetadataServer(self.run_dir / f"{iid}-imds.sock", lambda: self.identities[iid])
        self.reach[inst.id] = reach_of(inst)  # before its first call, not at the next poll
        aws_sock = (
            self.endpoints.serve(inst.id, self.run_dir / f"{inst.id}-aws.sock") if self.endpoints is not None else None
        )
        booted.metadata(self.metadata[inst.id].sock, aws_sock)
        if self.bake_of(inst):  # a build instance downloads packages, as through its subnet's NAT gateway on AWS
            if self.egress is None:
                self.egress = egress.EgressProxy(self.run_dir / "egress.sock")
            booted.outbound("egress", egress.PORT, self.egress.sock)

    def _identify(self, inst) -> None:
        who = self.identities[inst.id] = buildinstances.with_key(identity_of(inst), inst)
        role_credentials(who, time.time())  # issued here: cloud-init's crawl of the service finds them ready

    def _follow_boot(self, inst, booted: instances.Booted) -> None:
        self._identify(inst)  # metadata options or an instance profile changed since: seen at the next step
        now = booted.poll()
        if self.bake_of(inst):
            self._follow_build_instance(inst, booted, now)
        elif now == "running" and inst.state != "running":
            set_state(inst, "running", 16)
        elif now == "failed":
            self._fail(inst, booted.failure())
        elif now == "pending" and inst.state != "pending":
            set_state(inst, "pending", 0)

    def _follow_build_instance(self, inst, booted: instances.Booted, now: str) -> None:
        """A build instance: its SSH socket once systemd is up (sshd with it); moto's state stays ``running``."""
        if now == "running":
            sock = buildinstances.ssh_socket(self.bakes[inst.id])
            sock.parent.mkdir(mode=0o700, exist_ok=True)
            booted.forward(22, sock)
        elif now == "failed":
            self._fail(inst, booted.failure())

    def _fail(self, inst, why: str) -> None:
        why = printable(why)
        log.error("instance %s did not boot: %s", inst.id, why)
        self.failed.add(inst.id)
        if inst.id in self.booted:
            self._shut(inst.id, keep_disk=False)
        set_state(
            inst,
            "terminated",
            48,
            reason=("Server.InternalError", f"Server.InternalError: the local image did not boot: {why}"),
        )

    def _shut(self, iid: str, keep_disk: bool) -> None:
        if iid in self.frozen:  # thawed first: it powers off as any other (a frozen process ignores SIGTERM)
            self._thaw(iid)
        booted = self.booted.pop(iid, None)
        for key, served in list(self.served.items()):
            if served.instance_id == iid:
                with contextlib.suppress(OSError):
                    self.haproxy.del_server(*key)
                self.served.pop(key)
        if booted is not None:
            baking = self.bakes.get(iid, "")
            instances.stop(booted, keep_disk or bool(baking))
            if baking:
                egress.forget(booted.dir / "upper")  # the image keeps no local-only proxy setting
                buildinstances.hand_over(booted.dir, self.dir, baking)
                instances.unmount(booted.dir, booted.netns, keep_disk=False)
        self._forget_network(iid)
        metadata = self.metadata.pop(iid, None)
        if metadata is not None:
            metadata.close()
        self.identities.pop(iid, None)

    # --- load balancer ------------------------------------------------------------

    def _balancer(self, world: World, left: dict[tuple[str, str], dict]) -> None:
        frontends = [self._frontend(arn, lb, listener, world) for arn, (lb, listener) in world.listeners.items()]
        backends = [
            Backend(backend_name(tg), check_of(tg), target_stickiness(tg)) for tg in world.target_groups.values()
        ]
        maps = {
            self.frontends[arn].name: apportion(forward_weights(listener, world))
            for arn, (_, listener) in world.listeners.items()
        }
        maps.update(self._rule_maps(world))
        for arn, lb, listener, backend in classiclive.listeners_of(world):  # one backend takes all of its requests
            frontends.append(self._classic_frontend(arn, lb, listener))
            maps[frontends[-1].name] = apportion([(backend, 1)])
        self.classic_backends = classiclive.backends_of(world)
        backends += [Backend(b.name, b.check) for b in self.classic_backends.values()]
        structure = (tuple(frontends), tuple(backends))
        if structure != self.structure or self.haproxy.proc is None or self.haproxy.proc.poll() is not None:
            write_patterns(self.run_dir, {fe.name: fe.rules for fe in frontends})
            servers = [Server(b, n, str(self._sock(s.instance_id, s.port))) for (b, n), s in self.served.items()]
            self.haproxy.apply(render_config(self.run_dir, frontends, backends, servers), maps)
            self.structure, self.maps = structure, dict(maps)
            for (b, n), s in self.served.items():
                if s.drain_until is not None:
                    self.haproxy.drain_server(b, n)
            self._publish(world)
        for name, entries in maps.items():
            if self.maps.get(name) != entries:
                self.haproxy.set_map(name, entries)
                self.maps[name] = entries
        self._servers(world, {b.name: b.check for b in backends}, left)

    def _frontend(self, arn: str, lb, listener, world: World) -> Frontend:
        if arn not in self.frontends:
            self.frontends[arn] = Frontend(f"lb-{lb.name}-{listener.port}-{short(arn)}", free_port())
        sticky = group_stickiness(listener)
        names = tuple(name for name, _ in forward_weights(listener, world)) if sticky else ()
        rules = tuple(rule for rule, _ in rules_of(listener, world))
        self.frontends[arn] = replace(self.frontends[arn], sticky_seconds=sticky, sticky_backends=names, rules=rules)
        return self.frontends[arn]

    def _classic_frontend(self, arn: str, lb, listener) -> Frontend:
        key = f"{arn}#{listener.load_balancer_port}"
        if key not in self.frontends:
            name = f"clb-{lb.name}-{listener.load_balancer_port}-{short(arn)}"
            self.frontends[key] = Frontend(name, free_port())
        return self.frontends[key]

    def _rule_maps(self, world: World) -> dict[str, list[str]]:
        """The weight map of every listener rule its frontend serves (``toolkit.local.listenerrules``), by the map's name.

        A rule made since the frontend was read waits for the next step (HAProxy knows no map of it yet).
        """
        return {
            map_name(self.frontends[arn].name, rule): apportion(weights)
            for arn, (_, listener) in world.listeners.items()
            for rule, weights in rules_of(listener, world)
            if rule in self.frontends[arn].rules
        }

    def _publish(self, world: World) -> None:
        """``load_balancers.json``: ``{region: {name: {port: url}}}`` (a name is unique only in its region)."""
        urls: dict[str, dict[str, dict[str, str]]] = {}
        for arn, (lb, listener) in world.listeners.items():
            where = urls.setdefault(region_of(arn), {}).setdefault(lb.name, {})
            where[str(listener.port)] = f"http://127.0.0.1:{self.frontends[arn].port}"
        for arn, lb, listener, _ in classiclive.listeners_of(world):
            port = self.frontends[f"{arn}#{listener.load_balancer_port}"].port
            where = urls.setdefault(region_of(arn), {}).setdefault(lb.name, {})
            where[str(listener.load_balancer_port)] = f"http://127.0.0.1:{port}"
        if urls != self.urls:
            tmp = self.dir / "load_balancers.json.tmp"
            tmp.write_text(json.dumps(urls, indent=2, sort_keys=True) + "\n")
            tmp.replace(self.dir / "load_balancers.json")
            self.urls = urls

    def _sock(self, iid: str, port: int) -> Path:
        return self.run_dir / f"{iid}-{port}.sock"

    def _servers(self, world: World, checks: dict[str, Check], left: dict[tuple[str, str], dict]) -> None:
        wanted: dict[tuple[str, str], tuple] = {}
        for tg in world.target_groups.values():
            if tg.arn not in world.in_use:
                continue
            for target in list(tg.targets.values()):
                booted = self.booted.get(target["Id"])
                inst = world.instances.get(target["Id"])
                if booted is None or not booted.ready or inst is None or inst.state != "running":
                    continue
                port = int(target.get("Port") or tg.port)
                wanted[(backend_name(tg), f"{target['Id']}-{port}")] = (tg.arn, booted, port)
        wanted.update(classiclive.servers_of(world, self.booted, self.classic_zones))
        for key, (owner, booted, port) in wanted.items():
            served = self.served.get(key)
            follows = classiclive.followed(self.classic_backends, key) is not None  # in maintenance until it follows
            if served is None:
                sock = self._open_port(booted, port)
                self.haproxy.add_server(Server(key[0], key[1], str(sock)), checks[key[0]], enable=not follows)
                self.served[key] = Served(owner, booted.instance_id, port)
                self.following.pop(key, None)
            elif served.drain_until is not None:  # registered again while draining
                self.haproxy.command(f"set server {key[0]}/{key[1]} state {'maint' if follows else 'ready'}")
                self.following.pop(key, None)
                served.drain_until = None
            elif (owner, served.instance_id) in left:  # deregistered (drained at once), registered again since
                self.haproxy.command(f"set server {key[0]}/{key[1]} state ready")
        now = time.monotonic()
        idle: set | None = None  # Classic ELB servers draining with no request in flight (read when there are some)
        for key, served in list(self.served.items()):
            if key in wanted:
                continue
            if served.drain_until is None:
                served.drain_until = now + self._drain_delay(world, served.tg_arn)
                self.haproxy.drain_server(*key)
            if served.tg_arn in world.classics and now < served.drain_until and idle is None:
                idle = {k for k, row in servers_of(self._stat_rows()).items() if row.get("scur") == "0"}
            # A Classic ELB's draining instance with no in-flight request is deregistered at once (AWS's
            # config-conn-drain.html); a target group's drains for its whole delay.
            if now >= served.drain_until or (served.tg_arn in world.classics and key in (idle or set())):
                self.haproxy.del_server(*key)
                del self.served[key]
                self.following.pop(key, None)
                forget_target(world.target_groups.get(served.tg_arn), served.instance_id, world)

    @staticmethod
    def _drain_delay(world: World, owner: str) -> float:
        """Seconds a server leaving ``owner`` drains: its target group's deregistration delay (none once no listener
        uses the group), its Classic ELB's connection draining timeout (none when draining is off)."""
        if owner in world.classics:
            return classic.drain_seconds(world.classics[owner].attributes)
        tg = world.target_groups.get(owner)
        return drain_seconds(tg) if tg is not None and owner in world.in_use else 0

    # --- network (toolkit.vpc) -------------------------------------------

    def _network(self, world: World) -> None:
        """From EC2's state now: the AWS services each booted instance reaches, and which registered ports the load balancer reaches."""
        self.reach, self.admitted = network_view(world, set(self.booted))

    def _open_port(self, booted: instances.Booted, port: int) -> Path:
        """The socket HAProxy reaches ``port`` of an instance through (see ``TargetPorts``)."""
        return self.ports.open(
            booted, port, self._sock(booted.instance_id, port), self.admitted.get((booted.instance_id, port), False)
        )

    def _enforce(self) -> None:
        """Open or close the ports whose security groups changed (a deregistered, draining port keeps its way)."""
        for key in self.ports.changed(self.admitted):
            if key[0] in self.booted:
                self._open_port(self.booted[key[0]], key[1])

    def _forget_network(self, iid: str) -> None:
        if self.endpoints is not None:
            self.endpoints.forget(iid)
        self.ports.forget(iid, lambda port: self._sock(iid, port))
        self.reach.pop(iid, None)

    # --- health -------------------------------------------------------------------

    def _stat_rows(self) -> list[dict]:
        """HAProxy's counters and check results now (none while it does not run)."""
        if self.haproxy.proc is None or self.haproxy.proc.poll() is not None:
            return []
        return self.haproxy.rows()

    def _health(self, world: World, stats: dict) -> None:
        now = time.monotonic()
        health: dict[tuple[str, str], tuple] = {}
        draining: dict[str, list[dict]] = {}
        by_target = {(s.tg_arn, s.instance_id): (key, s) for key, s in self.served.items()}
        for tg in world.target_groups.values():
            check = check_of(tg)
            ids = {t["Id"]: t for t in list(tg.targets.values())}
            for key, s in self.served.items():
                if s.tg_arn == tg.arn and s.drain_until is not None:
                    ids.setdefault(s.instance_id, {"Id": s.instance_id, "Port": s.port})
            for iid, target in ids.items():
                inst = world.instances.get(iid)
                if inst is None or not self.manages(inst):
                    continue
                key, served = by_target.get((tg.arn, iid), (None, None))
                row = stats.get(key) if key else None
                if served is not None and passed_its_first_check(
                    row, check, settled=served.seen_up or served.seen_unhealthy
                ):
                    self.haproxy.mark_up(*key)  # AWS: a new target needs one passed check (toolkit.local.health)
                    row = dict(row, status="UP")
                if served is not None and row is not None and row.get("status", "").startswith("UP"):
                    served.seen_up = True
                is_draining = served is not None and served.drain_until is not None
                if is_draining:
                    draining.setdefault(tg.arn, []).append({"Id": iid, "Port": served.port})
                health[(tg.arn, iid)] = target_health(
                    row,
                    check,
                    instance_state=inst.state,
                    in_use=tg.arn in world.in_use,
                    draining=is_draining,
                    seen_up=bool(served and served.seen_up),
                    age=now - served.added if served else 0.0,
                )
                if served is not None and health[(tg.arn, iid)][0] == "unhealthy":
                    served.seen_unhealthy = True
        self.health, self.draining = health, draining
        self.classic_health, self.classic_drains = classiclive.healths_of(
            world, self.classic_zones, self.served, stats, self.manages, now
        )
        self._follow(stats)

    def _follow(self, stats: dict) -> None:
        """A Classic ELB's server on a port its health check does not reach takes the state of the same instance's
        checked server (``toolkit.local.classiclive``): ready while that one is up, in maintenance otherwise."""
        for key, served in list(self.served.items()):
            checked = classiclive.followed(self.classic_backends, key)
            if checked is None or served.drain_until is not None:
                continue
            up = (stats.get(checked) or {}).get("status", "").startswith("UP")
            state = "ready" if up and checked in self.served else "maint"
            if self.following.get(key) != state:
                self.haproxy.command(f"set server {key[0]}/{key[1]} state {state}")
                self.following[key] = state

    def _healthy(self, world: World) -> dict[str, int]:
        """Backend name -> its target group's healthy targets now."""
        found: dict[str, int] = {}
        for (arn, _), answer in self.health.items():
            tg = world.target_groups.get(arn)
            if tg is not None and answer[0] == "healthy":
                found[backend_name(tg)] = found.get(backend_name(tg), 0) + 1
        return found

    def _classic_hosts(self) -> dict[str, tuple[int, int]]:
        """Classic ELB ARN -> its (InService, OutOfService) registered instances (HealthyHostCount, UnHealthyHostCount)."""
        found: dict[str, tuple[int, int]] = {}
        for (arn, _), answer in self.classic_health.items():
            if answer in (DEREGISTERING, NOT_REGISTERED):
                continue
            healthy, unhealthy = found.get(arn, (0, 0))
            found[arn] = (healthy + 1, unhealthy) if answer[0] == "InService" else (healthy, unhealthy + 1)
        return found

    # --- teardown -----------------------------------------------------------------

    def _teardown(self) -> None:
        for booted in self.booted.values():  # SIGTERM to all first: they power off in parallel
            with contextlib.suppress(ProcessLookupError):
                booted.proc.terminate()
        for iid in list(self.booted):
            self._shut(iid, keep_disk=False)
        self.haproxy.stop()
        if self.access_logs is not None:
            self.access_logs.close()
        if self.endpoints is not None:
            self.endpoints.close()
        if self.egress is not None:
            self.egress.close()
        self.ports.close()


def region_of(arn: str) -> str:
    """The region an ARN names (``arn:aws:service:REGION:account:...``)."""
    return arn.split(":")[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reap_orphans(known: set[int]) -> None:
    """Wait for zombie children that are not ours to wait for (we are PID 1 of the stack's namespace)."""
    if os.getpid() != 1:
        return
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in known:
            continue
        with contextlib.suppress(OSError, IndexError):
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if stat[0] == "Z" and int(stat[1]) == 1:
                os.waitpid(int(entry.name), os.WNOHANG)
