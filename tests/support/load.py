"""A steady, bounded HTTP load on the local load balancer, counting every failure (tests and benchmarks).

``Load(url, rate=100)`` sends GETs at ``rate`` requests per second from a few
worker threads, half of them on kept-alive connections and half on a new
connection per request, until ``stop()`` or ``max_seconds`` (whichever comes
first) and never more than ``max_requests``. Each request is recorded: when it
started (on the load's clock, and the wall clock the load balancer's logs
use), how long it took, its status (0: connection error or timeout), and the
app version that answered (the ``X-App-Version`` header).

Only loopback URLs are accepted: the local stack's HAProxy listens on
127.0.0.1, and nothing else may be loaded.
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

LOOPBACK = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class Sample:
    """One request: start (seconds since the load began), latency, HTTP status (0: no answer), version, start (epoch)."""

    at: float
    seconds: float
    status: int
    version: str = ""
    wall: float = 0.0  # time.time() as it started: on the clock the load balancer's access logs use

    def within(self, start: float, end: float, slack: float = 0.0) -> tuple[bool, bool]:
        """(surely, maybe): the moment the load balancer received it (between its start, less ``slack``, and its
        answer) lies in [start, end] for sure, or may."""
        first, last = self.wall - slack, self.wall + self.seconds
        return start <= first and last <= end, last >= start and first <= end

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Load:
    """The load generator; a context manager that starts and stops it."""

    url: str
    rate: float = 100.0
    workers: int = 8
    path: str = "/"
    max_seconds: float = 300.0
    max_requests: int = 100_000
    timeout: float = 5.0
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.hostname not in LOOPBACK or not parsed.port:
            raise ValueError(f"load only loopback URLs, not {self.url!r}")
        self.host, self.port = parsed.hostname, parsed.port
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._sent = 0
        self.started = 0.0

    def __enter__(self) -> "Load":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "Load":
        self.started = time.monotonic()
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, args=(i, i % 2 == 0), daemon=True, name=f"load-{i}")
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> "Load":
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)
        return self

    def _next_slot(self) -> float | None:
        """When this worker's next request is due (a shared schedule at ``rate``), or None when done."""
        with self._lock:
            if self._sent >= self.max_requests:
                return None
            due = self.started + self._sent / self.rate
            self._sent += 1
        if due - self.started > self.max_seconds:
            return None
        return due

    def _work(self, index: int, keep_alive: bool) -> None:
        conn = None
        while not self._stop.is_set():
            due = self._next_slot()
            if due is None:
                return
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            began, wall = time.monotonic(), time.time()
            status, version = 0, ""
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                conn.request("GET", self.path, headers={} if keep_alive else {"Connection": "close"})
                resp = conn.getresponse()
                resp.read()
                status, version = resp.status, resp.getheader("X-App-Version", "")
                if not keep_alive or resp.will_close:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                self.samples.append(Sample(began - self.started, time.monotonic() - began, status, version, wall))

    # --- what happened -------------------------------------------------------------------

    def failed(self, since: float = 0.0, until: float | None = None) -> list[Sample]:
        """Requests without a 2xx answer that started in ``[since, until)``."""
        return [s for s in self._window(since, until) if not s.ok]

    def _window(self, since: float, until: float | None) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if s.at >= since and (until is None or s.at < until)]

    def now(self) -> float:
        """Seconds since the load began (to mark scenario boundaries)."""
        return time.monotonic() - self.started

    def summary(self, since: float = 0.0, until: float | None = None) -> dict:
        """Requests, failures, the longest gap without a success, latency percentiles, share per version."""
        window = sorted(self._window(since, until), key=lambda s: s.at)
        ok = [s for s in window if s.ok]
        gap, last = 0.0, (window[0].at if window else 0.0)
        for s in ok:
            gap, last = max(gap, s.at - last), s.at + s.seconds
        latencies = sorted(s.seconds for s in ok) or [0.0]
        versions: dict[str, int] = {}
        for s in ok:
            versions[s.version or "?"] = versions.get(s.version or "?", 0) + 1
        return {
            "requests": len(window),
            "failed": len(window) - len(ok),
            "longest_gap_s": round(gap, 3),
            "p50_ms": round(statistics.median(latencies) * 1000, 1),
            "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
            "versions": versions,
        }

    def shares(
        self, bucket: float = 1.0, since: float = 0.0, until: float | None = None
    ) -> list[tuple[float, dict[str, int]]]:
        """Per ``bucket`` seconds: answers per version (the share of each version over time)."""
        out: dict[int, dict[str, int]] = {}
        for s in self._window(since, until):
            if s.ok:
                slot = out.setdefault(int(s.at // bucket), {})
                slot[s.version or "?"] = slot.get(s.version or "?", 0) + 1
        return [(k * bucket, v) for k, v in sorted(out.items())]
