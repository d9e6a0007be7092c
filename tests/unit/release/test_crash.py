"""The crash rule of the release's health wait, as a table of journals (issue 21, item 3).

Each journal is what one instance's shipper sent (``toolkit.release.crash``):
systemd's own lines have PID 1, the app's lines its unit and its own PID.
The lines are systemd 252's (Debian 12), as the live stack's instances
logged them for the sample app with a syntax error.
"""

from __future__ import annotations

import json

import pytest

from toolkit.release import crash
from toolkit.release.crash import Entry


def manager(message: str) -> Entry:
    return Entry("init.scope", 1, message)


def app(message: str, unit: str = "web.service", pid: int = 36) -> Entry:
    return Entry(unit, pid, message)


TRACEBACK = [
    '  File "/opt/web/app.py", line 27',
    "    def app(environ, start_response)",
    "                                    ^",
    "SyntaxError: expected ':'",
]


def run(n: int, output: list[str] = TRACEBACK, result: str = "exit-code") -> list[Entry]:
    """One start of web.service that fails (the n-th), as systemd 252 logs it."""
    restart = [manager(f"web.service: Scheduled restart job, restart counter is at {n - 1}.")] if n > 1 else []
    return [
        *restart,
        manager("Started web.service - Rodeo sample web app 1.0.0."),
        *(app(line, pid=30 + n) for line in output),
        manager("web.service: Main process exited, code=exited, status=1/FAILURE"),
        manager(f"web.service: Failed with result '{result}'."),
    ]


BOOT = [
    manager("Started rodeo-logs.service - Rodeo log shipper (journal to CloudWatch Logs)."),
    manager("Finished rodeo-config.service - Rodeo config vars from SSM Parameter Store."),
    manager("systemd-update-utmp-runlevel.service: Deactivated successfully."),
    manager("Reached target multi-user.target - Multi-User System."),
]
HEALTHY = [
    *BOOT,
    manager("Started web.service - Rodeo sample web app 1.0.0."),
    app('127.0.0.1 "GET /health HTTP/1.1" 200 40'),
]

CASES = [
    # (what, one instance's journal, (unit, failures, result, lines) or None: not crashed)
    ("a healthy boot", HEALTHY, None),
    ("nothing shipped yet", [], None),
    ("one failure: it may still come up", [*BOOT, *run(1)], None),
    ("two failures", [*BOOT, *run(1), *run(2)], None),
    ("the third failure: a crash loop", [*BOOT, *run(1), *run(2), *run(3)], ("web.service", 3, "exit-code", TRACEBACK)),
    (
        "systemd gave up at once (start-limit-hit)",
        [
            *BOOT,
            *run(1),
            manager("web.service: Start request repeated too quickly."),
            manager("web.service: Failed with result 'start-limit-hit'."),
        ],
        ("web.service", 2, "start-limit-hit", TRACEBACK),
    ),
    (
        "failures of two units are counted apart",
        [*run(1), manager("rodeo-config.service: Failed with result 'exit-code'."), *run(2)],
        None,
    ),
    (
        "the app printing systemd's words is not systemd",
        [*HEALTHY, *(app("web.service: Failed with result 'exit-code'.") for _ in range(3))],
        None,
    ),
    (
        "a traceback the app logs and survives",
        [*HEALTHY, app("Traceback (most recent call last):"), app("ValueError: bad request")],
        None,
    ),
    (
        "a unit stopped or exiting 0 is no failure",
        [*HEALTHY, *[manager("web.service: Deactivated successfully.")] * 3],
        None,
    ),
    (
        "a start job failed for a dependency is not counted (the config loader restarts it)",
        [*BOOT, *[manager("web.service: Job web.service/start failed with result 'dependency'.")] * 3],
        None,
    ),
    (
        "silent crashes: systemd's own lines about the last run",
        [*run(1, []), *run(2, []), *run(3, [], result="signal")],
        ("web.service", 3, "signal", ["web.service: Main process exited, code=exited, status=1/FAILURE"]),
    ),
    (
        "a start step failing (ExecStartPre)",
        [
            *BOOT,
            *[
                manager("web.service: Control process exited, code=exited, status=1/FAILURE"),
                manager("web.service: Failed with result 'exit-code'."),
            ]
            * 3,
        ],
        ("web.service", 3, "exit-code", ["web.service: Control process exited, code=exited, status=1/FAILURE"]),
    ),
    (
        "the last run that wrote anything",
        [*run(1, ["first"]), *run(2, ["second", "error: no DATABASE_URL"]), *run(3, [])],
        ("web.service", 3, "exit-code", ["second", "error: no DATABASE_URL"]),
    ),
    (
        "another unit of the app",
        [
            *(
                e
                for n in (1, 2, 3)
                for e in (
                    app(f"worker died {n}", "worker.service"),
                    manager("worker.service: Failed with result 'exit-code'."),
                )
            )
        ],
        ("worker.service", 3, "exit-code", ["worker died 3"]),
    ),
    (
        "a long traceback: its last lines",
        run(1, [f"line {i}" for i in range(30)]) * 3,
        ("web.service", 3, "exit-code", [f"line {i}" for i in range(30 - crash.LINES, 30)]),
    ),
]


