"""Rodeo's sample web app: a WSGI app on the standard library alone.

GET /health answers {"status": "ok", "version": ...}; GET / a hello page.
The version and port come from config.json next to this file. Config vars
(Rodeo's ``invoke config.set``) arrive as environment variables: GREETING is
the page's heading, PORT (a number) the port; --port wins over both.
"""

import argparse
import html
import itertools
import json
import os
import socketserver
import sys
import time
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

CONFIG = json.loads((Path(__file__).parent / "config.json").read_text())
FAULT = os.environ.get("WEBAPP_FAULT", "")  # a deliberately broken build (see the role's defaults)
DELAY_MS = float(os.environ.get("WEBAPP_FAULT_DELAY_MS") or 50)  # slow: added to every page's answer
ERROR_PERCENT = float(os.environ.get("WEBAPP_FAULT_ERROR_PERCENT") or 1)  # flaky: the share of pages answered 500
SERVED = itertools.count(1)  # pages served (flaky)
GREETING = os.environ.get("GREETING", "Hello from Rodeo")
PAGE = """<!doctype html>
<html><head><title>Rodeo</title></head>
<body><h1>{greeting}</h1><p>Version {version}</p></body></html>
"""


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
        return _reply(start_response, "405 Method Not Allowed", "text/plain", "method not allowed\n")
    if path == "/health":
        if FAULT == "health":
            return _reply(start_response, "500 Internal Server Error", "application/json", json.dumps({"status": "broken"}))
        body = json.dumps({"status": "ok", "version": CONFIG["version"]})
        return _reply(start_response, "200 OK", "application/json", body)
    if path == "/" and FAULT == "root":
        return _reply(start_response, "500 Internal Server Error", "text/plain", "broken\n")
    if FAULT == "slow":
        time.sleep(DELAY_MS / 1000)
    if FAULT == "flaky" and _unlucky(next(SERVED)):
        return _reply(start_response, "500 Internal Server Error", "text/plain", "flaky\n")
    if path == "/":
        return _reply(start_response, "200 OK", "text/html; charset=utf-8", PAGE.format(greeting=html.escape(GREETING), version=CONFIG["version"]))
    return _reply(start_response, "404 Not Found", "text/plain", "not found\n")


def _unlucky(n):
    """True for the pages that answer 500: exactly ERROR_PERCENT of them, evenly spread (every 100th at 1%)."""
    return int(n * ERROR_PERCENT / 100) > int((n - 1) * ERROR_PERCENT / 100)


def _reply(start_response, status, content_type, body):
    data = body.encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data))), ("X-App-Version", str(CONFIG["version"]))])
    return [data]


class ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        sys.stdout.write("%s %s\n" % (self.address_string(), format % args))
        sys.stdout.flush()


def port_from_env():
    """PORT from the environment, else config.json's; a PORT that is not a number stops the app (a bad config var)."""
    value = os.environ.get("PORT", "")
    if not value:
        return CONFIG["port"]
    if not value.isdigit() or not 0 < int(value) < 65536:
        sys.exit(f"PORT must be a port number, not {value!r}")
    return int(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    args.port = args.port or port_from_env()
    with make_server(args.host, args.port, app, server_class=ThreadingServer, handler_class=QuietHandler) as server:
        print(f"serving version {CONFIG['version']} on {args.host}:{args.port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
