"""The instances' log shipper, its pure parts: journal entry -> log event, batches within PutLogEvents' limits, the cursor file.

The script runs on the image's Python with Debian's boto3 and python3-systemd;
it is loaded here by path, which imports neither.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from toolkit.config import Config
from toolkit.logs import group

SCRIPT = Path(__file__).resolve().parents[3] / "playbooks/roles/base/files/rodeo-logs.py"


def _load():
    spec = importlib.util.spec_from_file_location("rodeo_logs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shipper = _load()
T0 = 1_790_000_000_000  # epoch ms


def entry(message="hello", us=T0 * 1000, cursor="c1", **fields):
    return {"MESSAGE": message, "__REALTIME_TIMESTAMP": us, "__CURSOR": cursor, **fields}


def event(ms=T0, size=10):
    return {"timestamp": ms, "message": "x" * size}


# --- user data -> group ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, expected",
    [
        (b'{"rodeo": {"app": "web", "env": "local"}}', ("web", "local")),
        (
            b'{"rodeo": {"app": "web", "env": "production", "config_version": 3, "more": {"x": 1}}}',
            ("web", "production"),
        ),  # unknown keys ignored
        (None, None),
        (b"", None),
        (b"#!/bin/sh\necho hi\n", None),
        (b'{"other": 1}', None),
        (b'{"rodeo": {"app": "web"}}', None),
        (b'{"rodeo": {"app": "../etc", "env": "local"}}', None),  # names a group only when it is a Rodeo name
        (b'["rodeo"]', None),
    ],
)
def test_user_data_names_app_and_env_or_nothing(data, expected):
    assert shipper.target(data) == expected


def test_the_shipper_and_the_toolkit_name_the_same_group():
    config = Config(app="web", region="us-east-1", images={}, env="staging")
    assert shipper.group_name("web", "staging") == group.name(config) == "/rodeo/web/staging"


# --- journal entry -> log event -------------------------------------------------------------


def test_an_entry_becomes_a_json_message_at_its_journal_time():
    got = shipper.to_event(
        entry(
            '127.0.0.1 "GET / HTTP/1.1" 200 12',
            _SYSTEMD_UNIT="web.service",
            SYSLOG_IDENTIFIER="python3",
            _PID=42,
            PRIORITY=6,
        )
    )
    assert got["timestamp"] == T0
    assert json.loads(got["message"]) == {
        "unit": "web.service",
        "ident": "python3",
        "pid": 42,
        "priority": 6,
        "message": '127.0.0.1 "GET / HTTP/1.1" 200 12',
    }


@pytest.mark.parametrize(
    "fields, message, expected",
    [
        ({}, "plain", {"message": "plain"}),  # absent fields are left out
        ({"_COMM": "sshd"}, "x", {"ident": "sshd", "message": "x"}),  # no SYSLOG_IDENTIFIER: the command's name
        (
            {},
            b"caf\xc3\xa9 \xff",
            {"message": "café \ufffd"},
        ),  # python-systemd leaves bytes that are not UTF-8 as bytes
        ({}, ["one", "two"], {"message": "one\ntwo"}),  # a field given twice
    ],
)
def test_entry_fields_table(fields, message, expected):
    assert json.loads(shipper.to_event(entry(message, **fields))["message"]) == expected


def test_an_entry_without_a_message_is_skipped():
    assert shipper.to_event({"__REALTIME_TIMESTAMP": T0 * 1000, "__CURSOR": "c"}) is None


def test_python_systemd_datetimes_are_read_too():
    when = datetime.fromtimestamp(T0 / 1000, timezone.utc)
    assert shipper.to_event(entry(us=when))["timestamp"] == T0


@pytest.mark.parametrize("text", ["y" * 400_000, "\u00e9" * 200_000, "\x01" * 100_000])
def test_a_message_over_the_event_limit_is_cut_and_says_so(text):
    got = shipper.to_event(entry(text, _SYSTEMD_UNIT="web.service"))
    assert len(got["message"].encode()) <= shipper.MAX_MESSAGE_BYTES
    doc = json.loads(got["message"])
    assert doc["message"].endswith(" [truncated]") and doc["unit"] == "web.service"
    assert len(doc["message"]) > 1000


# --- batches ----------------------------------------------------------------------------------


def test_a_batch_stops_at_10000_events():
    batch = shipper.Batch()
    for i in range(10_000):
        assert batch.add(event(size=1), f"c{i}")
    assert not batch.add(event(size=1), "c-next")
    assert len(batch) == 10_000 and batch.cursor == "c9999"


def test_a_batch_stops_before_1_mib_counting_26_bytes_an_event():
    batch, size = shipper.Batch(), 100_000 - 26
    for i in range(10):
        assert batch.add(event(size=size), f"c{i}")
    assert batch.size == 1_000_000
    assert not batch.add(event(size=48_576 - 25), "too big")  # 1,048,577 with its 26
    assert batch.add(event(size=48_576 - 26), "fits")  # exactly 1,048,576
    assert batch.size == shipper.MAX_BATCH_BYTES and batch.cursor == "fits"


def test_a_batch_spans_at_most_24_hours():
    batch = shipper.Batch()
    assert batch.add(event(T0), "a")
    assert batch.add(event(T0 + shipper.MAX_SPAN_MS), "b")
    assert not batch.add(event(T0 + shipper.MAX_SPAN_MS + 1), "c")


def test_a_clock_going_back_keeps_the_batch_in_time_order():
    batch = shipper.Batch()
    for ms, cursor in [(T0, "a"), (T0 + 500, "b"), (T0 + 100, "c"), (T0 + 900, "d")]:
        assert batch.add(event(ms), cursor)
    assert [e["timestamp"] for e in batch.events] == [T0, T0 + 500, T0 + 500, T0 + 900]
    assert batch.cursor == "d"


def test_a_refused_event_leaves_the_batch_as_it_was():
    batch = shipper.Batch()
    batch.add(event(T0), "a")
    before = (list(batch.events), batch.size, batch.cursor)
    assert not batch.add(event(T0 + shipper.MAX_SPAN_MS + 1), "late")
    assert (batch.events, batch.size, batch.cursor) == before


# --- cursor file ------------------------------------------------------------------------------


def test_the_cursor_round_trips_for_its_instance_only(tmp_path):
    path = tmp_path / "cursor"
    assert shipper.read_cursor(path, "i-0abc") is None
    shipper.write_cursor(path, "i-0abc", "s=1;i=2")
    assert shipper.read_cursor(path, "i-0abc") == "s=1;i=2"
    assert shipper.read_cursor(path, "i-0other") is None  # an image baked from another instance's disk
    shipper.write_cursor(path, "i-0abc", "s=1;i=3")
    assert shipper.read_cursor(path, "i-0abc") == "s=1;i=3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cursor"]  # the temporary file was renamed over it


@pytest.mark.parametrize("content", ["", "{", "[]", '{"instance": "i-0abc"}', '{"instance": "i-0abc", "cursor": 7}'])
def test_a_broken_cursor_file_means_no_cursor(tmp_path, content):
    path = tmp_path / "cursor"
    path.write_text(content)
    assert shipper.read_cursor(path, "i-0abc") is None


# --- the loop, on a journal and CloudWatch of this test's own --------------------------------


class Journal:
    """python-systemd's Reader as the shipper uses it, over a list of entries."""

    def __init__(self, entries):
        self.entries, self.at, self.boot_only = entries, -1, None

    def seek_cursor(self, cursor):
        # The saved entry, or (gone from a volatile journal) the first one: here, the next one after it.
        self.at = next((i for i, e in enumerate(self.entries) if e["__CURSOR"] == cursor), 0) - 1

    def test_cursor(self, cursor):
        return 0 <= self.at < len(self.entries) and self.entries[self.at]["__CURSOR"] == cursor

    def seek_tail(self):
        self.at = len(self.entries)

    def get_previous(self):
        if self.at > 0:
            self.at -= 1
            return self.entries[self.at]
        return {}

    def add_match(self, **match):
        self.boot_only = match["_BOOT_ID"]
        self.entries = [e for e in self.entries if e.get("_BOOT_ID") == self.boot_only]

    def seek_head(self):
        self.at = -1

    def get_next(self):
        if self.at + 1 < len(self.entries):
            self.at += 1
            return self.entries[self.at]
        return {}

    def wait(self, timeout):
        self.shipper.stopping = True  # caught up: end the run


