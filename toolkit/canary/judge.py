"""The canary judge: a window of both slots' data in, a verdict per metric and overall out (pure).

As Netflix's Kayenta judges a canary, each metric is a one-sided test of
"the canary is worse than the baseline" at ``analysis.confidence`` (0.98: a
p-value under 0.02 counts), and an effect size decides whether a real
difference matters:

- ``latency``: the response times (the access log's target_processing_time)
  of each slot, compared with the Mann-Whitney U test (``scipy.stats.mannwhitneyu``,
  alternative "canary greater"; a rank test: no assumption of a shape, robust
  to a few wild values). The effect is the canary median's shift over the
  baseline's, relative (``latency.tolerance``, 0.2: +20%) and in
  milliseconds (``latency.floor_ms``): both must be exceeded.
  ``latency.outliers: remove`` first drops each slot's far-out values
  (beyond 3 interquartile ranges of its quartiles, Tukey's fences);
- ``errors``: each slot's share of 5xx, compared with Fisher's exact test
  (one-sided, exact at any count, a zero included); the pooled two-proportion
  z is reported beside it. The effect is the difference of the ratios
  (``errors.tolerance``, 0.001: 0.1 point);
- a named CloudWatch metric: its datapoints per slot, as latency (relative
  effect, ``worse`` says which way is bad).

A metric's verdict: ``fail`` when the difference is significant and beyond
its tolerance; ``marginal`` when significant but within it (real, small);
``pass`` otherwise; ``insufficient`` when either slot has fewer than
``min_samples`` values. Overall: any fail fails; else not enough data for
one metric is ``insufficient``; else any marginal is ``marginal``; else
``pass``. ``decide`` turns a verdict into what the release does.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from toolkit.canary.samples import Window
from toolkit.config import Analysis, JudgedMetric

PASS, MARGINAL, FAIL, INSUFFICIENT = "pass", "marginal", "fail", "insufficient"
CONTINUE, ROLLBACK, WAIT = "continue", "rollback", "wait"
OUTLIER_IQR = 3.0  # Tukey's "far out" fences


@dataclass(frozen=True)
class RankFigures:
    """A distribution's comparison (latency in seconds, or a metric's datapoints in its unit)."""

    n_baseline: int
    n_canary: int
    median_baseline: float | None = None
    median_canary: float | None = None
    p99_baseline: float | None = None
    p99_canary: float | None = None
    removed_baseline: int = 0  # outliers dropped before the test
    removed_canary: int = 0
    u: float | None = None  # Mann-Whitney U of the canary
    p_value: float | None = None  # one-sided: the canary worse
    effect: float | None = None  # the canary median's shift relative to the baseline's (0.3: 30% worse)
    shift: float | None = None  # the same shift in the values' unit (worse is positive)


@dataclass(frozen=True)
class ErrorFigures:
    """A comparison of two slots' 5xx ratios."""

    n_baseline: int
    n_canary: int
    errors_baseline: int = 0
    errors_canary: int = 0
    ratio_baseline: float | None = None
    ratio_canary: float | None = None
    difference: float | None = None  # canary ratio - baseline ratio
    z: float | None = None  # pooled two-proportion z (for reference)
    p_value: float | None = None  # Fisher's exact test, one-sided: the canary errs more


@dataclass(frozen=True)
class MetricVerdict:
    """One metric's verdict, with the figures behind it and a line that says them."""

    name: str
    verdict: str  # pass, marginal, fail or insufficient
    reason: str
    figures: RankFigures | ErrorFigures

    def to_dict(self) -> dict:
        return {"name": self.name, "verdict": self.verdict, "reason": self.reason, **_plain(self.figures)}


@dataclass(frozen=True)
class Verdict:
    """The verdict over every judged metric."""

    verdict: str
    confidence: float
    metrics: tuple[MetricVerdict, ...]

    def summary(self) -> str:
        """ "fail: latency +31% (...)": the verdict and the lines of the metrics that decided it."""
        deciding = [m for m in self.metrics if m.verdict == self.verdict] or list(self.metrics)
        return f"{self.verdict}: " + "; ".join(m.reason for m in deciding)

    def to_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "confidence": self.confidence,
            "metrics": [m.to_dict() for m in self.metrics],
        }


@dataclass(frozen=True)
class Decision:
    """What the release does with a verdict: continue, roll back, or wait for more data."""

    action: str
    why: str


def judge(window: Window, analysis: Analysis) -> Verdict:
    """Judge the canary slot against the baseline over ``window``, metric by metric."""
    found = []
    for metric in analysis.metrics:
        if metric == "latency":
            found.append(_latency(window, analysis))
        elif metric == "errors":
            found.append(_errors(window, analysis))
        else:
            found.append(_named(window, analysis, metric))
    return Verdict(_overall([m.verdict for m in found]), analysis.confidence, tuple(found))


