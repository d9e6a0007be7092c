"""The local load balancer's reload: once ``apply`` returns, only the new HAProxy process takes clients and commands.

An old process is kept alive by a client connection it still serves (as a
reload under traffic leaves it); runtime commands sent after the reload must
reach the new process, or a server added, drained or deleted there would be
missing from (or left in) the process that serves the next request.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.answers import Ok
from toolkit.local.balancer import Backend, Check, Frontend, HAProxy, Server, apportion, render_config, sockets_of

pytestmark = pytest.mark.integration
RELOADS = 5


class _UnixHTTP(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        conn, _ = super().get_request()
        return conn, ("unix", 0)  # BaseHTTPRequestHandler expects a (host, port) client address


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str, seconds: float = 10.0) -> int:
    """The first 200 within ``seconds`` (the added server serves after its first passing check, 1 s apart), or the
    last status seen."""
    deadline, status = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        time.sleep(0.1)
    return status


@pytest.fixture
def app(tmp_path):
    server = _UnixHTTP(str(tmp_path / "app.sock"), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield str(tmp_path / "app.sock")
    server.shutdown()
    server.server_close()


def test_after_each_reload_only_the_new_process_answers_commands_and_clients(tmp_path: Path, app: str):
    check = Check(interval=1, rise=1, fall=2, timeout=1)
    front = Frontend("lb", _free_port())
    proxy = HAProxy(tmp_path, tmp_path)
    held = []
    try:
        proxy.apply(render_config(tmp_path, [front], [Backend("tg-a", check)], []), {"lb": apportion([("tg-a", 100)])})
        for n in range(1, RELOADS + 1):
            held.append(socket.create_connection(("127.0.0.1", front.port)))  # the old process lingers for it
            old = proxy.proc
            backends = [Backend("tg-a", check)] + [Backend(f"tg-{i}", check) for i in range(n)]  # one more: a reload
            proxy.apply(render_config(tmp_path, [front], backends, []), {"lb": apportion([("tg-a", 100)])})
            assert old.poll() is None and proxy.proc.pid != old.pid
            assert not sockets_of(old.pid) & sockets_of(proxy.proc.pid)  # the listeners are the new one's alone
            proxy.add_server(Server("tg-a", f"s{n}", app), check)  # a command sent at once lands in the new one
            info = proxy.command("show info")
            assert f"Pid: {proxy.proc.pid}\n" in info, info[:200]
            assert f" s{n} " in proxy.command("show servers state tg-a")
        assert _answers(f"http://127.0.0.1:{front.port}/") == 200  # the server added after the last reload serves
    finally:
        for conn in held:
            conn.close()
        proxy.stop()
