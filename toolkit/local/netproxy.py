"""What the live stack's network does with a connection it must not carry.

On AWS a packet that no security group admits or no route carries is
dropped: the sender waits until it gives up. Here both ends of such a path
are unix sockets on this side of the instances' namespaces, so:

- ``Blackhole`` listens on a socket (a target port the load balancer may not
  reach) and accepts connections without ever answering: HAProxy's health
  check times out (``L7TOUT``, ``Target.Timeout``) and no request is served.
  ``TargetPorts`` switches a registered port between its forwarder into the
  instance and the black hole as its security groups change.
- ``EndpointProxy`` is the host side of each instance's AWS endpoint
  (``127.0.0.1:4566`` inside the instance): it reads a request's head, asks
  ``reach(instance id)`` which services the instance may reach
  (``toolkit.vpc``), and either carries the connection to moto or
  holds it unanswered until the client gives up (as a connection to an AWS
  endpoint with no route hangs). The service and region come from the
  request's SigV4 credential scope: a request for another region than the
  instance's own passes only through a NAT or internet gateway, never a VPC
  endpoint (``toolkit.vpc.reaches``). A connection is judged by its first
  request (every AWS SDK client talks to one service in one region).
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

from toolkit.local.instances import end
from toolkit.vpc import reaches

HOLD_SECONDS = 600.0  # an unanswered connection is closed after this, if its client never gives up
HEAD_LIMIT = 65536
log = logging.getLogger("rodeo.live.network")


def _listen(path: Path) -> socket.socket:
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    path.chmod(0o600)
    sock.listen(64)
    return sock


def _hold(conn: socket.socket) -> None:
    """Read and drop whatever comes until the peer closes (or HOLD_SECONDS pass); never answer."""
    conn.settimeout(HOLD_SECONDS)
    with contextlib.suppress(OSError), conn:
        while conn.recv(65536):
            pass


class _Listener:
    """A unix socket served by a thread that hands each connection to ``handle`` (in a thread of its own)."""

    def __init__(self, path: Path, handle: Callable[[socket.socket], None]) -> None:
        self.path, self.handle = path, handle
        self.sock = _listen(path)
        self.thread = threading.Thread(target=self._accept, name=f"rodeo-net-{path.name}", daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with contextlib.suppress(OSError):
            if self.path.exists() and self.path.is_socket():
                self.path.unlink()


class Blackhole:
    """Sockets that accept and never answer, by path."""

    def __init__(self) -> None:
        self.listeners: dict[Path, _Listener] = {}

    def listen(self, path: Path) -> None:
        """Serve ``path`` as a black hole (replacing whatever socket file was there)."""
        if path not in self.listeners:
            self.listeners[path] = _Listener(path, _hold)

    def release(self, path: Path) -> None:
        """Stop serving ``path`` (so a forwarder can take it)."""
        listener = self.listeners.pop(path, None)
        if listener is not None:
            listener.close()

    def close(self) -> None:
        for path in list(self.listeners):
            self.release(path)


class TargetPorts:
    """Which socket serves each registered (instance, port): the instance's forwarder when the load balancer is admitted, else a black hole."""

    def __init__(self) -> None:
        self.blackhole = Blackhole()
        self.opened: dict[tuple[str, int], bool] = {}  # (instance id, port) -> served by its forwarder

    def open(self, booted, port: int, sock: Path, admitted: bool) -> Path:
        """Serve ``sock`` by ``booted``'s forwarder to ``port`` when ``admitted``, else by the black hole; return it."""
        if admitted:
            self.blackhole.release(sock)
            booted.forward(port, sock)
        else:
            log.info(
                "%s port %d: no security group of it admits the load balancer: its packets are dropped",
                booted.instance_id,
                port,
            )
            end(booted.forwarders.pop(port, None), timeout=1)
            self.blackhole.listen(sock)
        self.opened[(booted.instance_id, port)] = admitted
        return sock

    def changed(self, admitted: dict[tuple[str, int], bool]) -> list[tuple[str, int]]:
        """The ports whose admission differs from how they are served (ports no longer registered are left as they are)."""
        return [key for key, was in self.opened.items() if admitted.get(key, was) != was]

    def forget(self, instance_id: str, sock_of: Callable[[int], Path]) -> None:
        for key in [k for k in self.opened if k[0] == instance_id]:
            self.blackhole.release(sock_of(key[1]))
            del self.opened[key]

    def close(self) -> None:
        self.blackhole.close()


