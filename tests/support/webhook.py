"""A webhook on 127.0.0.1 for notification tests: it keeps every JSON body it is sent."""

from __future__ import annotations

import http.server
import json
import threading


class Hook(http.server.ThreadingHTTPServer):
    """A webhook on 127.0.0.1 that keeps every JSON body it is sent and answers ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.status, self.bodies = status, []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(handler):  # noqa: N805
                self.bodies.append(json.loads(handler.rfile.read(int(handler.headers["Content-Length"]))))
                handler.send_response(self.status)
                handler.end_headers()

            def log_message(handler, *args):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def server(self) -> str:
        """What its answers say in their ``Server`` header (http.server's own)."""
        return f"{http.server.BaseHTTPRequestHandler.server_version} {http.server.BaseHTTPRequestHandler.sys_version}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/services/T0/B0/secret-part"

    def kinds(self) -> list[str]:
        return [b["rodeo"]["event"] for b in self.bodies]

    def close(self) -> None:
        self.shutdown()
        self.server_close()
