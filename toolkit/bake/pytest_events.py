"""A pytest plugin for the bake's verify step: one progress event per image test.

``toolkit.bake.image_tests`` loads it (``-p toolkit.bake.pytest_events``) in a bake,
so Rodeo can show "3 of 10 passed" while the tests run. Tests print no dot
or letter: each test's event is its line. Failures are reported as usual.
"""

from __future__ import annotations

import re

import pytest

from toolkit import progress

_state: dict = {"config": None, "total": None, "passed": 0, "failed": 0}


def short_name(nodeid: str) -> str:
    """The test's name without its file or testinfra's host parameter: ``test_x[ssh://10.0.0.5-a]`` is ``test_x[a]``."""
    name = re.sub(r"\b[a-z+]+://[^\]-]*-?", "", nodeid.split("::")[-1])
    return name[:-2] if name.endswith("[]") else name


def outcome(report) -> str | None:
    """passed, failed or skipped, once per test: from its call, or from a setup that failed or skipped it."""
    if report.when == "call":
        return report.outcome
    if report.when == "setup" and not report.passed:
        return report.outcome
    if report.when == "teardown" and report.failed:
        return "failed"
    return None


def pytest_configure(config) -> None:
    _state["config"] = config


def pytest_collection_finish(session) -> None:
    _state["total"] = len(session.items)


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report, config):
    """No letter; the word (``FAILED``) stays for the summary. xfail and xpass are left to pytest."""
    if hasattr(report, "wasxfail"):
        return None
    if report.when == "call":
        return report.outcome, "", report.outcome.upper()
    if report.failed:
        return "error", "", "ERROR"
    if report.skipped:
        return "skipped", "", "SKIPPED"
    return None


def pytest_runtest_logreport(report) -> None:
    ended = outcome(report)
    if ended is None:
        return
    if ended in ("passed", "failed"):
        _state[ended] += 1
    event = progress.ImageTest(
        name=short_name(report.nodeid),
        outcome=ended,
        passed=_state["passed"],
        failed=_state["failed"],
        total=_state["total"],
    )
    terminal = _state["config"].pluginmanager.get_plugin("terminalreporter") if _state["config"] else None
    if terminal is None:
        progress.emit(event)
        return
    terminal.write_line(progress.encode(event))  # in order with pytest's own lines
    terminal.flush()
