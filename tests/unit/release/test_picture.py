"""A release's picture as tables: the ledger entry and the requests in, the page's data and drawing out (no I/O)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from toolkit.canary.buckets import Bucket
from toolkit.canary.samples import Request, Series
from toolkit.config import Config
from toolkit.release import report, slots
from toolkit.release.picture import Mark, Picture, SlotSeries, data_of, nice, render
from toolkit.release.timeline import Timeline, events_of
from toolkit.ui import Silent

T0 = 1_780_000_000.0  # 2026-05-28T20:26:40Z
ISO = "2026-05-28T20:26:{:06.3f}+00:00"


def iso(seconds: float) -> str:
    return ISO.format(40 + seconds)


def entry(**kw) -> dict:
    """A ledger entry of release v7: green took blue's traffic in 10 s, judged at 50%."""
    timeline = Timeline()
    timeline.weights({"blue": 100, "green": 0}, at=T0)
    timeline.mark("gate", "green: 2 healthy instance(s)", at=T0 + 2)
    timeline.weights({"green": 50, "blue": 50}, at=T0 + 3)
    timeline.weights({"green": 100, "blue": 0}, at=T0 + 8)
    timeline.mark("done", "green holds all traffic", at=T0 + 10)
    base = {
        "number": 7,
        "kind": "release",
        "outcome": "released",
        "to_ami": "ami-new",
        "from_ami": "ami-old",
        "new_slot": "green",
        "old_slot": "blue",
        "config_version": 2,
        "started_at": iso(0),
        "ended_at": iso(10),
        "timeline": timeline.to_list(),
        "analysis": [
            {
                "weight": 50,
                "start": iso(3),
                "end": iso(7),
                "verdict": "pass",
                "decision": "continue",
                "metrics": [{"name": "latency", "verdict": "pass", "reason": "latency +1% (...)"}],
            }
        ],
    }
    return {**base, **kw}


def requests(*ats: float, status: int = 200) -> Series:
    return Series(tuple(Request(T0 + at, status, 0.002) for at in ats))


def test_the_picture_holds_each_slots_buckets_the_weights_and_the_marks_in_time_order():
    found = {"blue": requests(0.5, 1.5, 3.5), "green": requests(3.2, 9.9, 10.0, 10.5)}
    p = report.picture_of("web/production", entry(), found, now=T0 + 3600)
    assert p.title == "web/production v7: release of ami-new (config v2)"
    assert (p.start, p.end, p.width) == (T0, T0 + 10, 1)
    assert [(s.slot, s.role, s.ami, s.requests) for s in p.slots] == [
        ("green", "new", "ami-new", 3),  # 10.5 is after the end
        ("blue", "old", "ami-old", 3),
    ]
    assert [b.requests for b in p.slots[0].buckets] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 2]
    assert p.weights == (
        (T0, {"blue": 100, "green": 0}),
        (T0 + 3, {"green": 50, "blue": 50}),
        (T0 + 8, {"green": 100, "blue": 0}),
    )
    assert [(m.at - T0, m.kind) for m in p.marks] == [
        (0, "weights"),
        (2, "gate"),
        (3, "weights"),
        (7, "judge"),
        (8, "weights"),
        (10, "done"),
    ]
    judged = p.marks[3]
    assert judged.span == (T0 + 3, T0 + 7) and judged.verdict == "pass"
    assert judged.text == "canary analysis at 50%: pass, continue: latency +1% (...)"
    assert p.notes == ()  # an hour after the end: every access log is in


@pytest.mark.parametrize(
    ("case", "changes", "now", "end", "late"),
    [
        ("drawn as the run ends", {}, T0 + 12, T0 + 10, True),
        ("drawn 10 minutes later", {}, T0 + 10 + report.LATE, T0 + 10, False),
        ("still running: drawn up to now", {"ended_at": None, "outcome": "in_progress"}, T0 + 30, T0 + 30, True),
    ],
)
def test_a_picture_drawn_before_the_logs_can_all_be_in_says_so(case, changes, now, end, late):
    p = report.picture_of("web/production", entry(**changes), {}, now=now)
    assert p.end == end, case
    said = [n for n in p.notes if "'invoke releases --report v7'" in n]
    assert bool(said) == late, (case, p.notes)


def test_an_entry_from_before_timelines_has_no_weights_and_no_marks_but_its_verdicts():
    p = report.picture_of("web/local", entry(timeline=None), {}, now=T0 + 3600)
    assert p.weights == () and [m.kind for m in p.marks] == ["judge"]


def test_the_timeline_round_trips_through_the_ledger():
    timeline = Timeline()
    timeline.weights({"green": 10, "blue": 90}, at=T0)
    timeline.mark("failed", "canary analysis at 10%: fail", at=T0 + 1)
    assert timeline.events[0].text == "weights: blue 90%, green 10%"
    assert events_of(timeline.to_list()) == timeline.events
    assert events_of(None) == []


def picture(**kw) -> Picture:
    buckets = (Bucket(T0, 5, 50, 0, 0.002, 0.004), Bucket(T0 + 5, 5, 100, 2, None, None))
    base = dict(
        title='web/local v3: release of <ami> & "x"',
        outcome="v3 released",
        start=T0,
        end=T0 + 10,
        width=5,
        slots=(SlotSeries("green", "new", "ami-new", buckets), SlotSeries("blue", "old", "ami-old", ())),
        weights=((T0, {"green": 0, "blue": 100}), (T0 + 5, {"green": 100, "blue": 0})),
        marks=(
            Mark(T0 + 5, "weights", "weights: green 100%"),
            Mark(T0 + 9, "judge", "fail <b>", "fail", (T0 + 5, T0 + 9)),
        ),
        notes=("logs late",),
        rendered_at=T0 + 20,
    )
    return Picture(**{**base, **kw})


