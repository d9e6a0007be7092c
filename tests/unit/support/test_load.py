"""The load generator counts every failure exactly, and only loads loopback."""

from __future__ import annotations

import http.server
import itertools
import threading

import pytest

from tests.support.load import Load


@pytest.fixture
def server():
    """A loopback server whose requests 20..29 (counting from 0) answer 500."""
    counter = itertools.count()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            with lock:
                n = next(counter)
            self.send_response(500 if 20 <= n < 30 else 200)
            self.send_header("Content-Length", "0")
            self.send_header("X-App-Version", "v1")
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_counts_exactly_and_stops_at_its_bound(server):
    with Load(server, rate=200, workers=4, max_requests=80) as load:
        while len(load.samples) < 80 and load.now() < 10:
            load._stop.wait(0.05)
    summary = load.summary()
    assert summary["requests"] == 80 and summary["failed"] == 10
    assert summary["versions"] == {"v1": 70}


def test_refuses_other_addresses():
    with pytest.raises(ValueError, match="loopback"):
        Load("http://10.0.0.1:80")
