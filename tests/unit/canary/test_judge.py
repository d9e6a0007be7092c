"""The canary judge as tables: samples in, a verdict per metric and overall out, with the figures behind it.

The samples are drawn once from seeded generators (the same numbers on every
run): a log-normal response time around 100 ms, as web latencies are.
"""

from __future__ import annotations

import dataclasses

import numpy
import pytest

from toolkit.canary.judge import FAIL, INSUFFICIENT, MARGINAL, PASS, decide, judge
from toolkit.canary.samples import Request, Series, Window
from toolkit.config import Analysis, ErrorJudging, JudgedMetric, LatencyJudging

ON = Analysis(enabled=True)
LATENCY = dataclasses.replace(ON, metrics=("latency",))
ERRORS = dataclasses.replace(ON, metrics=("errors",))


def times(n: int, median: float = 0.100, factor: float = 1.0, seed: int = 1) -> list[float]:
    """``n`` log-normal response times (seconds) around ``median``, each multiplied by ``factor``."""
    return list(numpy.random.default_rng(seed).lognormal(numpy.log(median), 0.3, n) * factor)


def series(latencies: list[float], errors: int = 0, n: int | None = None) -> Series:
    """Requests with these response times (``n`` of them, cycling), the first ``errors`` answered 500, the rest 200."""
    n = len(latencies) if n is None else n
    return Series(tuple(Request(float(i), 500 if i < errors else 200, latencies[i % len(latencies)]) for i in range(n)))


def window(baseline: Series, canary: Series) -> Window:
    return Window(0.0, 60.0, "blue", "green", baseline, canary)


@pytest.mark.parametrize(
    ("case", "baseline", "canary", "analysis", "expected"),
    [
        ("30% slower at n=300 fails", times(300), times(300, factor=1.3, seed=2), LATENCY, FAIL),
        ("the same distribution passes", times(300), times(300, seed=2), LATENCY, PASS),
        ("faster is no failure (one-sided)", times(300), times(300, factor=0.7, seed=2), LATENCY, PASS),
        ("10% slower: real, within the 20% tolerance", times(3000), times(3000, factor=1.1, seed=2), LATENCY, MARGINAL),
        (
            "30% slower, but under a 50 ms floor",
            times(300),
            times(300, factor=1.3, seed=2),
            dataclasses.replace(LATENCY, latency=LatencyJudging(floor_ms=50)),
            MARGINAL,
        ),
        (
            "30% slower passes a 40% tolerance as marginal",
            times(300),
            times(300, factor=1.3, seed=2),
            dataclasses.replace(LATENCY, latency=LatencyJudging(tolerance=0.4)),
            MARGINAL,
        ),
        ("n below min_samples is insufficient", times(49), times(300, factor=2, seed=2), LATENCY, INSUFFICIENT),
        ("no data at all is insufficient", [], [], LATENCY, INSUFFICIENT),
    ],
)
def test_latency(case, baseline, canary, analysis, expected):
    verdict = judge(
        window(series(baseline) if baseline else Series(), series(canary) if canary else Series()), analysis
    )
    assert verdict.verdict == expected, verdict.summary()
    (metric,) = verdict.metrics
    assert (metric.name, metric.verdict) == ("latency", expected)
    assert (metric.figures.n_baseline, metric.figures.n_canary) == (len(baseline), len(canary))


def test_the_figures_behind_a_latency_failure():
    verdict = judge(window(series(times(300)), series(times(300, factor=1.3, seed=2))), LATENCY)
    f = verdict.metrics[0].figures
    assert f.median_canary / f.median_baseline == pytest.approx(1 + f.effect)
    assert 0.2 < f.effect < 0.4 and f.p_value < 1e-10 and f.p99_canary > f.p99_baseline
    assert f.u > 300 * 300 / 2  # the canary ranks above the baseline more often than not
    assert f.shift == pytest.approx(f.median_canary - f.median_baseline)
    reason = verdict.metrics[0].reason
    assert reason.startswith(f"latency +{f.effect:.0%} (median ") and "Mann-Whitney U=" in reason, reason
    assert reason.endswith("< 0.02): beyond the 20% tolerance"), reason
    assert verdict.summary() == f"fail: {reason}"


