"""A build instance's way out to the package registries, as a NAT gateway gives one on AWS.

On EC2 the build instance downloads Debian's packages and the app's
dependencies (PyPI, npm) through its subnet's NAT or internet gateway. Here
its network namespace has none: ``EgressProxy`` is an HTTP proxy on a unix
socket on this side, which the stack serves inside each build instance on
``127.0.0.1:PORT``; ``configuration`` is what tells apt, pip and npm there to
use it. It carries ``CONNECT host:443`` tunnels (https) and plain ``http://``
requests (apt's) to ports 80 and 443 only, to whatever this machine reaches.
Release instances get none: nothing on them downloads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
from pathlib import Path

PORT = 3128  # inside a build instance
CA_FILE = "etc/rodeo-local/egress-ca.pem"  # inside a build instance: this machine's trust, for pip and npm
PORTS = (80, 443)  # where it may go
HEAD_LIMIT = 65536
CONNECT_TIMEOUT = 15.0
log = logging.getLogger("rodeo.live.egress")
_TARGET_RE = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]\r?$")


def configuration(ca_bundle: str = "") -> dict[str, str]:
    """Files a build instance gets at launch (path in the instance -> text) so apt, pip and npm use the proxy.

    Each is a tool's own setting, not ``http_proxy`` for every program: the
    app's AWS calls (the config loader) and the image tests' curl to
    127.0.0.1 must not go through it. ``ca_bundle`` is this machine's trust
    (``host_ca_bundle``): where this machine's own way out inspects TLS, pip
    and npm in the instance trust what this machine trusts.
    """
    url = f"http://127.0.0.1:{PORT}"
    files = {
        "etc/apt/apt.conf.d/90rodeo-local-egress": f'Acquire::http::Proxy "{url}";\nAcquire::https::Proxy "{url}";\n',
        "etc/pip.conf": f"[global]\nproxy = {url}\n",
        "etc/npmrc": f"proxy={url}\nhttps-proxy={url}\n",
    }
    if ca_bundle:
        files[CA_FILE] = ca_bundle
        files["etc/pip.conf"] += f"cert = /{CA_FILE}\n"
        files["etc/npmrc"] += f"cafile=/{CA_FILE}\n"
    return files


def host_ca_bundle() -> str:
    """This machine's CA bundle (Debian's path, or ``SSL_CERT_FILE``'s), or "" without one."""
    for path in (os.environ.get("SSL_CERT_FILE", ""), "/etc/ssl/certs/ca-certificates.crt"):
        with contextlib.suppress(OSError):
            if path:
                return Path(path).read_text()
    return ""


def forget(upper: Path) -> None:
    """Remove ``configuration``'s files from a stopped build instance's upper layer: the image it becomes keeps none."""
    for name in configuration("-"):
        (upper / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (upper / CA_FILE).parent.rmdir()  # only when empty


def target(head: bytes) -> tuple[str, int, bool] | None:
    """``(host, port, tunnel)`` of a request head's first line (CONNECT, or an absolute http URL), or None. Pure."""
    match = _TARGET_RE.match(head.split(b"\n", 1)[0])
    if match is None:
        return None
    method, where = match.group(1).decode(), match.group(2).decode("latin-1")
    if method == "CONNECT":
        host, _, port = where.rpartition(":")
        return (host.strip("[]"), int(port), True) if port.isdigit() else None
    found = re.match(r"^http://([^/:]+)(?::(\d+))?(/.*)?$", where)
    if found is None:
        return None
    return found.group(1), int(found.group(2) or 80), False


class EgressProxy:
    """The proxy, serving ``sock`` in a thread of its own until ``close``."""

    def __init__(self, sock: Path) -> None:
        self.sock = sock
        sock.unlink(missing_ok=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(sock))
        sock.chmod(0o600)
        self.server.listen(64)
        self.closed = threading.Event()
        threading.Thread(target=self._accept, name="rodeo-egress", daemon=True).start()

    def close(self) -> None:
        self.closed.set()
        with contextlib.suppress(OSError):
            self.server.close()
        self.sock.unlink(missing_ok=True)

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        upstream = None
        try:
            head = _read_head(conn)
            found = target(head)
            if found is None or found[1] not in PORTS:
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            host, port, tunnel = found
            try:
                upstream = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
            except OSError as exc:
                conn.sendall(
                    f"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\nX-Rodeo-Egress: {exc}\r\n\r\n".encode()
                )
                return
            upstream.settimeout(None)
            if tunnel:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.sendall(head)  # servers take a request's absolute form (RFC 9112 3.2.2)
            _pipe(conn, upstream)
        except OSError as exc:
            log.debug("egress connection ended: %s", exc)
        finally:
            for s in (conn, upstream):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()


def _read_head(conn: socket.socket) -> bytes:
    """What the client sent up to the end of its first request's head (the rest, a body, follows through the pipe)."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < HEAD_LIMIT:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until either side closes."""

    def copy(src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    other = threading.Thread(target=copy, args=(b, a), daemon=True)
    other.start()
    copy(a, b)
    other.join()