def decide(verdict: Verdict, analysis: Analysis, waited: float) -> Decision:
    """Continue, roll back or wait, by the user's rules: ``on_marginal``, ``on_insufficient`` after ``wait_seconds``."""
    if verdict.verdict == FAIL:
        return Decision(ROLLBACK, "the canary is worse beyond tolerance")
    if verdict.verdict == PASS:
        return Decision(CONTINUE, "no significant difference beyond tolerance")
    waiting = waited < analysis.wait_seconds
    if verdict.verdict == MARGINAL:
        rule = analysis.on_marginal
        if rule == WAIT:
            if waiting:
                return Decision(WAIT, f"marginal: waiting up to {analysis.wait_seconds}s for a clearer verdict")
            return Decision(CONTINUE, f"still marginal after {analysis.wait_seconds}s: on_marginal wait, then continue")
        return Decision(rule, f"marginal: on_marginal is {rule}")
    if waiting:
        return Decision(WAIT, f"not enough data: waiting up to {analysis.wait_seconds}s for more")
    after = f" after waiting {analysis.wait_seconds}s" if analysis.wait_seconds else ""
    return Decision(analysis.on_insufficient, f"not enough data{after}: on_insufficient is {analysis.on_insufficient}")


# --- the metrics ------------------------------------------------------------------------------------


def _latency(window: Window, analysis: Analysis) -> MetricVerdict:
    settings = analysis.latency
    baseline, canary = window.baseline.latencies(), window.canary.latencies()
    figures, verdict = _ranked(
        baseline,
        canary,
        analysis,
        tolerance=settings.tolerance,
        floor=settings.floor_ms / 1000.0,
        remove=settings.outliers == "remove",
        higher_is_worse=True,
    )
    return MetricVerdict("latency", verdict, _latency_reason(verdict, figures, analysis), figures)


def _named(window: Window, analysis: Analysis, metric: JudgedMetric) -> MetricVerdict:
    baseline = list(window.baseline.metrics.get(metric.name, ()))
    canary = list(window.canary.metrics.get(metric.name, ()))
    figures, verdict = _ranked(
        baseline,
        canary,
        analysis,
        tolerance=metric.tolerance,
        floor=0.0,
        remove=False,
        higher_is_worse=metric.worse == "higher",
    )
    return MetricVerdict(metric.name, verdict, _named_reason(metric, verdict, figures, analysis), figures)


def _ranked(
    baseline: list[float],
    canary: list[float],
    analysis: Analysis,
    tolerance: float,
    floor: float,
    remove: bool,
    higher_is_worse: bool,
) -> tuple[RankFigures, str]:
    kept_b, kept_c = (_without_outliers(baseline), _without_outliers(canary)) if remove else (baseline, canary)
    figures = RankFigures(
        len(kept_b), len(kept_c), removed_baseline=len(baseline) - len(kept_b), removed_canary=len(canary) - len(kept_c)
    )
    if min(len(kept_b), len(kept_c)) < analysis.min_samples:
        return figures, INSUFFICIENT
    import numpy
    from scipy.stats import mannwhitneyu

    med_b, med_c = float(numpy.median(kept_b)), float(numpy.median(kept_c))
    test = mannwhitneyu(kept_c, kept_b, alternative="greater" if higher_is_worse else "less")
    shift = (med_c - med_b) if higher_is_worse else (med_b - med_c)
    effect = shift / abs(med_b) if med_b else (math.inf if shift > 0 else 0.0)
    figures = dataclasses.replace(
        figures,
        median_baseline=med_b,
        median_canary=med_c,
        p99_baseline=float(numpy.percentile(kept_b, 99)),
        p99_canary=float(numpy.percentile(kept_c, 99)),
        u=float(test.statistic),
        p_value=float(test.pvalue),
        effect=effect,
        shift=shift,
    )
    significant = test.pvalue < 1 - analysis.confidence
    beyond = effect > tolerance and shift > floor
    return figures, (FAIL if beyond else MARGINAL) if significant else PASS


def _errors(window: Window, analysis: Analysis) -> MetricVerdict:
    base, canary = window.baseline.statuses(), window.canary.statuses()
    e_b, e_c = sum(s >= 500 for s in base), sum(s >= 500 for s in canary)
    n_b, n_c = len(base), len(canary)
    figures = ErrorFigures(n_b, n_c, e_b, e_c)
    if min(n_b, n_c) < analysis.min_samples:
        return MetricVerdict("errors", INSUFFICIENT, _errors_reason(INSUFFICIENT, figures, analysis), figures)
    from scipy.stats import fisher_exact

    r_b, r_c = e_b / n_b, e_c / n_c
    pooled = (e_b + e_c) / (n_b + n_c)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_b + 1 / n_c))
    z = (r_c - r_b) / se if se else 0.0
    _, p = fisher_exact([[e_c, n_c - e_c], [e_b, n_b - e_b]], alternative="greater")
    figures = dataclasses.replace(
        figures, ratio_baseline=r_b, ratio_canary=r_c, difference=r_c - r_b, z=float(z), p_value=float(p)
    )
    significant = p < 1 - analysis.confidence
    verdict = (FAIL if r_c - r_b > analysis.errors.tolerance else MARGINAL) if significant else PASS
    return MetricVerdict("errors", verdict, _errors_reason(verdict, figures, analysis), figures)


