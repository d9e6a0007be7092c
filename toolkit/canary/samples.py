"""What the canary analysis compares: each slot's requests and metric datapoints over one window of time.

A ``Window`` holds both slots' data over the same span: the baseline (the
slot that served before the release) and the canary (the new slot). Every
request is kept, with its time, status and response time, so a judge, a
benchmark or a report reads the same samples (``to_dict``/``from_dict``
round-trip them as plain data).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    """One request the load balancer routed to a slot."""

    at: float  # epoch seconds the load balancer received it (the access log's request_creation_time)
    status: int  # what the client got (elb_status_code); 0: nothing was sent
    seconds: float | None  # how long the target took to answer (target_processing_time); None: no target answered
    target: str = ""  # the target's ip:port, "" when none was reached

    @property
    def error(self) -> bool:
        """A 5xx, from the target or from the load balancer on the target's behalf (a 502, 503 or 504)."""
        return self.status >= 500


@dataclass(frozen=True)
class Series:
    """One slot's data in a window: its requests (in time order) and the datapoints of each named metric."""

    requests: tuple[Request, ...] = ()
    metrics: dict[str, tuple[float, ...]] = field(default_factory=dict, hash=False)

    def latencies(self) -> list[float]:
        """The response times (seconds) of the requests a target answered."""
        return [r.seconds for r in self.requests if r.seconds is not None]

    def statuses(self) -> list[int]:
        """Every request's status, as the client got it."""
        return [r.status for r in self.requests]


@dataclass(frozen=True)
class Window:
    """Both slots' data over the same span [start, end] (epoch seconds)."""

    start: float
    end: float
    baseline_slot: str
    canary_slot: str
    baseline: Series = field(default_factory=Series)
    canary: Series = field(default_factory=Series)

    def to_dict(self) -> dict:
        """Plain data: the span, and per slot its requests as ``[at, status, seconds, target]`` rows and its metrics."""
        return {
            "start": self.start,
            "end": self.end,
            "baseline_slot": self.baseline_slot,
            "canary_slot": self.canary_slot,
            "baseline": _series_dict(self.baseline),
            "canary": _series_dict(self.canary),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Window:
        """The window ``to_dict`` wrote."""
        return cls(
            data["start"],
            data["end"],
            data["baseline_slot"],
            data["canary_slot"],
            _series_of(data["baseline"]),
            _series_of(data["canary"]),
        )


def _series_dict(series: Series) -> dict:
    return {
        "requests": [[r.at, r.status, r.seconds, r.target] for r in series.requests],
        "metrics": {name: list(points) for name, points in series.metrics.items()},
    }


def _series_of(data: dict) -> Series:
    return Series(
        tuple(Request(at, status, seconds, target) for at, status, seconds, target in data.get("requests", [])),
        {name: tuple(points) for name, points in data.get("metrics", {}).items()},
    )
