"""The verify step's report and the provision step's task lines."""

from __future__ import annotations

import io

from toolkit.bake.provision import TaskPrinter
from toolkit.bake.image_tests import read_junit

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3">
<testcase classname="tests.image.test_app" name="test_user[ssh://h]"/>
<testcase classname="tests.image.test_app" name="test_health[ssh://h]"><failure message="assert 503 == 200">trace</failure></testcase>
<testcase classname="tests.image.test_app" name="test_skip[ssh://h]"><skipped message="x"/></testcase>
</testsuite></testsuites>"""


def test_junit_counts_and_failures(tmp_path):
    path = tmp_path / "r.xml"
    path.write_text(JUNIT)
    assert read_junit(path) == {"tests": 3, "failures": 1, "errors": 0, "skipped": 1, "failed": ["test_health[ssh://h]: assert 503 == 200"]}


def test_task_printer_keeps_the_failing_task():
    out = io.StringIO()
    printer = TaskPrinter(out)
    printer({"event": "playbook_on_task_start", "event_data": {"task": "Install app"}})
    printer({"event": "runner_on_ok", "event_data": {"res": {"changed": True}}})
    printer({"event": "runner_on_failed", "event_data": {"task": "Start app", "host": "build-host", "res": {"msg": "boom\n  twice"}}})
    printer({"event": "runner_on_failed", "event_data": {"task": "Ignored", "host": "h", "ignore_errors": True, "res": {"msg": "x"}}})
    assert (printer.failure.task, printer.failure.host, printer.failure.message) == ("Start app", "build-host", "boom twice")
    assert out.getvalue().splitlines() == ['@rodeo {"event":"task","n":1,"name":"Install app","total":null,"approx":false}',
                                           "FAILED: 'Start app' on build-host", "  boom twice"]


import pytest  # noqa: E402

from toolkit.bake.provision import failure_message  # noqa: E402


@pytest.mark.parametrize(
    "res,expected",
    [
        ({"msg": "non-zero return code", "rc": 128, "stderr": "warning: x\nfatal: Needed a single revision"},
         "non-zero return code (rc 128): warning: x | fatal: Needed a single revision"),
        ({"msg": "non-zero return code", "rc": 1, "stderr": ""}, "non-zero return code (rc 1)"),
        ({"msg": "the file does not exist"}, "the file does not exist"),
        ({"stderr": "boom"}, "boom"),
        ({}, "failed"),
    ],
)
def test_a_failed_command_says_its_rc_and_the_end_of_its_stderr(res, expected):
    assert failure_message(res) == expected