def _without_outliers(values: list[float]) -> list[float]:
    """``values`` within Tukey's far-out fences (3 IQR beyond the quartiles); all of them when the IQR is 0."""
    if len(values) < 4:
        return list(values)
    import numpy

    q1, q3 = (float(q) for q in numpy.percentile(values, [25, 75]))
    spread = q3 - q1
    if spread <= 0:
        return list(values)
    low, high = q1 - OUTLIER_IQR * spread, q3 + OUTLIER_IQR * spread
    return [v for v in values if low <= v <= high]


def _overall(verdicts: list[str]) -> str:
    for verdict in (FAIL, INSUFFICIENT, MARGINAL):
        if verdict in verdicts:
            return verdict
    return PASS


# --- the words ---------------------------------------------------------------------------------------


def _latency_reason(verdict: str, f: RankFigures, analysis: Analysis) -> str:
    if verdict == INSUFFICIENT:
        return _too_few("latency", f.n_baseline, f.n_canary, analysis.min_samples, "answered requests")
    settings = analysis.latency
    removed = (
        f", outliers removed {f.removed_baseline}/{f.removed_canary}" if f.removed_baseline or f.removed_canary else ""
    )
    figures = (
        f"median {_ms(f.median_canary)} vs {_ms(f.median_baseline)}, p99 {_ms(f.p99_canary)} vs {_ms(f.p99_baseline)}, "
        f"n {f.n_canary}/{f.n_baseline}{removed}; Mann-Whitney U={f.u:.0f}, {_p(f.p_value, analysis)}"
    )
    floor = f" and {settings.floor_ms:g} ms" if settings.floor_ms else ""
    return f"latency {_percent(f.effect)} ({figures}){_judged(verdict, f'{settings.tolerance:.0%}{floor}')}"


def _named_reason(metric: JudgedMetric, verdict: str, f: RankFigures, analysis: Analysis) -> str:
    if verdict == INSUFFICIENT:
        return _too_few(metric.name, f.n_baseline, f.n_canary, analysis.min_samples, "datapoints")
    figures = (
        f"median {f.median_canary:.4g} vs {f.median_baseline:.4g} ({metric.statistic} of {metric.namespace} "
        f"{metric.metric}, {metric.worse} is worse), n {f.n_canary}/{f.n_baseline}; Mann-Whitney U={f.u:.0f}, "
        f"{_p(f.p_value, analysis)}"
    )
    return f"{metric.name} {_percent(f.effect)} worse ({figures}){_judged(verdict, f'{metric.tolerance:.0%}')}"


def _errors_reason(verdict: str, f: ErrorFigures, analysis: Analysis) -> str:
    if verdict == INSUFFICIENT:
        return _too_few("errors", f.n_baseline, f.n_canary, analysis.min_samples, "requests")
    figures = (
        f"{f.errors_canary} of {f.n_canary} vs {f.errors_baseline} of {f.n_baseline}; "
        f"Fisher's exact {_p(f.p_value, analysis)}, z={f.z:.2f}"
    )
    tolerance = f"{analysis.errors.tolerance * 100:g}-point"
    return f"errors {f.ratio_canary:.2%} vs {f.ratio_baseline:.2%} ({figures}){_judged(verdict, tolerance)}"


def _too_few(name: str, n_baseline: int, n_canary: int, needed: int, what: str) -> str:
    return f"{name}: not enough data ({n_canary} and {n_baseline} {what}, canary and baseline; {needed} needed each)"


def _judged(verdict: str, tolerance: str) -> str:
    return {
        FAIL: f": beyond the {tolerance} tolerance",
        MARGINAL: f": significant, within the {tolerance} tolerance",
        PASS: "",
    }[verdict]


def _p(p: float | None, analysis: Analysis) -> str:
    alpha = 1 - analysis.confidence
    return f"p={p:.2g} {'<' if p is not None and p < alpha else '>='} {alpha:.2g}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.1f} ms"


def _percent(effect: float | None) -> str:
    if effect is None:
        return "-"
    return "+inf%" if math.isinf(effect) else f"{effect:+.0%}"


def _plain(figures: Any) -> dict:
    """The figures as JSON-safe data (an infinite effect becomes None)."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v)
        for k, v in dataclasses.asdict(figures).items()
    }
