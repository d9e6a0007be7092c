"""The live stack's access logs: HAProxy's log of each request, written to S3 as an ALB writes its access logs.

Each frontend logs every request it answers to a unix datagram socket
(``balancer.REQUEST_LOG``, format ``balancer.REQUEST_LOG_FORMAT``: times,
frontend, backend, server, timings, status, bytes, client, request line);
``Collector`` reads it on a thread of its own. Each controller tick,
``AccessLogs.step`` turns what arrived into access log entries (``entry``,
pure: AWS's fields in AWS's order, see ``toolkit.canary.accesslogs``) for
the load balancer that answered, and every ``DELIVERY`` seconds puts one
gzipped file per load balancer whose attributes turn access logs on
(``access_logs.s3.enabled``) into its bucket and prefix, named as Elastic
Load Balancing names them. The canary analysis reads them back through S3,
as on AWS. The names are those of every listener, target group and target
seen while the stack runs (``merged``): a request to a listener deleted
before the next tick (the smoke check's test listener) is still logged, as
AWS logs it.

What the entries take from HAProxy: the time the request was received
(accept date + handshake + idle, ``%Th``/``%Ti``) as ``request_creation_time``,
plus its active time (``%Ta``) as ``time``; ``%Tr`` (until the server's
response headers) as ``target_processing_time``, -1 when no server answered;
``%TR + %Tw + %Tc`` as ``request_processing_time``. HAProxy counts whole
milliseconds, as the access logs show them.

Differences from AWS (README, the local stack's differences): a file every
``DELIVERY`` seconds instead of every 5 minutes (so a short step has its
data; ``invoke doctor`` warns about the steps AWS would leave without), every
request logged (AWS: "best effort"), no user agent or trace id of the
client's (``-`` and a fresh id), and the bucket policy is not checked.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import secrets
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from toolkit.canary.accesslogs import object_key, resource_id
from toolkit.local.motostate import LOCK, World, backend_name

DELIVERY = 1.0  # seconds between two files of a load balancer (AWS: 300)
NODE_IP = "127.0.0.1"  # the "load balancer node" in file names: HAProxy's address
MAX_BUFFERED = 200_000  # lines kept while no load balancer takes them (a stack without access logs)
log = logging.getLogger("rodeo.live")


@dataclass(frozen=True)
class Hit:
    """One request as HAProxy logged it (times in epoch seconds, durations in milliseconds)."""

    received: float
    ended: float
    frontend: str
    backend: str
    server: str
    request_ms: int  # %TR + %Tw + %Tc: reading the request, queueing, connecting
    target_ms: int  # %Tr: from sending the request to the server's response headers; -1 when none came
    status: int
    received_bytes: int
    sent_bytes: int
    client: str
    request: str  # "GET /path HTTP/1.1"


@dataclass(frozen=True)
class Names:
    """What HAProxy's names stand for in ELBv2."""

    balancers: dict  # frontend -> (load balancer ARN, listener port, DNS name)
    groups: dict  # backend -> target group ARN
    targets: dict  # (backend, server) -> "ip:port" of the target


def parse(line: str) -> Hit | None:
    """A line of ``REQUEST_LOG_FORMAT``; None for anything else."""
    parts = line.rstrip("\n").split(" ", 15)
    if len(parts) != 16:
        return None
    try:
        accept = float(parts[0])
        th, ti, tr_, tw, tc, tr, ta = (int(p) for p in parts[4:11])
        received = accept + (max(th, 0) + max(ti, 0)) / 1000.0
        return Hit(
            received=received,
            ended=received + max(ta, 0) / 1000.0,
            frontend=parts[1],
            backend=parts[2],
            server=parts[3],
            request_ms=sum(max(t, 0) for t in (tr_, tw, tc)),
            target_ms=tr,
            status=int(parts[11]),
            received_bytes=int(parts[12]),
            sent_bytes=int(parts[13]),
            client=parts[14],
            request=parts[15].strip('"'),
        )
    except ValueError:
        return None


def merged(known: Names, now: Names) -> Names:
    """The names ``known`` so far with those of ``now`` (``now``'s win: a frontend name is never reused)."""
    return Names({**known.balancers, **now.balancers}, {**known.groups, **now.groups}, {**known.targets, **now.targets})


