"""HTTP handlers for the tests' own loopback servers."""

from __future__ import annotations

import http.server


class Ok(http.server.BaseHTTPRequestHandler):
    """Answers every GET and POST with 200 and the body ``ok``, and logs nothing."""

    def _ok(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = _ok  # noqa: N815

    def log_message(self, *args) -> None:
        pass
