"""A fault-injecting HTTP proxy in front of the moto server (tests and benchmarks only).

``FaultProxy(upstream)`` listens on 127.0.0.1 (a free port) and forwards
every request to ``upstream`` (the moto server, also on 127.0.0.1) with its
method, path, headers and body, and returns moto's answer. On a share of the
requests (``rate``, drawn from a seeded ``random.Random``) it answers with a
fault instead, in the shape the calling SDK parses:

- ``throttle``: 400 ``RequestLimitExceeded`` (EC2's ``<Response><Errors>``),
  400 ``Throttling`` (``<ErrorResponse>`` of ELBv2, Auto Scaling, STS...; for
  CloudWatch, which recent botocore calls over JSON or Smithy RPC v2 CBOR, the
  same code as ``__type`` with ``x-amzn-query-error``) or 400
  ``ThrottlingException`` / ``ProvisionedThroughputExceededException``
  (DynamoDB's JSON ``__type``); the answer's shape follows the request's;
- ``5xx``: 500 ``InternalError`` or 503 ``ServiceUnavailable`` in the same shapes;
- ``drop``: the connection is closed without an answer.

With ``after`` (a probability), a fault is injected after the request was
forwarded: it took effect in moto but the client sees an error, the case
that makes a retried create a duplicate. ``mutating_only`` and ``actions`` /
``exclude`` narrow which requests may fault; ``limit`` caps how many faults
are injected (``rate=1.0, limit=10``: an outage that lasts exactly ten calls). Every field can be changed while
the proxy runs (``proxy.rate = 1.0``: from now on every call fails).

    with FaultProxy(moto_url, rate=0.25, seed=7) as proxy:
        aws = LocalEnvironment("us-east-1", endpoint=proxy.url)
        ...
        proxy.stats.faults  # Counter: action -> faults injected

``url, stats = proxy`` unpacks too. Only 127.0.0.1 is ever bound or dialled.
"""

from __future__ import annotations

import collections
import http.client
import json
import random
import re
import socket
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Collection, Iterator

KINDS = ("throttle", "5xx", "drop")
READ_ONLY = ("Describe", "Get", "List", "Query", "Scan", "BatchGet")
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
LOOPBACK = "127.0.0.1"


@dataclass
class Stats:
    """What went through: requests and faults per action, faults per kind, and every fault in order."""

    requests: collections.Counter = field(default_factory=collections.Counter)
    faults: collections.Counter = field(default_factory=collections.Counter)
    kinds: collections.Counter = field(default_factory=collections.Counter)  # "throttle", "after:5xx", ...
    log: list = field(default_factory=list)  # (service, action, kind, after)

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    @property
    def faulted(self) -> int:
        return sum(self.faults.values())


def is_mutating(action: str) -> bool:
    """True unless the action only reads (Describe*, Get*, List*, Query, Scan, BatchGet*)."""
    return bool(action) and not action.startswith(READ_ONLY)