def entry(hit: Hit, names: Names, trace: str) -> tuple[str, str] | None:
    """``(load balancer ARN, access log entry)`` for one request; None when its frontend is no listener of ours."""
    found = names.balancers.get(hit.frontend)
    if found is None:
        return None
    lb_arn, port, dns = found
    answered = hit.target_ms >= 0
    target = names.targets.get((hit.backend, hit.server), "-") if answered else "-"
    group = names.groups.get(hit.backend, "-")
    method, _, rest = hit.request.partition(" ")
    path, _, version = rest.rpartition(" ") if " " in rest else (rest, "", "HTTP/1.1")
    status = str(hit.status) if hit.status > 0 else "-"
    fields = [
        "http",
        _iso(hit.ended),
        resource_id(lb_arn),
        hit.client,
        target,
        f"{hit.request_ms / 1000:.3f}" if answered else "-1",
        f"{hit.target_ms / 1000:.3f}" if answered else "-1",
        "0.000" if answered else "-1",
        status,
        status if answered else "-",
        str(hit.received_bytes),
        str(hit.sent_bytes),
        f'"{method} http://{dns}:{port}{path} {version}"',
        '"-"',
        "-",
        "-",
        group,
        f'"Root=1-{int(hit.received):08x}-{trace}"',
        '"-"',
        '"-"',
        "0",
        _iso(hit.received),
        '"forward"' if group != "-" else '"fixed-response"',
        '"-"',
        '"-"',
        f'"{target}"',
        f'"{status}"' if answered else '"-"',
        '"-"',
        '"-"',
        "-",
    ]
    return lb_arn, " ".join(fields)


class Collector:
    """The socket HAProxy logs requests to, read on a thread; ``take`` hands over the lines received so far."""

    def __init__(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # bursts while a tick runs long
        self.sock.bind(str(path))
        os.chmod(path, 0o600)
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, name="rodeo-access-logs", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:  # closed
                return
            with self.lock:
                self.lines.append(data.decode(errors="replace"))
                del self.lines[:-MAX_BUFFERED]

    def take(self) -> list[str]:
        with self.lock:
            taken, self.lines = self.lines, []
        return taken

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class AccessLogs:
    """Entries waiting for their load balancer's next file, and when each last got one."""

    def __init__(self, path: Path) -> None:
        self.collector = Collector(path)
        self.pending: dict[str, list[str]] = {}  # load balancer ARN -> entries
        self.last = 0.0
        self.refused: set[str] = set()  # buckets already said to be missing
        self.known = Names({}, {}, {})  # every name seen: lines may come after their listener was deleted

    def step(self, names: Names, settings: dict[str, tuple[bool, str, str]], now: float) -> None:
        """Turn the lines received into entries; every ``DELIVERY`` seconds write them (``settings``: ARN -> on, bucket, prefix)."""
        self.known = merged(self.known, names)
        for line in self.collector.take():
            hit = parse(line)
            made = entry(hit, self.known, secrets.token_hex(12)) if hit else None
            if made is not None and settings.get(made[0], (False, "", ""))[0]:
                self.pending.setdefault(made[0], []).append(made[1])
        if now - self.last < DELIVERY:
            return
        self.last = now
        for lb_arn, entries in list(self.pending.items()):
            on, bucket, prefix = settings.get(lb_arn, (False, "", ""))
            if on and entries:
                self._put(lb_arn, bucket, prefix, entries, now)
        self.pending.clear()

    def _put(self, lb_arn: str, bucket: str, prefix: str, entries: list[str], now: float) -> None:
        from moto.s3.exceptions import MissingBucket
        from moto.s3.models import s3_backends

        account = lb_arn.split(":")[4]
        key = object_key(prefix, lb_arn, now, now + 60, NODE_IP, secrets.token_hex(4))  # end: the minute it falls in
        body = gzip.compress(("\n".join(entries) + "\n").encode())
        try:
            with LOCK:
                s3_backends[account]["aws"].put_object(bucket, key, body)
        except MissingBucket:
            if bucket not in self.refused:
                self.refused.add(bucket)
                log.error("access logs of %s: bucket %s does not exist; its entries are dropped", lb_arn, bucket)

    def close(self) -> None:
        self.collector.close()


def names_of(world: World, frontends: dict, served: dict) -> Names:
    """The names of moto's state now: each listener's frontend, each target group's backend, each server's target.

    ``frontends``: listener ARN -> the controller's ``Frontend``; ``served``: (backend, server) -> its ``Served``.
    """
    balancers = {
        frontends[arn].name: (lb.arn, int(listener.port), lb.dns_name)
        for arn, (lb, listener) in world.listeners.items()
        if arn in frontends
    }
    groups = {backend_name(tg): arn for arn, tg in world.target_groups.items()}
    targets = {}
    for key, s in served.items():
        inst = world.instances.get(s.instance_id)
        targets[key] = f"{getattr(inst, 'private_ip', None) or NODE_IP}:{s.port}"
    return Names(balancers, groups, targets)


def settings_of(world: World) -> dict[str, tuple[bool, str, str]]:
    """Per load balancer ARN: its access logs on, their bucket and prefix (its attributes, as ModifyLoadBalancerAttributes set them)."""
    found = {}
    for lb, _ in world.listeners.values():
        attrs = getattr(lb, "attrs", {}) or {}
        on = str(attrs.get("access_logs.s3.enabled", "false")).lower() == "true"
        found[lb.arn] = (
            on and bool(attrs.get("access_logs.s3.bucket")),
            attrs.get("access_logs.s3.bucket", ""),
            attrs.get("access_logs.s3.prefix", ""),
        )
    return found


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
