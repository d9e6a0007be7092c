"""The build instance's way out: which requests it carries, and what it leaves on an image (none of it)."""

from __future__ import annotations

import socket

import pytest

from toolkit.local import egress


@pytest.mark.parametrize(
    "head, expected",
    [
        (b"CONNECT pypi.org:443 HTTP/1.1\r\nHost: pypi.org:443\r\n\r\n", ("pypi.org", 443, True)),
        (
            b"GET http://deb.debian.org/debian/dists/bookworm/InRelease HTTP/1.1\r\nHost: deb.debian.org\r\n\r\n",
            ("deb.debian.org", 80, False),
        ),
        (b"GET http://example.com:8080/ HTTP/1.0\r\n\r\n", ("example.com", 8080, False)),
        (b"GET /relative HTTP/1.1\r\n\r\n", None),
        (b"CONNECT pypi.org HTTP/1.1\r\n\r\n", None),
        (b"garbage\r\n\r\n", None),
    ],
)
def test_the_target_of_a_request(head, expected):
    assert egress.target(head) == expected


def test_tools_are_told_one_by_one_and_the_image_keeps_none_of_it(tmp_path):
    files = egress.configuration("CA BUNDLE\n")
    assert (
        files["etc/apt/apt.conf.d/90rodeo-local-egress"]
        == 'Acquire::http::Proxy "http://127.0.0.1:3128";\nAcquire::https::Proxy "http://127.0.0.1:3128";\n'
    )
    assert files["etc/pip.conf"] == "[global]\nproxy = http://127.0.0.1:3128\ncert = /etc/rodeo-local/egress-ca.pem\n"
    assert (
        files["etc/npmrc"]
        == "proxy=http://127.0.0.1:3128\nhttps-proxy=http://127.0.0.1:3128\ncafile=/etc/rodeo-local/egress-ca.pem\n"
    )
    assert files[egress.CA_FILE] == "CA BUNDLE\n"
    assert "cert" not in egress.configuration("")["etc/pip.conf"]
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "etc/kept").write_text("the image's own\n")
    egress.forget(tmp_path)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == ["etc/kept"]
    assert not (tmp_path / "etc/rodeo-local").exists()


def test_a_port_other_than_80_or_443_is_refused(tmp_path):
    proxy = egress.EgressProxy(tmp_path / "egress.sock")
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(str(proxy.sock))
            client.sendall(b"CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n")
            assert client.recv(100).split(b"\r\n")[0] == b"HTTP/1.1 403 Forbidden"
    finally:
        proxy.close()
    assert not (tmp_path / "egress.sock").exists()
