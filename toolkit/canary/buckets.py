"""A slot's requests over time: counted per bucket of a few seconds (pure).

The judge compares two whole windows; a picture of a release (``toolkit.release.report``)
shows how each slot's traffic moved instead: per bucket of ``width`` seconds,
its requests, its 5xx (``Request.error``: the target's, or the load
balancer's 502/503/504 on its behalf), and the median and 99th percentile of
the answered requests' response times (the judge's latency:
``target_processing_time``). Every request of [start, end] falls in exactly
one bucket, so the buckets' counts add up to the requests read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from toolkit.canary.samples import Request

# Bucket widths a picture uses (seconds): the first that keeps a span within ``most`` buckets.
WIDTHS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)


@dataclass(frozen=True)
class Bucket:
    """One slot's requests in [start, start + width): counts, and response times in seconds (None: none answered)."""

    start: float  # epoch seconds
    width: float
    requests: int = 0
    errors: int = 0  # 5xx
    p50: float | None = None
    p99: float | None = None

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.width


def width_for(span: float, most: int = 300) -> int:
    """The bucket width (seconds, one of ``WIDTHS``) that cuts ``span`` seconds into at most ``most`` buckets."""
    return next((w for w in WIDTHS if span / w <= most), WIDTHS[-1])


def bucketed(requests: tuple[Request, ...] | list[Request], start: float, end: float, width: float) -> list[Bucket]:
    """``requests`` of [start, end] per bucket of ``width`` seconds from ``start`` (the last one may be shorter).

    A request at ``end`` counts in the last bucket; one outside [start, end] in none.
    """
    count = max(1, math.ceil((end - start) / width))
    found: list[list[Request]] = [[] for _ in range(count)]
    for r in requests:
        if start <= r.at <= end:
            found[min(count - 1, int((r.at - start) // width))].append(r)
    out = []
    for i, rs in enumerate(found):
        times = sorted(r.seconds for r in rs if r.seconds is not None)
        out.append(
            Bucket(
                start + i * width,
                min(width, end - (start + i * width)) or width,
                len(rs),
                sum(r.error for r in rs),
                percentile(times, 50),
                percentile(times, 99),
            )
        )
    return out


def percentile(ordered: list[float], q: float) -> float | None:
    """The ``q``-th percentile of sorted values, interpolated between the two nearest (numpy's default); None for none."""
    if not ordered:
        return None
    at = (len(ordered) - 1) * q / 100
    low = math.floor(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)