class EndpointProxy:
    """Each instance's AWS endpoint: carries a request to moto when the instance's network reaches its service."""

    def __init__(self, moto_port: int, reach: Callable[[str], frozenset], region: Callable[[str], str | None]) -> None:
        """``reach(instance id)``: the services its network reaches; ``region(instance id)``: its region (None: not known)."""
        self.moto_port, self.reach, self.region = moto_port, reach, region
        self.listeners: dict[str, _Listener] = {}

    def serve(self, instance_id: str, path: Path) -> Path:
        """The unix socket for ``instance_id``'s AWS endpoint (made once)."""
        if instance_id not in self.listeners:
            self.listeners[instance_id] = _Listener(path, lambda conn: self._handle(instance_id, conn))
        return self.listeners[instance_id].path

    def forget(self, instance_id: str) -> None:
        listener = self.listeners.pop(instance_id, None)
        if listener is not None:
            listener.close()

    def close(self) -> None:
        for iid in list(self.listeners):
            self.forget(iid)

    def _handle(self, instance_id: str, conn: socket.socket) -> None:
        head = _read_head(conn)
        if head is None:
            conn.close()
            return
        region, service = scope_of(head)
        elsewhere = region is not None and region != self.region(instance_id)
        if not reaches(self.reach(instance_id), service, elsewhere):
            log.info(
                "%s: no route to the AWS endpoint for %s%s: connection held unanswered",
                instance_id,
                service or "an unsigned request",
                f" in {region}" if elsewhere else "",
            )
            _hold(conn)
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.moto_port), timeout=10)
        except OSError:
            conn.close()
            return
        upstream.settimeout(None)
        conn.settimeout(None)
        upstream.sendall(head)
        _pipe(conn, upstream)


def _read_head(conn: socket.socket) -> bytes | None:
    """Everything received up to the end of the first request's headers (None: closed or too long first)."""
    conn.settimeout(30)
    data = b""
    with contextlib.suppress(OSError):
        while b"\r\n\r\n" not in data and len(data) < HEAD_LIMIT:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        return data if b"\r\n\r\n" in data else None
    return None


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until either side closes; then close both."""

    def copy(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=copy, args=(b, a), daemon=True)
    other.start()
    copy(a, b)
    other.join(HOLD_SECONDS)
    a.close()
    b.close()


# Which service and region a request is for: its SigV4 credential scope
# (Credential=AKID/DATE/REGION/SERVICE/aws4_request), in the Authorization header or a presigned URL's X-Amz-Credential.
_SCOPE = re.compile(r"Credential=[^/\s,]+/\d{8}/([a-z0-9-]+)/([a-z0-9.-]+)/aws4_request", re.IGNORECASE)
_QUERY_SCOPE = re.compile(r"[?&]X-Amz-Credential=([^&\s]+)", re.IGNORECASE)


def scope_of(head: bytes) -> tuple[str | None, str | None]:
    """``(region, service)`` an HTTP request head is signed for (its SigV4 credential scope), or ``(None, None)``."""
    text = head.decode("latin-1")
    for line in text.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "authorization":
            found = _SCOPE.search(value)
            return (found.group(1).lower(), found.group(2).lower()) if found else (None, None)
    query = _QUERY_SCOPE.search(text.split("\r\n", 1)[0])
    if query:
        parts = unquote(query.group(1)).split("/")
        return (parts[2].lower(), parts[3].lower()) if len(parts) == 5 else (None, None)
    return None, None


def service_of(head: bytes) -> str | None:
    """The service an HTTP request head is signed for (its SigV4 credential scope), or None."""
    return scope_of(head)[1]
