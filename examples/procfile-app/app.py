"""A Heroku-style web app: a WSGI callable that gunicorn serves on $PORT (see Procfile).

GET /health answers {"status": "ok", "version": ...}; GET / a greeting. The
version is VERSION's first line; GREETING is a config var (invoke config.set).
"""

import json
import os
from pathlib import Path

VERSION = (Path(__file__).parent / "VERSION").read_text().strip()


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    if path == "/health":
        return _reply(start_response, "200 OK", "application/json", json.dumps({"status": "ok", "version": VERSION}))
    if path == "/":
        greeting = os.environ.get("GREETING", "Hello from a Procfile")
        return _reply(start_response, "200 OK", "text/plain; charset=utf-8", f"{greeting} (version {VERSION})\n")
    return _reply(start_response, "404 Not Found", "text/plain", "not found\n")


def _reply(start_response, status, content_type, body):
    data = body.encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(data))), ("X-App-Version", VERSION)])
    return [data]