@pytest.mark.parametrize(
    ("case", "n", "errors_baseline", "errors_canary", "analysis", "expected"),
    [
        ("1% vs 0% at n=3000 fails at 98% confidence", 3000, 0, 30, ERRORS, FAIL),
        ("the same 1% passes", 3000, 30, 30, ERRORS, PASS),
        ("0 vs 0 passes", 3000, 0, 0, ERRORS, PASS),
        ("fewer errors in the canary passes (one-sided)", 3000, 30, 0, ERRORS, PASS),
        ("1% vs 0% at n=100 is not significant", 100, 0, 1, ERRORS, PASS),
        (
            "1% vs 0% within a 2-point tolerance is marginal",
            3000,
            0,
            30,
            dataclasses.replace(ERRORS, errors=ErrorJudging(tolerance=0.02)),
            MARGINAL,
        ),
        ("n below min_samples is insufficient", 40, 0, 40, ERRORS, INSUFFICIENT),
    ],
)
def test_errors(case, n, errors_baseline, errors_canary, analysis, expected):
    verdict = judge(window(series([0.01], errors_baseline, n), series([0.01], errors_canary, n)), analysis)
    assert verdict.verdict == expected, verdict.summary()
    f = verdict.metrics[0].figures
    assert (f.n_baseline, f.n_canary, f.errors_baseline, f.errors_canary) == (n, n, errors_baseline, errors_canary)


def test_the_figures_behind_an_error_failure():
    verdict = judge(window(series([0.01], 0, 3000), series([0.01], 30, 3000)), ERRORS)
    f = verdict.metrics[0].figures
    assert (f.ratio_baseline, f.ratio_canary, f.difference) == (0.0, 0.01, 0.01)
    assert f.p_value < 1e-8 and f.z == pytest.approx(5.49, abs=0.01)
    assert verdict.metrics[0].reason == (
        "errors 1.00% vs 0.00% (30 of 3000 vs 0 of 3000; Fisher's exact p=8.7e-10 < 0.02, z=5.49): "
        "beyond the 0.1-point tolerance"
    )


def test_an_error_answered_by_no_target_counts_but_has_no_latency():
    """A 503 the load balancer made (no target answered) is an error, and no response time."""
    canary = Series(
        tuple(Request(float(i), 503 if i % 10 == 0 else 200, None if i % 10 == 0 else 0.1) for i in range(100))
    )
    verdict = judge(window(series([0.1], 0, 100), canary), ON)
    latency, errors = verdict.metrics
    assert (latency.figures.n_canary, errors.figures.errors_canary, errors.verdict) == (90, 10, FAIL)


@pytest.mark.parametrize(
    ("verdicts", "overall"),
    [
        ((PASS, PASS), PASS),
        ((PASS, MARGINAL), MARGINAL),
        ((MARGINAL, INSUFFICIENT), INSUFFICIENT),
        ((INSUFFICIENT, FAIL), FAIL),
    ],
)
def test_the_overall_verdict_is_the_worst(verdicts, overall):
    kinds = {
        PASS: (times(300), times(300, seed=2)),
        MARGINAL: (times(3000), times(3000, factor=1.1, seed=2)),
        INSUFFICIENT: (times(10), times(10, seed=2)),
        FAIL: (times(300), times(300, factor=1.5, seed=2)),
    }
    named = tuple(JudgedMetric(name=f"m{i}", namespace="Web", metric="M") for i in range(len(verdicts)))
    analysis = dataclasses.replace(ON, metrics=named)
    base = Series(metrics={m.name: tuple(kinds[v][0]) for m, v in zip(named, verdicts)})
    canary = Series(metrics={m.name: tuple(kinds[v][1]) for m, v in zip(named, verdicts)})
    verdict = judge(window(base, canary), dataclasses.replace(analysis, metrics=named))
    assert [m.verdict for m in verdict.metrics] == list(verdicts) and verdict.verdict == overall


