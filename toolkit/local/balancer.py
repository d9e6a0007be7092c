"""The live local stack's load balancer: Debian's HAProxy, driven at runtime.

Each ELBv2 listener is a frontend on 127.0.0.1 (a free port), each target
group a backend with the group's health check; registered targets are servers
reached through a unix socket that a forwarder inside the instance's network
namespace serves (HAProxy 2.6 refuses ``namespace`` for servers added at
runtime). The listener's weighted forward is a 100-line map read by
``use_backend %[rand(100),map_int(FILE)]`` and swapped atomically through the
runtime API (``prepare map`` / ``add map @VER`` / ``commit map``), so a weight
change takes effect at once with no reload. Only a new or changed listener or
target group reloads HAProxy (``-sf``: the old process finishes its
connections), with every server and its health kept through the state file.

Stickiness, as an ALB has it (``render_stickiness``): a listener whose
forward action has target group stickiness (``TargetGroupStickinessConfig``)
sends a client that holds a valid ``AWSALBTG`` cookie to that cookie's target
group, whatever the weights (even 0), and gives a client without one the
cookie of the group the weights chose, for ``DurationSeconds`` (not renewed:
the pin runs from the first routing). A target group with ``lb_cookie``
stickiness sends a client holding its ``AWSALB`` cookie to the same target
(a stick table keyed by the cookie, renewed on each request) while that
target is up. The duration is the cookie's ``Max-Age``: the stack trusts the
client to drop it (an ALB encrypts the expiry into the cookie).
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/sticky-sessions.html
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-listeners.html#forward-actions

Each frontend logs every request to a socket (``render_request_log``): the
access logs of ``toolkit.local.accesslogs``.

The ``render_*``, ``apportion`` and ``matcher_regex`` functions are pure.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from toolkit.local.instances import end, spawn
from toolkit.local.listenerrules import Rule, render_rules

NO_TARGETS = "no-targets"
START_TIMEOUT = 10.0
# Every request a frontend answers is logged to this datagram socket in the run folder (``toolkit.local.accesslogs``
# reads it): accept time, frontend, backend, server, Th Ti TR Tw Tc Tr Ta (ms), status, bytes in and out, client, request.
REQUEST_LOG = "requests.sock"
REQUEST_LOG_FORMAT = "%Ts.%ms %f %b %s %Th %Ti %TR %Tw %Tc %Tr %Ta %ST %U %B %ci:%cp %{+Q}r"


@dataclass(frozen=True)
class Check:
    """A target group's health check, as ELBv2 describes it."""

    path: str = "/"
    interval: int = 30
    timeout: int = 5
    rise: int = 5
    fall: int = 2
    matcher: str = "200"
    enabled: bool = True
    # A Classic ELB's ``TCP:port`` target: any bytes back pass (an HTTP server's answer to a HEAD, an SSH banner).
    # HAProxy reaches a target through a unix socket whose forwarder accepts before it connects, so a bare connect
    # would pass for a closed port; the forwarder closes at once there, and no bytes come. (A protocol that answers
    # nothing to a HEAD fails here where AWS would pass it: stricter, never laxer.)
    tcp: bool = False


@dataclass(frozen=True)
class Backend:
    """A target group: its HAProxy name and health check."""

    name: str
    check: Check
    sticky_seconds: int = 0  # lb_cookie stickiness to a target (AWSALB); 0: off


@dataclass(frozen=True)
class Frontend:
    """A listener: its HAProxy name and local port (its weights live in its map)."""

    name: str
    port: int
    sticky_seconds: int = 0  # target group stickiness of its forward action (AWSALBTG); 0: off
    sticky_backends: tuple[str, ...] = ()  # the forward action's target groups, which the cookie may name
    rules: tuple[Rule, ...] = ()  # its listener rules (toolkit.local.listenerrules), tried before the default action


@dataclass(frozen=True)
class Server:
    """A registered target reached through a unix socket."""

    backend: str
    name: str
    sock: str


def apportion(weights: list[tuple[str, int]], slots: int = 100) -> list[str]:
    """``slots`` backend names in proportion to ``weights`` (largest remainder); all 0: NO_TARGETS."""
    total = sum(max(w, 0) for _, w in weights)
    if total <= 0:
        return [NO_TARGETS] * slots
    shares = [(name, max(w, 0) * slots / total) for name, w in weights]
    counts = {name: int(share) for name, share in shares}
    left = slots - sum(counts.values())
    for name, share in sorted(shares, key=lambda s: s[1] - int(s[1]), reverse=True)[:left]:
        counts[name] += 1
    return [name for name, _ in weights for _ in range(counts[name])]


def matcher_regex(codes: str) -> str:
    """ELBv2's ``HttpCode`` matcher ("200", "200,202", "200-299") as a status regex."""
    found: list[int] = []
    for part in codes.replace(" ", "").split(","):
        if "-" in part:
            low, high = (int(x) for x in part.split("-", 1))
            found += range(low, high + 1)
        elif part:
            found.append(int(part))
    return "^(" + "|".join(str(c) for c in sorted(set(found))) + ")$"