@pytest.mark.parametrize(("journal", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_rule(journal, expected):
    found = crash.crashed("i-1", journal)
    got = None if found is None else (found.unit, found.failures, found.result, list(found.lines))
    assert got == expected


def event(stream: str, ts: int, entry: Entry) -> dict:
    """A FilterLogEvents event as the shipper's message reads."""
    doc = {
        "unit": entry.unit,
        "ident": "systemd" if entry.pid == 1 else "python3",
        "pid": entry.pid,
        "priority": 6,
        "message": entry.message,
    }
    return {"logStreamName": stream, "timestamp": ts, "message": json.dumps(doc), "eventId": f"{stream}-{ts}"}


def test_events_of_several_instances_are_judged_apart_in_time_order():
    crashing = [*run(1), *run(2), *run(3)]
    events = [event("i-b", 1000 + n, e) for n, e in enumerate(crashing)] + [
        event("i-a", 1000 + n, e) for n, e in enumerate(HEALTHY)
    ]
    events.reverse()  # FilterLogEvents' order is not the rule's business
    found = crash.find(events)
    assert [(c.instance, c.unit, c.failures) for c in found] == [("i-b", "web.service", 3)]


def test_a_message_not_from_the_shipper_is_left_out():
    assert crash.entry_of("plain text from elsewhere") is None
    assert crash.entry_of('{"no": "message"}') is None
    assert crash.entry_of('{"unit": "web.service", "pid": "7", "message": "x"}') == Entry("web.service", 7, "x")


def test_the_reason_names_the_unit_the_instances_and_shows_the_apps_lines():
    found = [crash.crashed(i, [*run(1), *run(2), *run(3)]) for i in ("i-1", "i-2")]
    assert crash.reason("green", found, 2) == (
        "green: web.service failed 3 times (exit-code) on 2 of 2 instance(s) (i-1, i-2); its last lines on i-1:"
        + "".join(f"\n    {line}" for line in TRACEBACK)  # each as the app wrote it, indented
        + "\n  ('invoke logs --slot green' shows the whole journal)"
    )


class FakeLogs:
    """FilterLogEvents as AWS answers it: a list naming a stream that does not exist is refused whole."""

    def __init__(self, streams: dict[str, list[dict]]) -> None:
        self.streams, self.calls = streams, []

    def get_paginator(self, name):
        assert name == "filter_log_events"
        return self

    def paginate(self, logGroupName, logStreamNames):
        import botocore.exceptions

        self.calls.append(list(logStreamNames))
        if any(s not in self.streams for s in logStreamNames):
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "The specified log stream does not exist."}},
                "FilterLogEvents",
            )
        return [{"events": [e for s in logStreamNames for e in self.streams[s]]}]


class FakeAws:
    def __init__(self, logs: FakeLogs) -> None:
        self.logs = logs

    def client(self, name):
        assert name == "logs"
        return self.logs


class Cfg:
    app, env = "web", "prod"


def test_streams_not_made_yet_are_read_one_by_one():
    shipped = [event("i-a", 1000 + n, e) for n, e in enumerate([*run(1), *run(2), *run(3)])]
    logs = FakeLogs({"i-a": shipped})
    found = crash.check(Cfg(), FakeAws(logs), ["i-b", "i-a"])
    assert [c.instance for c in found] == ["i-a"]
    assert logs.calls == [["i-a", "i-b"], ["i-a"], ["i-b"]]
