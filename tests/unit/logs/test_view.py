"""``invoke logs``: its flags, how a shipped event reads, the merge by time, the follow window; tables, no AWS."""

from __future__ import annotations

import json
import re
import textwrap
from datetime import datetime, timezone

import pytest

from toolkit import config
from toolkit.config import RETENTION_DAYS
from toolkit.errors import ConfigError
from toolkit.logs import tail, view
from toolkit.logs.view import LogLine, Query

NOW = datetime(2026, 11, 27, 14, 0, 0, tzinfo=timezone.utc)
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.mark.parametrize(
    "text, back_ms",
    [
        ("30s", 30_000),
        ("10m", 600_000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
        ("1w", 604_800_000),
        (" 5m ", 300_000),
        ("0s", 0),
    ],
)
def test_since_as_a_duration(text, back_ms):
    assert view.parse_since(text, NOW) == NOW_MS - back_ms


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2026-11-27T13:05:00Z", datetime(2026, 11, 27, 13, 5, tzinfo=timezone.utc)),
        ("2026-11-27T13:05:00", datetime(2026, 11, 27, 13, 5, tzinfo=timezone.utc)),  # no offset: UTC
        ("2026-11-27 13:05", datetime(2026, 11, 27, 13, 5, tzinfo=timezone.utc)),
        ("2026-11-27T14:05:00+01:00", datetime(2026, 11, 27, 13, 5, tzinfo=timezone.utc)),
        ("2026-11-27", datetime(2026, 11, 27, tzinfo=timezone.utc)),
    ],
)
def test_since_as_a_time(text, expected):
    assert view.parse_since(text, NOW) == int(expected.timestamp() * 1000)


@pytest.mark.parametrize(
    "text, message",
    [
        ("yesterday", "--since 'yesterday' is not a duration or a time"),
        ("10", "--since '10' is not a duration or a time"),
        ("10min", "--since '10min' is not a duration or a time"),
        ("-5m", "--since '-5m' is not a duration or a time"),
        ("2026-11-28T00:00:00Z", "--since '2026-11-28T00:00:00Z' is in the future"),
    ],
)
def test_since_refused(text, message):
    with pytest.raises(ConfigError) as err:
        view.parse_since(text, NOW)
    assert err.value.message == message and "10m" in err.value.hint


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"slot": "purple"}, "--slot 'purple' is not a slot"),
        ({"instance": "web-1"}, "--instance 'web-1' is not an instance id"),
        (
            {"grep": "(unclosed"},
            "--grep '(unclosed' is not a regular expression: missing ), unterminated subpattern at position 0",
        ),
    ],
)
def test_flags_refused(kwargs, message):
    with pytest.raises(ConfigError) as err:
        view.query("10m", now=NOW, **kwargs)
    assert err.value.message == message


def shipped(message, unit=None, ident=None, priority=None):
    doc = {k: v for k, v in {"unit": unit, "ident": ident, "priority": priority}.items() if v is not None}
    return json.dumps({**doc, "message": message})


@pytest.mark.parametrize(
    "message, expected",
    [
        (shipped("GET / 200", unit="web.service", ident="python3", priority=6), ("web.service", "GET / 200", 6)),
        (
            shipped("Started web.service", unit="init.scope", ident="systemd"),
            ("systemd", "Started web.service", None),
        ),  # a scope says less
        (shipped("boot", ident="kernel"), ("kernel", "boot", None)),
        (shipped("x"), ("-", "x", None)),
        ("a plain line from another writer", ("-", "a plain line from another writer", None)),
        ('{"not": "ours"}', ("-", '{"not": "ours"}', None)),
        ("{broken json", ("-", "{broken json", None)),
    ],
)
def test_decode_table(message, expected):
    assert view.decode(message) == expected


def ev(ts, stream="i-0aaa", message="m", eid="1"):
    return {"timestamp": ts, "logStreamName": stream, "message": shipped(message, unit="web.service"), "eventId": eid}


def test_streams_merge_by_time_keeping_each_streams_order():
    events = [
        ev(3, "i-0bbb", "b3"),
        ev(1, "i-0aaa", "a1"),
        ev(2, "i-0aaa", "a2-first"),
        ev(2, "i-0aaa", "a2-second"),
        ev(2, "i-0bbb", "b2"),
    ]
    got = [view.decode(e["message"])[1] for e in view.order(events)]
    assert got == ["a1", "a2-first", "a2-second", "b2", "b3"]


def test_a_line_shows_time_instance_slot_version_and_unit():
    line = view.line_of(ev(NOW_MS + 7, "i-0aaa", "GET / 200"), {"i-0aaa": ("green", "1.2.0")})
    assert line.text() == "2026-11-27T14:00:00.007Z i-0aaa green 1.2.0 web.service: GET / 200"
    assert line.to_dict() == {
        "time": "2026-11-27T14:00:00.007Z",
        "timestamp": NOW_MS + 7,
        "instance": "i-0aaa",
        "slot": "green",
        "version": "1.2.0",
        "unit": "web.service",
        "message": "GET / 200",
    }


def test_an_unknown_instance_is_a_question_mark_and_each_line_of_a_message_is_prefixed():
    line = view.line_of(ev(NOW_MS, "i-0ccc", "one\ntwo"), {})
    assert (line.slot, line.version) == ("?", "?")
    assert line.text().splitlines() == [
        "2026-11-27T14:00:00.000Z i-0ccc ? ? web.service: one",
        "2026-11-27T14:00:00.000Z i-0ccc ? ? web.service: two",
    ]