def server_options(check: Check) -> str:
    """The health options of a server line (``add server`` takes no ``default-server``)."""
    if not check.enabled:
        return ""
    return f"check inter {check.interval}s rise {check.rise} fall {check.fall}"


def render_config(run_dir: Path, frontends: list[Frontend], backends: list[Backend], servers: list[Server]) -> str:
    """The whole haproxy.cfg for these listeners, target groups and (current) servers."""
    lines = [
        "global",
        # expose-fd: a reload (-x) takes the listening sockets over, so no connection waiting to be accepted is reset.
        f"  stats socket {run_dir}/haproxy.sock mode 600 level admin expose-fd listeners",
        f"  server-state-file {run_dir}/servers.state",
        "  log stderr format short local0 notice",
        "defaults",
        "  mode http",
        "  log global",
        "  load-server-state-from-file global",
        "  timeout connect 5s",
        "  timeout client 60s",
        "  timeout server 60s",
        # On a reload the old process answers a kept-alive connection's next request, then closes it,
        # instead of closing it idle under the client (as an ALB never does).
        "  option idle-close-on-response",
        f"backend {NO_TARGETS}",
        '  http-request return status 503 content-type text/plain string "no target group holds weight"',
    ]
    for fe in frontends:
        lines += [f"frontend {fe.name}", f"  bind 127.0.0.1:{fe.port}", *render_request_log(run_dir)]
        lines += [*render_rules(run_dir, fe.name, fe.rules, NO_TARGETS), *render_group_stickiness(fe)]
        lines += [
            f"  use_backend %[rand(100),map_int({run_dir}/{fe.name}.map,{NO_TARGETS})]",
            f"  default_backend {NO_TARGETS}",
        ]
    for be in backends:
        c = be.check
        lines += [f"backend {be.name}", "  balance roundrobin", *render_target_stickiness(be)]
        if c.enabled and c.tcp:
            lines += [
                "  option tcp-check",
                "  tcp-check connect",
                '  tcp-check send "HEAD / HTTP/1.0\\r\\n\\r\\n"',
                "  tcp-check expect rstring .",
            ]
        elif c.enabled:
            lines += [f"  option httpchk GET {c.path}", f"  http-check expect rstatus {matcher_regex(c.matcher)}"]
        if c.enabled:
            lines.append(f"  timeout check {c.timeout}s")
        lines += [
            f"  server {s.name} unix@{s.sock} {server_options(c)}".rstrip() for s in servers if s.backend == be.name
        ]
    return "\n".join(lines) + "\n"


def render_request_log(run_dir: Path) -> list[str]:
    """A frontend's lines that log each request it answers (``REQUEST_LOG_FORMAT``), for the access logs."""
    return [f"  log {run_dir}/{REQUEST_LOG} format raw local1 info", f'  log-format "{REQUEST_LOG_FORMAT}"']


def render_group_stickiness(fe: Frontend) -> list[str]:
    """A frontend's lines for target group stickiness: a valid AWSALBTG cookie overrides the weights."""
    if fe.sticky_seconds <= 0 or not fe.sticky_backends:
        return []
    names = " ".join(fe.sticky_backends)
    return [
        f"  acl tg_stuck req.cook(AWSALBTG) -m str {names}",
        "  http-request set-var(txn.tg_stuck) req.cook(AWSALBTG) if tg_stuck",
        "  use_backend %[req.cook(AWSALBTG)] if tg_stuck",
        f'  http-response add-header Set-Cookie "AWSALBTG=%[be_name]; Max-Age={fe.sticky_seconds}; Path=/" if {{ be_name -m str {names} }} !{{ var(txn.tg_stuck) -m found }}',
    ]


def render_target_stickiness(be: Backend) -> list[str]:
    """A backend's lines for lb_cookie stickiness: an AWSALB cookie (a random id) keeps its client on one target."""
    if be.sticky_seconds <= 0:
        return []
    return [
        f"  stick-table type string len 40 size 100k expire {be.sticky_seconds}s",
        "  http-request set-var(txn.awsalb) req.cook(AWSALB)",
        "  http-request set-var(txn.awsalb) uuid() unless { req.cook(AWSALB) -m found }",
        "  stick match var(txn.awsalb)",
        "  stick store-request var(txn.awsalb)",
        f'  http-response add-header Set-Cookie "AWSALB=%[var(txn.awsalb)]; Max-Age={be.sticky_seconds}; Path=/"',
    ]


