"""The pure and local parts of ``invoke verify --ami``: ingress rule, image choice, SSH wait, caller address."""

from __future__ import annotations

import http.server
import socket
import threading
from pathlib import Path

import pytest

from toolkit import config
from toolkit.errors import AwsError, ConfigError, ImageError, VerifyError
from toolkit.hosts import ec2, ssh
from toolkit.images import check

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    "address, ranges",
    [
        (
            "203.0.113.7",
            {"IpRanges": [{"CidrIp": "203.0.113.7/32", "Description": "rodeo verify: SSH from the caller"}]},
        ),
        (
            "2001:db8::1",
            {"Ipv6Ranges": [{"CidrIpv6": "2001:db8::1/128", "Description": "rodeo verify: SSH from the caller"}]},
        ),
    ],
)
def test_ssh_ingress_is_port_22_from_one_address(address, ranges):
    assert ec2.ssh_ingress(address) == {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, **ranges}


def test_ssh_ingress_rejects_a_non_address():
    with pytest.raises(ValueError):
        ec2.ssh_ingress("0.0.0.0/0")


@pytest.mark.parametrize(
    "tags, flag, expected",
    [
        ({"rodeo:image": "app"}, None, "app"),
        ({"rodeo:image": "app"}, "base", "base"),
        ({}, "base", "base"),
        ({}, None, ImageError),
        ({"rodeo:image": "gone"}, None, ConfigError),
    ],
)
def test_image_of(tags, flag, expected):
    cfg = config.load("local", ROOT)
    found = {"ImageId": "ami-0123456789abcdef0", "tags": tags}
    if isinstance(expected, type):
        with pytest.raises(expected):
            check.image_of(cfg, found, flag)
    else:
        assert check.image_of(cfg, found, flag) == expected


def _server(reply: bytes) -> tuple[socket.socket, int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(reply)

    threading.Thread(target=serve, daemon=True).start()
    return sock, sock.getsockname()[1]


def test_wait_for_ssh_returns_on_a_banner():
    sock, port = _server(b"SSH-2.0-OpenSSH_9.2\r\n")
    with sock:
        ssh.wait_for_ssh("127.0.0.1", port, timeout=5)


@pytest.mark.parametrize("reply", [None, b"HTTP/1.0 400 Bad Request\r\n"])
def test_wait_for_ssh_gives_up_with_a_clear_error(reply):
    if reply is None:
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        sock = None
    else:
        sock, port = _server(reply)
    try:
        with pytest.raises(VerifyError) as err:
            ssh.wait_for_ssh("127.0.0.1", port, timeout=0.5, instance_id="i-0abc", allowed="203.0.113.7/32")
    finally:
        if sock is not None:
            sock.close()
    assert err.value.message.startswith(f"i-0abc did not answer SSH on 127.0.0.1:{port} within 0s (")
    assert err.value.message.endswith("; no test ran")
    assert "203.0.113.7/32" in err.value.hint


@pytest.mark.parametrize("body, ok", [(b"198.51.100.4\n", True), (b"<html>captive portal</html>", False)])
def test_caller_address(body, ok):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        if ok:
            assert ec2.caller_address(url, timeout=5) == "198.51.100.4"
        else:
            with pytest.raises(AwsError, match="could not find this machine's public address"):
                ec2.caller_address(url, timeout=5)
    finally:
        server.shutdown()
        server.server_close()