class Logs:
    def __init__(self, fail_first=0):
        self.batches, self.fail_first = [], fail_first

    def create_log_stream(self, **kwargs):
        pass

    def put_log_events(self, logGroupName, logStreamName, logEvents):
        self.batches.append([json.loads(e["message"])["message"] for e in logEvents])
        return {}


def run(entries, cursor_file):
    logs, journal = Logs(), Journal(entries)
    ship = shipper.Shipper(logs, "/rodeo/web/local", "i-0abc", cursor_file)
    journal.shipper = ship
    ship.run(journal)
    return logs, journal


def test_a_restart_sends_each_entry_once(tmp_path):
    earlier = [
        entry(f"build host {i}", us=(T0 - 100 + i) * 1000, cursor=f"b{i}", _BOOT_ID="boot-of-the-bake")
        for i in range(2)
    ]
    entries = [entry(f"line {i}", us=(T0 + i) * 1000, cursor=f"c{i}", _BOOT_ID="this-boot") for i in range(5)]
    cursor = tmp_path / "cursor"
    logs, journal = run(earlier + entries[:3], cursor)
    assert journal.boot_only == "this-boot"  # no cursor: from this boot's start, not the image's older journal
    assert [m for b in logs.batches for m in b] == ["line 0", "line 1", "line 2"]
    logs, journal = run(earlier + entries, cursor)  # started again, two more lines meanwhile
    assert journal.boot_only is None
    assert [m for b in logs.batches for m in b] == ["line 3", "line 4"]
    assert shipper.read_cursor(cursor, "i-0abc") == "c4"


def test_a_saved_entry_that_is_gone_does_not_skip_the_next(tmp_path):
    """A volatile journal lost the saved entry: seek_cursor lands on the next one, which is sent."""
    cursor = tmp_path / "cursor"
    shipper.write_cursor(cursor, "i-0abc", "c-gone")
    journal_entries = [entry("after", cursor="c9")]
    logs, _ = run(journal_entries, cursor)
    assert logs.batches == [["after"]]
