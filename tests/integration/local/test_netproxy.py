"""The live stack's network I/O without a stack: an instance's AWS endpoint and a black-holed target port, on unix sockets.

The upstream standing in for moto is an HTTP server on 127.0.0.1 of this test's own.
"""

from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.answers import Ok
from toolkit.local.netproxy import Blackhole, EndpointProxy, TargetPorts
from toolkit.vpc import ALL, NONE

pytestmark = pytest.mark.integration
SIGNED = "POST / HTTP/1.1\r\nHost: 127.0.0.1:4566\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20261205/us-east-1/{service}/aws4_request, Signature=0\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def ask(path: Path, request: str, timeout: float = 1.0) -> bytes | None:
    """Send ``request`` to the unix socket ``path``; its answer, or None when none came within ``timeout``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(str(path))
        conn.sendall(request.encode())
        try:
            return conn.recv(65536)
        except TimeoutError:
            return None


@pytest.mark.parametrize(
    "reach,service,region,answered",
    [
        (ALL, "ssm", "us-east-1", True),
        (frozenset({"ssm"}), "ssm", "us-east-1", True),
        (frozenset({"ssm"}), "logs", "us-east-1", False),
        (NONE, "ssm", "us-east-1", False),
        # An instance in us-west-2 reading SSM in us-east-1: through a NAT gateway, not its VPC's SSM endpoint.
        (ALL, "ssm", "us-west-2", True),
        (frozenset({"ssm"}), "ssm", "us-west-2", False),
    ],
)
def test_the_endpoint_carries_only_what_the_instance_reaches(upstream, tmp_path, reach, service, region, answered):
    proxy = EndpointProxy(upstream, lambda iid: reach if iid == "i-1" else NONE, {"i-1": region}.get)
    try:
        sock = proxy.serve("i-1", tmp_path / "i-1-aws.sock")
        got = ask(sock, SIGNED.format(service=service), timeout=0.5 if not answered else 5.0)
        assert (
            (got is not None and got.startswith(b"HTTP/1.0 200")) if answered else got is None
        )  # held: no answer, no close
    finally:
        proxy.close()
    assert not (tmp_path / "i-1-aws.sock").exists()


def test_a_black_hole_accepts_and_never_answers(tmp_path):
    hole = Blackhole()
    try:
        hole.listen(tmp_path / "port.sock")
        assert ask(tmp_path / "port.sock", "GET /health HTTP/1.1\r\n\r\n", timeout=0.5) is None
    finally:
        hole.close()
    assert not (tmp_path / "port.sock").exists()


def test_target_ports_follow_admission_and_leave_a_deregistered_port_alone(tmp_path):
    forwarded: list[int] = []
    booted = SimpleNamespace(instance_id="i-1", forwarders={}, forward=lambda port, sock: forwarded.append(port))
    ports = TargetPorts()
    try:
        ports.open(booted, 8080, tmp_path / "i-1-8080.sock", admitted=False)
        assert (tmp_path / "i-1-8080.sock").is_socket() and forwarded == []
        assert ports.changed({("i-1", 8080): False}) == []
        assert ports.changed({("i-1", 8080): True}) == [("i-1", 8080)]
        assert ports.changed({}) == []  # deregistered (draining): as it is
        ports.open(booted, 8080, tmp_path / "i-1-8080.sock", admitted=True)
        assert forwarded == [8080] and not (tmp_path / "i-1-8080.sock").exists()  # the forwarder makes its own socket
    finally:
        ports.close()