class HAProxy:
    """One HAProxy process and its runtime API."""

    def __init__(self, run_dir: Path, log_dir: Path) -> None:
        self.run_dir, self.log_dir = run_dir, log_dir
        self.config = run_dir / "haproxy.cfg"
        self.proc: subprocess.Popen | None = None
        self.old: list[subprocess.Popen] = []

    @property
    def sock(self) -> Path:
        return self.run_dir / "haproxy.sock"

    def apply(self, text: str, maps: dict[str, list[str]]) -> None:
        """Start HAProxy with config ``text`` (writing ``maps`` first), or reload it if it runs."""
        for name, entries in maps.items():
            write_map(self.run_dir / f"{name}.map", entries)
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                (self.run_dir / "servers.state").write_text(self.command("show servers state"))
        self.config.write_text(text)
        cmd = ["haproxy", "-db", "-f", str(self.config)]
        if self.proc is not None and self.proc.poll() is None:
            cmd += ["-x", str(self.sock), "-sf", str(self.proc.pid)]
            self.old.append(self.proc)
        self.proc = spawn(cmd, self.log_dir / "haproxy.log")
        self._wait_ready()
        self.old = [p for p in self.old if p.poll() is None]

    def _wait_ready(self) -> None:
        """Until the new process answers the runtime API and no old one still holds a listening socket.

        On a reload the old and new processes share the listening sockets (``-x``) until the old one acts on the
        new one's ``-sf`` signal: until then either may accept a client or a runtime command, and a server added,
        drained or deleted through the old process would be missing from the new one (or still served there).
        """
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy exited with {self.proc.returncode} (see {self.log_dir / 'haproxy.log'})")
            with contextlib.suppress(OSError):
                if f"Pid: {self.proc.pid}\n" in self.command("show info") and not self._shared_with_old():
                    return
            time.sleep(0.02)
        raise RuntimeError("haproxy did not answer on its stats socket")

    def _shared_with_old(self) -> bool:
        """True while an old process still holds a socket the new one holds (the listeners it handed over)."""
        mine = sockets_of(self.proc.pid)
        return any(mine & sockets_of(p.pid) for p in self.old if p.poll() is None)

    def command(self, line: str) -> str:
        """Send one runtime API line (commands may be joined by ';'), return the answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.sock))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def set_map(self, name: str, entries: list[str]) -> None:
        """Swap frontend ``name``'s weight map atomically (and keep the file in step for reloads)."""
        path = self.run_dir / f"{name}.map"
        write_map(path, entries)
        answer = self.command(f"prepare map {path}")
        version = answer.strip().rsplit(":", 1)[-1].strip()
        if not version.isdigit():
            raise RuntimeError(f"prepare map {path}: {answer.strip()}")
        adds = ";".join(f"add map @{version} {path} {i} {b}" for i, b in enumerate(entries))
        self.command(adds)
        answer = self.command(f"commit map @{version} {path}")
        if answer.strip():
            raise RuntimeError(f"commit map {path}: {answer.strip()}")

    def add_server(self, server: Server, check: Check, enable: bool = True) -> None:
        """Add a server in maintenance, then enable it marked down: it takes traffic once its checks pass.

        ``enable=False`` leaves it in maintenance (a server whose state another server's checks decide).
        """
        target = f"{server.backend}/{server.name}"
        answer = self.command(f"add server {target} unix@{server.sock} {server_options(check)}")
        if "registered" not in answer and "Already exists" not in answer:
            raise RuntimeError(f"add server {target}: {answer.strip()}")
        if not enable:
            return
        parts = [f"enable health {target}"] if check.enabled else []
        parts.append(f"enable server {target}")
        if check.enabled:
            parts.append(f"set server {target} health down")
        self.command(";".join(parts))

    def mark_up(self, backend: str, name: str) -> None:
        """Force a server up now (its checks go on: ``fall`` failed ones take it down again)."""
        answer = self.command(f"set server {backend}/{name} health up")
        if answer.strip():
            raise RuntimeError(f"set server {backend}/{name} health up: {answer.strip()}")

    def drain_server(self, backend: str, name: str) -> None:
        """No new requests; in-flight ones finish."""
        self.command(f"set server {backend}/{name} state drain")

    def del_server(self, backend: str, name: str) -> None:
        """Remove a server for good (maintenance first, its sessions cut)."""
        target = f"{backend}/{name}"
        self.command(f"set server {target} state maint;shutdown sessions server {target};del server {target}")

    def rows(self) -> list[dict]:
        """``show stat``: one row per frontend, backend and server."""
        return list(csv.DictReader(io.StringIO(self.command("show stat").lstrip("# "))))

    def stop(self) -> None:
        for proc in [*self.old, self.proc]:
            end(proc, timeout=2, sig=15)
        self.proc, self.old = None, []


def sockets_of(pid: int) -> set[str]:
    """The sockets process ``pid`` holds open (``socket:[inode]``; a socket handed to another process keeps its inode)."""
    found = set()
    with contextlib.suppress(OSError):
        for fd in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(fd.path)
                if link.startswith("socket:"):
                    found.add(link)
    return found


def servers_of(rows: list[dict]) -> dict[tuple[str, str], dict]:
    """``show stat`` rows as (backend, server) -> row (servers only)."""
    return {(r["pxname"], r["svname"]): r for r in rows if r.get("svname") not in ("FRONTEND", "BACKEND", None)}


def write_map(path: Path, entries: list[str]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{i} {b}\n" for i, b in enumerate(entries)))
    tmp.replace(path)