def test_the_page_draws_four_charts_with_nothing_to_fetch_and_no_script_to_run():
    page = render(picture())
    assert page.count("<svg ") == 4
    assert not re.search(r"(src|href)=|<link|@import|url\(|https?://", page), "the page fetches something"
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts == ['<script type="application/json" id="rodeo-release">']
    assert "<ami>" not in page and "&lt;ami&gt; &amp; &quot;x&quot;" in page  # every text escaped
    assert "fail &lt;b&gt;" in page and "logs late" in page


def test_the_page_carries_its_data():
    p = picture(title="a </script> in a title")
    page = render(p)
    assert data_of(page) == json.loads(json.dumps(p.to_dict()))
    assert [b["requests"] for b in data_of(page)["slots"][0]["buckets"]] == [50, 100]
    assert data_of(page)["title"] == "a </script> in a title" and "a </script> in" not in page


def test_the_lines_are_where_the_values_put_them():
    """The plot spans x 64 to 932 (868 px for 10 s) and y 128 (0) to 20 (the top of the scale)."""
    page = render(picture())
    lines = re.findall(r'<polyline class="green"[^>]*points="([^"]*)"', page)
    # Requests/s: 10/s and 20/s at the buckets' middles (+2.5 s, +7.5 s), on a 0-20 scale.
    assert "281.0,74.0 715.0,20.0" in lines
    # The weights: a step from 0 to 100 at +5 s, held to the end.
    assert "64.0,128.0 498.0,128.0 498.0,20.0 932.0,20.0" in lines
    # The p50 (2 ms on a 0-5 scale) breaks where a bucket has no answered request: a lone point is a dot.
    assert '<circle class="green" cx="281.0" cy="84.8" r="2"' in page
    # 5xx: one bar, in the second bucket, on a 0-2 scale, half the bucket wide (two slots share it).
    assert '<rect class="green" x="498.0" y="20.0" width="217.0" height="108.0"' in page
    # The judged window (+5 to +9 s) is shaded; each mark is numbered on the first chart, on one of three rows.
    assert '<rect x="498.0" y="20" width="347.2" height="108" fill="#d62728" fill-opacity="0.07"/>' in page
    assert '<text x="847.2" y="41" style="fill:#d62728">2</text>' in page
    assert page.count('style="fill:#d62728">2</text>') == 1


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 1), (0.3, 0.5), (1, 1), (1.01, 2), (7, 10), (12, 20), (100, 100), (101, 200)]
)
def test_nice(value, expected):
    assert nice(value) == pytest.approx(expected)


def test_latest_is_the_highest_numbered_page(tmp_path):
    cfg = Config(app="web", region="us-east-1", images={}, env="local")
    assert report.latest(cfg, tmp_path) is None and report.latest(cfg, None) is None
    where = report.folder(tmp_path, cfg)
    where.mkdir(parents=True)
    for name in ("v2.html", "v10.html", "vx.html", "v11.html.partial"):
        (where / name).write_text("")
    assert report.latest(cfg, tmp_path) == str(where / "v10.html")


class LogsOff:
    """An environment whose load balancer writes no access logs (``broken``: whose every call fails)."""

    def __init__(self, state_dir, broken: bool = False) -> None:
        self.state_dir, self.broken = state_dir, broken

    def client(self, service: str):
        if self.broken:
            raise RuntimeError("the network is down")
        return self

    def describe_load_balancer_attributes(self, LoadBalancerArn: str) -> dict:
        return {"Attributes": [{"Key": "access_logs.s3.enabled", "Value": "false"}]}


ENV = slots.Env(
    listener_arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/0123/4567",
    target_groups={"blue": "arn:tg/blue", "green": "arn:tg/green"},
    groups={},
    template="rodeo-web",
)
CFG = Config(app="web", region="us-east-1", images={}, env="production")


def test_a_page_without_access_logs_draws_the_weights_and_says_why(tmp_path):
    written = report.write(CFG, LogsOff(tmp_path), ENV, entry(), now=T0 + 3600)
    assert written.path == str(tmp_path / "releases/web/production/v7.html")
    assert written.requests == {"green": 0, "blue": 0} and "access logs are off" in written.notes[0]
    data = data_of(Path(written.path).read_text())
    assert len(data["weights"]) == 3 and data["notes"] == list(written.notes)
    assert sorted(p.name for p in (tmp_path / "releases/web/production").iterdir()) == ["v7.html"]  # no partial left


def test_a_page_that_cannot_be_drawn_is_a_warning_and_without_a_state_folder_none_is_drawn(tmp_path):
    warned = []
    reporter = Silent()
    reporter.warn = warned.append
    assert report.draw(CFG, LogsOff(tmp_path, broken=True), ENV, entry(), reporter) is None
    assert warned == [
        "the release's picture was not drawn: the network is down; 'invoke releases --report v7' tries again"
    ]
    assert report.draw(CFG, LogsOff(None), ENV, entry(), reporter) is None and len(warned) == 1