@pytest.mark.parametrize(
    "query, kept",
    [
        (Query(0), ["a", "b", "c"]),
        (Query(0, slot="blue"), ["a", "c"]),
        (Query(0, instance="i-0bbb"), ["b"]),
        (Query(0, grep=re.compile(r"GET /\w+")), ["b", "c"]),
        (Query(0, slot="blue", grep=re.compile("health")), ["c"]),
    ],
)
def test_filters_table(query, kept):
    lines = [
        LogLine(1, "i-0aaa", "blue", "1", "web.service", "GET / 200 a"),
        LogLine(2, "i-0bbb", "green", "1", "web.service", "GET /x b"),
        LogLine(3, "i-0ccc", "blue", "1", "web.service", "GET /health c"),
    ]
    assert [line.message[-1] for line in lines if query.keeps(line)] == kept


@pytest.mark.parametrize(
    "unit, system",
    [
        ("web.service", False),
        ("worker.service", False),
        ("myapp-web.service", False),
        ("node_exporter.service", False),
        ("systemd", True),
        ("kernel", True),
        ("-", True),
        ("sudo", True),
        ("marker", True),  # no service: systemd itself, a session's command
        ("systemd-journald.service", True),
        ("systemd-networkd.service", True),
        ("user@0.service", True),
        ("getty@tty1.service", True),
        ("ssh.service", True),
        ("cron.service", True),
        ("dbus.service", True),
        ("apt-daily-upgrade.service", True),
        ("e2scrub_reap.service", True),
        ("cloud-init.service", True),
        ("rodeo-config.service", True),
        ("rodeo-logs.service", True),
    ],
)
def test_which_lines_are_the_systems(unit, system):
    assert view.is_system(unit) is system


def test_invoke_logs_shows_the_apps_lines_and_with_all_the_systems_too():
    lines = [
        LogLine(1, "i-0aaa", "blue", "1", unit, "m")
        for unit in ("systemd", "rodeo-logs.service", "web.service", "kernel", "worker.service")
    ]
    assert [line.unit for line in lines if view.query("10m").keeps(line)] == ["web.service", "worker.service"]
    assert [line.unit for line in lines if view.query("10m", everything=True).keeps(line)] == [
        line.unit for line in lines
    ]


def test_follow_shows_a_late_event_once_and_forgets_ids_behind_the_window():
    window = tail.Window(since_ms=NOW_MS - 60_000)
    assert window.start == NOW_MS - 60_000
    first = [ev(NOW_MS - 1000, eid="1"), ev(NOW_MS - 500, eid="2")]
    assert window.fresh(first) == first
    assert window.advance(NOW_MS, got_new=True) == tail.POLL_MIN
    assert window.start == NOW_MS - tail.LOOKBACK_MS
    late = ev(NOW_MS - 2000, "i-0bbb", eid="3")  # reached CloudWatch after the first poll, timestamped before it
    assert window.fresh(first + [late]) == [late]
    window.advance(NOW_MS + tail.LOOKBACK_MS + 1000, got_new=True)
    assert window.shown == {}  # everything seen is now older than the window: no poll returns it


def test_follow_polls_slower_while_nothing_comes_and_fast_again_when_lines_do():
    window = tail.Window(since_ms=0)
    waits = [window.advance(NOW_MS, got_new=False) for _ in range(5)]
    assert waits == sorted(waits) and waits[-1] == tail.POLL_MAX and tail.POLL_MIN < waits[0]
    assert window.advance(NOW_MS, got_new=True) == tail.POLL_MIN


def test_follow_never_reads_before_since():
    window = tail.Window(since_ms=NOW_MS - 5000)
    window.advance(NOW_MS, got_new=False)
    assert window.start == NOW_MS - 5000


# --- logs.retention_days in rodeo.yml ----------------------------------------------------------

YML = """
app: web
region: us-east-1
images:
  base: {source_ami: ami-0123456789abcdef0, playbook: pb.yml, tests: t.py}
"""


def load(tmp_path, extra=""):
    (tmp_path / "inventories/dev").mkdir(parents=True)
    (tmp_path / "inventories/dev/rodeo.yml").write_text(textwrap.dedent(YML) + extra)
    (tmp_path / "pb.yml").write_text("- hosts: all\n")
    (tmp_path / "t.py").write_text("def test_x(): pass\n")
    return config.load("dev", tmp_path)


def test_retention_defaults_to_30_days(tmp_path):
    assert load(tmp_path).logs.retention_days == 30


def test_retention_accepts_each_value_cloudwatch_takes(tmp_path):
    assert load(tmp_path, "logs: {retention_days: 3653}\n").logs.retention_days == 3653
    assert 30 in RETENTION_DAYS and len(RETENTION_DAYS) == 22


@pytest.mark.parametrize("days, nearest", [(10, "7 or 14"), (0, "1"), (-5, "1"), (100, "90 or 120"), (5000, "3653")])
def test_retention_refuses_other_values_naming_the_nearest(tmp_path, days, nearest):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, f"logs: {{retention_days: {days}}}\n")
    assert (
        err.value.message
        == f"inventories/dev/rodeo.yml: logs.retention_days: {days} is not a retention CloudWatch Logs accepts"
    )
    assert err.value.hint.endswith(f"(nearest: {nearest})")


def test_an_unknown_logs_key_is_refused(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "logs: {retention: 30}\n")
    assert err.value.message.endswith("logs.retention: unknown key") and "retention_days" in err.value.hint
