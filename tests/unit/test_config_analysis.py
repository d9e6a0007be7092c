"""``release.analysis`` in rodeo.yml: typed values and defaults; every mistake is one ConfigError with a hint (tables)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_config import GOOD, ROOT, project
from toolkit import config
from toolkit.errors import ConfigError

ANALYSIS = """\
  analysis:
    enabled: true
    metrics:
      - latency
      - errors
      - {name: queue-depth, namespace: Web, metric: QueueDepth, statistic: p99, dimension: AutoScalingGroupName, period: 10}
    confidence: 0.99
    min_samples: 100
    latency: {tolerance: 0.3, floor_ms: 5, outliers: remove}
    errors: {tolerance: 0.002}
    on_marginal: wait
    on_insufficient: rollback
    wait_seconds: 120
"""


def test_a_full_analysis_section_gives_typed_values(tmp_path):
    analysis = config.load("dev", project(tmp_path, GOOD + ANALYSIS)).release.analysis
    assert analysis.enabled and analysis.metrics[:2] == ("latency", "errors")
    assert analysis.metrics[2] == config.JudgedMetric(
        name="queue-depth",
        namespace="Web",
        metric="QueueDepth",
        statistic="p99",
        dimension="AutoScalingGroupName",
        period=10,
    )
    assert (analysis.confidence, analysis.min_samples, analysis.wait_seconds) == (0.99, 100, 120)
    assert analysis.latency == config.LatencyJudging(tolerance=0.3, floor_ms=5.0, outliers="remove")
    assert analysis.errors.tolerance == 0.002 and isinstance(analysis.latency.floor_ms, float)
    assert (analysis.on_marginal, analysis.on_insufficient) == ("wait", "rollback")


def test_analysis_is_off_by_default_with_kayentas_figures():
    analysis = config.Analysis()
    assert not analysis.enabled and analysis.metrics == ("latency", "errors")
    assert (analysis.confidence, analysis.min_samples) == (0.98, 50)
    assert (analysis.on_marginal, analysis.on_insufficient, analysis.wait_seconds) == ("continue", "continue", 0)


def test_every_local_release_is_judged_without_waiting_for_data():
    """The local inventory turns it on; with too few requests a step goes on at once (the suite's pauses stay as they are)."""
    analysis = config.load("local", ROOT).release.analysis
    assert analysis.enabled and analysis.on_insufficient == "continue" and analysis.wait_seconds == 0


BAD = [
    # (replace in ANALYSIS, words of the message, words of the hint)
    (
        ("confidence: 0.99", "confidence: 98"),
        "release.analysis.confidence: 98 must be at least 0.5 and below 1",
        "0.98",
    ),
    (("confidence: 0.99", "confidence: high"), "release.analysis.confidence: expected a number, got 'high'", ""),
    (("min_samples: 100", "min_samples: 2"), "release.analysis.min_samples: 2 is too few", "50"),
    (("min_samples: 100", "min_samples: 50.5"), "release.analysis.min_samples: expected a whole number", ""),
    (("on_marginal: wait", "on_marginal: ignore"), "on_marginal: 'ignore' is not one of continue, rollback, wait", ""),
    (("on_insufficient: rollback", "on_insufficient: wait"), "on_insufficient: 'wait' is not one of", "wait_seconds"),
    (
        ("outliers: remove", "outliers: trim"),
        "release.analysis.latency.outliers: 'trim' is not one of keep, remove",
        "",
    ),
    (("floor_ms: 5", "floor_ms: -5"), "release.analysis.latency.floor_ms: must not be negative", ""),
    (("wait_seconds: 120", "wait_seconds: -1"), "release.analysis.wait_seconds: must not be negative", ""),
    (
        ("      - latency\n", "      - latncy\n"),
        "release.analysis.metrics[0]: unknown metric 'latncy'",
        "latency or errors",
    ),
    (("      - errors\n", "      - latency\n"), "release.analysis.metrics[1]: 'latency' is named twice", ""),
    (("statistic: p99", "statistic: p999x"), "metrics[2].statistic: 'p999x' is not a CloudWatch statistic", "p99"),
    (("period: 10", "period: 45"), "metrics[2].period: 45 is not a CloudWatch period", "multiple of 60"),
    (("dimension: AutoScalingGroupName", "dimension: Slot"), "metrics[2].dimension: 'Slot' is not one of", ""),
    (("name: queue-depth", "name: errors"), "metrics[2].name: 'errors' is not a name of its own", ""),
    (("metric: QueueDepth, ", ""), "release.analysis.metrics[2].metric: required key is missing", "add 'metric:'"),
    (("    enabled: true\n", "    enabled: true\n    tolerance: 0.2\n"), "release.analysis.tolerance: unknown key", ""),
]


@pytest.mark.parametrize(("change", "message", "hint"), BAD, ids=[b[1][:50] for b in BAD])
def test_a_bad_analysis_section_is_one_error_with_a_hint(tmp_path: Path, change, message, hint):
    text = ANALYSIS.replace(*change)
    assert text != ANALYSIS, change
    with pytest.raises(ConfigError) as err:
        config.load("dev", project(tmp_path, GOOD + text))
    assert message in err.value.message and err.value.message.startswith("inventories/dev/rodeo.yml: "), err.value
    assert hint in err.value.hint and err.value.hint, err.value


def test_an_enabled_analysis_must_judge_something(tmp_path):
    with pytest.raises(ConfigError, match="release.analysis.metrics: is empty"):
        config.load("dev", project(tmp_path, GOOD + "  analysis: {enabled: true, metrics: []}\n"))
    off = config.load("dev", project(tmp_path / "b", GOOD + "  analysis: {enabled: false, metrics: []}\n"))
    assert off.release.analysis.metrics == ()
