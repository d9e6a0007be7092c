"""A release's canary analysis at one step, with fake data: judged, waited for, recorded, rolled back (no AWS)."""

from __future__ import annotations

import dataclasses

import pytest

from tests.unit.test_config import GOOD, project
from toolkit import config as config_mod
from toolkit.canary.samples import Request, Series
from toolkit.release import judging, ledger, slots
from toolkit.release.planner import SlotState, State, plan

LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/0123456789abcdef/fedcba9876543210"
ENV = slots.Env(
    LISTENER, {"blue": "arn:tg/blue", "green": "arn:tg/green"}, {"blue": "web-blue", "green": "web-green"}, "t"
)


def requests(n: int, seconds: float) -> Series:
    return Series(tuple(Request(float(i), 200, seconds) for i in range(n)))


class Source:
    """Answers each read with the next of ``answers`` (per slot), the last one for ever."""

    def __init__(self, *answers: dict[str, Series]) -> None:
        self.answers, self.reads = list(answers), 0

    def read(self, target_groups, start, end):
        self.reads += 1
        return self.answers[min(self.reads, len(self.answers)) - 1]


@pytest.fixture
def cfg(tmp_path):
    text = GOOD + "  steps: [10, 50, 100]\n  analysis: {enabled: true, metrics: [latency], wait_seconds: 30}\n"
    return config_mod.load("dev", project(tmp_path, text))


@pytest.fixture
def recorded(monkeypatch):
    """The ledger's updates, kept here instead of in DynamoDB."""
    found: list[dict] = []

    def update(config, aws, entry, **changes):
        found.append(changes)
        return dict(entry, **changes)

    monkeypatch.setattr(ledger, "update", update)
    return found


def the_plan(cfg):
    state = State(SlotState("blue", weight=100, desired=2, instances=2, healthy=2, ami="ami-1"), SlotState("green"))
    return plan(state, cfg.release, "ami-2")


class Line(dict):
    def note(self, text: str, plain: bool = True) -> None:
        self["note"] = text


def test_load_balancer_of_a_listener():
    assert judging.load_balancer_arn(LISTENER) == (
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0123456789abcdef"
    )


def test_a_slower_canary_rolls_back_with_its_figures(cfg, monkeypatch, recorded):
    source = Source({"blue": requests(100, 0.010), "green": requests(100, 0.060)})
    monkeypatch.setattr(judging.sources, "sources", lambda *args: [source])
    p = the_plan(cfg)
    with pytest.raises(judging.JudgeFailed) as failed:
        judging.step(cfg, None, ENV, p, p.steps[1], 0.0, {"id": "r"}, Line(), lambda s: None)
    assert str(failed.value).startswith("canary analysis at 50%: fail: latency +500% (median 60 ms vs 10 ms")
    (judged,) = recorded[-1]["analysis"]
    assert (judged["weight"], judged["baseline"], judged["canary"], judged["decision"]) == (
        50,
        "blue",
        "green",
        "rollback",
    )
    assert failed.value.entry["analysis"] == [judged] and failed.value.record == judged
    assert judging.details(failed.value) == {"analysis": judged} and judging.details(ValueError()) == {}


def test_too_little_data_waits_watching_the_gates_then_judges_again(cfg, monkeypatch, recorded):
    source = Source(
        {"blue": requests(10, 0.010), "green": requests(10, 0.010)},
        {"blue": requests(60, 0.010), "green": requests(60, 0.010)},
    )
    monkeypatch.setattr(judging.sources, "sources", lambda *args: [source])
    monkeypatch.setattr(judging, "JUDGE_INTERVAL", 0.0)
    waits: list[float] = []
    p = the_plan(cfg)
    line = Line(result="watched 20s: healthy, no alarm")
    entry = judging.step(cfg, None, ENV, p, p.steps[0], 0.0, {"id": "r"}, line, waits.append)
    assert waits == [0.0] and source.reads == 2 and line["note"].startswith("canary analysis: not enough data: waiting")
    assert line["result"] == "watched 20s: healthy, no alarm; canary analysis pass"
    assert [a["verdict"] for a in entry["analysis"]] == ["pass"]


def test_too_little_data_after_the_wait_goes_on_by_the_rule(cfg, monkeypatch, recorded):
    quick = dataclasses.replace(
        cfg,
        release=dataclasses.replace(cfg.release, analysis=dataclasses.replace(cfg.release.analysis, wait_seconds=0)),
    )
    source = Source({"blue": requests(10, 0.010), "green": requests(10, 0.090)})
    monkeypatch.setattr(judging.sources, "sources", lambda *args: [source])
    p = the_plan(quick)
    line = Line()
    entry = judging.step(quick, None, ENV, p, p.steps[0], 0.0, {"id": "r"}, line, lambda s: None)
    (judged,) = entry["analysis"]
    assert (judged["verdict"], judged["decision"]) == ("insufficient", "continue")
    assert line["result"] == "canary analysis insufficient, continue"


def test_the_last_step_and_rollbacks_are_not_judged(cfg, monkeypatch, recorded):
    monkeypatch.setattr(judging.sources, "sources", lambda *args: pytest.fail("read data"))
    p = the_plan(cfg)
    assert judging.step(cfg, None, ENV, p, p.steps[-1], 0.0, {"id": "r"}, Line(), lambda s: None) == {"id": "r"}
    back = dataclasses.replace(p, kind="rollback")
    assert judging.step(cfg, None, ENV, back, back.steps[0], 0.0, {"id": "r"}, Line(), lambda s: None) == {"id": "r"}
    assert recorded == []


def test_the_plan_says_which_steps_are_judged(cfg):
    (line,) = judging.describe(cfg, the_plan(cfg))
    assert line.startswith(
        "canary analysis after the watch at 10%, 50%: latency of green against blue at 98% confidence"
    )
    assert line.endswith("not enough data: continue after waiting up to 30s")
    off = dataclasses.replace(cfg, release=dataclasses.replace(cfg.release, analysis=config_mod.Analysis()))
    assert judging.describe(off, the_plan(off)) == []