def test_a_named_metric_where_lower_is_worse():
    metric = JudgedMetric(name="orders", namespace="Shop", metric="Orders", statistic="Sum", worse="lower")
    analysis = dataclasses.replace(ON, metrics=(metric,))
    fewer = window(
        Series(metrics={"orders": tuple(times(100))}), Series(metrics={"orders": tuple(times(100, factor=0.7))})
    )
    more = window(
        Series(metrics={"orders": tuple(times(100))}), Series(metrics={"orders": tuple(times(100, factor=1.3))})
    )
    assert judge(fewer, analysis).verdict == FAIL and judge(more, analysis).verdict == PASS
    assert judge(fewer, analysis).metrics[0].reason.startswith("orders +")


def test_outliers_removed_or_kept():
    """A few far-out values: removed, the canary's clean run of 500 passes; kept, the rank test hardly minds them either."""
    base = times(500)
    canary = times(500, seed=2) + [30.0] * 5
    removing = dataclasses.replace(LATENCY, latency=LatencyJudging(outliers="remove"))
    removed = judge(window(series(base), series(canary)), removing).metrics[0]
    kept = judge(window(series(base), series(canary)), LATENCY).metrics[0]
    f = removed.figures
    assert removed.verdict == PASS and f.removed_canary >= 5 and f.n_canary == 505 - f.removed_canary
    assert f.p99_canary < 1.0  # the 30 s answers are gone (a log-normal's own far tail may go with them)
    assert f"outliers removed {f.removed_baseline}/{f.removed_canary}" in removed.reason
    assert (kept.verdict, kept.figures.removed_canary) == (PASS, 0)
    assert kept.figures.p99_canary > removed.figures.p99_canary


@pytest.mark.parametrize(
    ("verdict", "settings", "waited", "action"),
    [
        (FAIL, {}, 0, "rollback"),
        (PASS, {}, 0, "continue"),
        (MARGINAL, {}, 0, "continue"),
        (MARGINAL, {"on_marginal": "rollback"}, 0, "rollback"),
        (MARGINAL, {"on_marginal": "wait", "wait_seconds": 60}, 10, "wait"),
        (MARGINAL, {"on_marginal": "wait", "wait_seconds": 60}, 60, "continue"),
        (INSUFFICIENT, {}, 0, "continue"),
        (INSUFFICIENT, {"on_insufficient": "rollback"}, 0, "rollback"),
        (INSUFFICIENT, {"wait_seconds": 30}, 5, "wait"),
        (INSUFFICIENT, {"wait_seconds": 30, "on_insufficient": "rollback"}, 31, "rollback"),
    ],
)
def test_decide(verdict, settings, waited, action):
    from toolkit.canary.judge import Verdict

    decision = decide(Verdict(verdict, 0.98, ()), dataclasses.replace(ON, **settings), waited)
    assert decision.action == action, decision.why


def test_the_verdict_as_data():
    verdict = judge(window(series(times(300)), series(times(300, factor=1.3, seed=2), errors=0)), ON)
    data = verdict.to_dict()
    assert data["verdict"] == FAIL and data["confidence"] == 0.98
    assert [(m["name"], m["verdict"]) for m in data["metrics"]] == [("latency", FAIL), ("errors", PASS)]
    assert {"n_baseline", "median_canary", "p99_canary", "u", "p_value", "effect", "reason"} <= set(data["metrics"][0])
    assert {"errors_canary", "ratio_canary", "z", "p_value"} <= set(data["metrics"][1])


def test_a_window_round_trips_as_plain_data():
    w = window(series([0.1, 0.2], 1), Series((Request(3.0, 503, None, ""),), {"orders": (1.0, 2.0)}))
    assert Window.from_dict(w.to_dict()) == w