class FaultProxy:
    """The proxy; a context manager that starts and stops it (see the module docstring)."""

    def __init__(
        self,
        upstream: str,
        rate: float = 0.0,
        kinds: Collection[str] = KINDS,
        seed: int = 0,
        after: float = 0.0,
        mutating_only: bool = False,
        actions: Collection[str] | None = None,
        exclude: Collection[str] = (),
        limit: int | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.hostname not in (LOOPBACK, "localhost") or not parsed.port:
            raise ValueError(f"upstream must be http://127.0.0.1:PORT, not {upstream!r}")
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s) {sorted(unknown)}; valid: {', '.join(KINDS)}")
        self.upstream_port = parsed.port
        self.rate, self.kinds, self.after = rate, tuple(kinds), after
        self.mutating_only, self.actions, self.exclude = mutating_only, set(actions) if actions else None, set(exclude)
        self.limit = limit  # at most this many faults from now on (None: no limit)
        self.random = random.Random(seed)
        self.stats = Stats()
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.url = ""

    def configure(self, **changes) -> None:
        """Change fault settings while running (``rate``, ``kinds``, ``after``, ``actions``...)."""
        with self.lock:
            for name, value in changes.items():
                if name not in ("rate", "kinds", "after", "mutating_only", "actions", "exclude", "limit"):
                    raise TypeError(f"unknown setting {name!r}")
                setattr(self, name, set(value) if name in ("actions", "exclude") and value is not None else value)

    def start(self) -> "FaultProxy":
        handler = type("Handler", (_Handler,), {"proxy": self})
        self.server = ThreadingHTTPServer((LOOPBACK, 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True, name="faultproxy"
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __iter__(self) -> Iterator:
        return iter((self.url, self.stats))

    def decide(self, service: str, action: str) -> tuple[str | None, bool]:
        """Count the request; return (fault kind or None, after forwarding?)."""
        with self.lock:
            self.stats.requests[action] += 1
            eligible = bool(action) and (not self.mutating_only or is_mutating(action))
            eligible = eligible and (self.actions is None or action in self.actions) and action not in self.exclude
            if not eligible or not self.kinds or self.limit == 0 or self.random.random() >= self.rate:
                return None, False
            if self.limit is not None:
                self.limit -= 1
            kind = self.random.choice(self.kinds)
            after = self.random.random() < self.after
            self.stats.faults[action] += 1
            self.stats.kinds[f"after:{kind}" if after else kind] += 1
            self.stats.log.append((service, action, kind, after))
            return kind, after

    def error(self, service: str, kind: str, protocol: str = "query") -> tuple[int, dict, bytes]:
        """Status, headers and body of a throttling or 5xx answer in ``service``'s shape.

        ``protocol`` is the request's: "json" (DynamoDB, and CloudWatch in
        recent botocore), "cbor" (Smithy RPC v2) or "query" (XML answers).
        """
        with self.lock:
            pick = self.random.random()
        rid = str(uuid.uuid4())
        if kind == "throttle":
            status = 400
            code = {
                "ec2": "RequestLimitExceeded",
                "dynamodb": "ThrottlingException" if pick < 0.5 else "ProvisionedThroughputExceededException",
            }.get(service, "Throttling")
            message = "Rate exceeded (injected by faultproxy)"
        else:
            status = 500 if pick < 0.5 else 503
            code = {
                500: {"ec2": "InternalError", "dynamodb": "InternalServerError"},
                503: {"ec2": "Unavailable", "dynamodb": "ServiceUnavailable"},
            }[status].get(service, "InternalFailure" if status == 500 else "ServiceUnavailable")
            message = "We encountered an internal error (injected by faultproxy)"
        if protocol in ("json", "cbor"):
            namespace = "com.amazonaws.dynamodb.v20120810" if service == "dynamodb" else f"com.amazonaws.{service}"
            fields = {"__type": f"{namespace}#{code}", "message": message}
            headers = {"x-amzn-RequestId": rid}
            if service != "dynamodb":  # query-compatible services (CloudWatch) name the query error code here
                headers["x-amzn-query-error"] = f"{code};{'Sender' if status < 500 else 'Receiver'}"
            if protocol == "cbor":
                return (
                    status,
                    dict(headers, **{"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}),
                    _cbor(fields),
                )
            return status, dict(headers, **{"Content-Type": "application/x-amz-json-1.0"}), json.dumps(fields).encode()
        if service == "ec2":
            body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>{rid}</RequestID></Response>'
        else:
            side = "Sender" if status < 500 else "Receiver"
            body = f"<ErrorResponse><Error><Type>{side}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>"
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, body.encode()


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _handle(self) -> None:
        body = self._body()
        service, action = _identify(self.path, self.headers, body)
        kind, after = self.proxy.decide(service, action) if not self.path.startswith("/moto-api") else (None, False)
        if kind is not None and not after:
            return self._fault(service, kind)
        try:
            status, headers, answer = self._forward(body)
        except OSError:
            return self._drop()
        if kind is not None:
            return self._fault(service, kind)
        self._send(status, headers, answer)

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self, body: bytes) -> tuple[int, list, bytes]:
        conn = http.client.HTTPConnection(LOOPBACK, self.proxy.upstream_port, timeout=120)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            return resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP], resp.read()
        finally:
            conn.close()

    def _fault(self, service: str, kind: str) -> None:
        if kind == "drop":
            return self._drop()
        kind_of_body = self.headers.get("Content-Type", "")
        protocol = "cbor" if "cbor" in kind_of_body else "json" if "json" in kind_of_body else "query"
        status, headers, body = self.proxy.error(service, kind, protocol)
        self._send(status, list(headers.items()), body)

    def _send(self, status: int, headers: list, body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def _identify(path: str, headers, body: bytes) -> tuple[str, str]:
    """(service, action) of a request: the SigV4 scope, then ``X-Amz-Target``, an RPC v2 path or ``Action=``."""
    match = _SCOPE.search(headers.get("Authorization", ""))
    service = match.group(1) if match else ""
    target = headers.get("X-Amz-Target", "")
    if target:
        if not service and target.startswith("DynamoDB"):
            service = "dynamodb"
        return service, target.rsplit(".", 1)[-1]
    rpc = re.search(r"/service/[^/]+/operation/([A-Za-z0-9]+)", path)
    if rpc:
        return service, rpc.group(1)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    action = query.get("Action", [""])[0]
    if not action and "x-www-form-urlencoded" in headers.get("Content-Type", ""):
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
    return service, action


def _cbor(values: dict[str, str]) -> bytes:
    """A CBOR map of short text keys and values (all an error body needs)."""

    def text(s: str) -> bytes:
        raw = s.encode()
        head = (
            bytes([0x60 | len(raw)])
            if len(raw) < 24
            else bytes([0x78, len(raw)])
            if len(raw) < 256
            else bytes([0x79]) + len(raw).to_bytes(2, "big")
        )
        return head + raw

    return bytes([0xA0 | len(values)]) + b"".join(text(k) + text(v) for k, v in values.items())
