"""A slot's requests per bucket of time, as tables: every request of the span in exactly one bucket."""

from __future__ import annotations

import numpy
import pytest

from toolkit.canary.buckets import Bucket, bucketed, percentile, width_for
from toolkit.canary.samples import Request


@pytest.mark.parametrize(
    ("span", "most", "width"),
    [
        (0, 300, 1),
        (60, 300, 1),
        (300, 300, 1),
        (301, 300, 2),
        (1400, 300, 5),
        (1800, 300, 10),  # a release with three 10-minute steps
        (4 * 3600, 300, 60),
        (10**7, 300, 3600),  # beyond every width: the widest
    ],
)
def test_the_width_keeps_a_span_within_the_buckets_asked(span, most, width):
    assert width_for(span, most) == width


def ok(at: float, seconds: float = 0.002, status: int = 200) -> Request:
    return Request(at, status, seconds)


@pytest.mark.parametrize(
    ("case", "requests", "start", "end", "width", "expected"),
    [
        ("nothing", [], 0.0, 3.0, 1, [Bucket(0.0, 1, 0), Bucket(1.0, 1, 0), Bucket(2.0, 1, 0)]),
        (
            "counts, 5xx and percentiles per bucket",
            [ok(0.1, 0.001), ok(0.5, 0.003, 500), ok(1.2, 0.010)],
            0.0,
            2.0,
            1,
            [Bucket(0.0, 1, 2, 1, 0.002, 0.00298), Bucket(1.0, 1, 1, 0, 0.010, 0.010)],
        ),
        (
            "a request at the end counts in the last bucket, outside the span in none",
            [ok(-0.001), ok(0.0), ok(2.0), ok(2.001)],
            0.0,
            2.0,
            1,
            [Bucket(0.0, 1, 1, 0, 0.002, 0.002), Bucket(1.0, 1, 1, 0, 0.002, 0.002)],
        ),
        (
            "the last bucket is as long as what is left of the span",
            [ok(4.5)],
            0.0,
            5.0,
            2,
            [Bucket(0.0, 2, 0), Bucket(2.0, 2, 0), Bucket(4.0, 1.0, 1, 0, 0.002, 0.002)],
        ),
        (
            "no target answered: counted (a 502), no response time",
            [Request(0.5, 502, None)],
            0.0,
            1.0,
            1,
            [Bucket(0.0, 1, 1, 1, None, None)],
        ),
    ],
)
def test_bucketed(case, requests, start, end, width, expected):
    found = bucketed(requests, start, end, width)
    assert [b.start for b in found] == [b.start for b in expected], case
    for got, want in zip(found, expected):
        assert (got.width, got.requests, got.errors) == (want.width, want.requests, want.errors), case
        for q in ("p50", "p99"):
            assert getattr(got, q) == (None if getattr(want, q) is None else pytest.approx(getattr(want, q))), case


def test_every_request_of_the_span_is_in_one_bucket():
    rng = numpy.random.default_rng(7)
    at = rng.uniform(-5, 65, 5000)
    requests = [ok(float(t), float(s)) for t, s in zip(at, rng.lognormal(-6, 0.4, 5000))]
    for width in (1, 2, 5, 7):
        found = bucketed(requests, 0.0, 60.0, width)
        assert sum(b.requests for b in found) == sum(0.0 <= t <= 60.0 for t in at)


@pytest.mark.parametrize("q", [0, 1, 50, 90, 99, 100])
def test_percentile_is_numpys_default(q):
    values = sorted(numpy.random.default_rng(3).lognormal(0, 1, 101).tolist())
    assert percentile(values, q) == pytest.approx(float(numpy.percentile(values, q)))
    assert percentile(values[:2], q) == pytest.approx(float(numpy.percentile(values[:2], q)))
    assert percentile([], q) is None


def test_the_rate_is_per_second_of_the_buckets_own_width():
    assert Bucket(0.0, 5, 50).rate == 10.0
    assert Bucket(0.0, 0.5, 5).rate == 10.0
