"""Progress lines: plain lines for logs, live lines on a terminal, nothing when silent."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from toolkit.ui import SPINNER, Board, Reporter, Silent


def reporter(live: bool) -> tuple[Reporter, io.StringIO]:
    out = io.StringIO()
    rep = Reporter(live=live)
    rep.console = Console(file=out, force_terminal=live, color_system=None, highlight=False, soft_wrap=True, width=120)
    return rep, out


def untimed(text: str) -> str:
    return re.sub(r"\d+\.\d+s", "Ts", text)


def steps(rep: Reporter) -> None:
    with rep.step("weight 10% on green, 90% on blue") as line:
        line.note("watching for 2s (health, alarms)")
        line.note("watching: 1s left, healthy, no alarm", plain=False)  # a countdown is not worth a log line
        line["result"] = "watched 2s: healthy, no alarm"
    rep.record("render", 0.3, "app.pkr.hcl")
    with pytest.raises(RuntimeError):
        with rep.step("waiting for 2 healthy instance(s) in green"):
            raise RuntimeError("green has 1/2 healthy instance(s)")


def test_plain_lines_for_logs():
    rep, out = reporter(live=False)
    steps(rep)
    assert untimed(out.getvalue()).splitlines() == [
        "→ weight 10% on green, 90% on blue",
        "  watching for 2s (health, alarms)",
        "✓ weight 10% on green, 90% on blue (Ts): watched 2s: healthy, no alarm",
        "✓ render (Ts): app.pkr.hcl",
        "→ waiting for 2 healthy instance(s) in green",
        "✗ waiting for 2 healthy instance(s) in green (Ts): green has 1/2 healthy instance(s)",
    ]


def test_live_lines_end_as_one_line_each():
    rep, out = reporter(live=True)
    steps(rep)
    assert rep._live is None  # nothing left drawing
    printed = re.sub(
        r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue()
    )  # what stays once redrawing is done: the final lines
    final = [untimed(line).split() for line in printed.replace("\r", "\n").splitlines() if line.startswith(("✓", "✗"))]
    assert final == [
        "✓ weight 10% on green, 90% on blue Ts watched 2s: healthy, no alarm".split(),
        "✓ render Ts app.pkr.hcl".split(),
        "✗ waiting for 2 healthy instance(s) in green Ts green has 1/2 healthy instance(s)".split(),
    ]
    assert "→" not in printed


def test_a_running_line_shows_its_latest_note():
    rep, _ = reporter(live=True)
    line = rep.begin("provision")
    line.note("task 3 of 14: Deploy user exists")
    running = untimed(line.render().plain)
    assert running[0] in SPINNER and running[1:].split() == [
        "provision",
        "Ts",
        "task",
        "3",
        "of",
        "14:",
        "Deploy",
        "user",
        "exists",
    ]
    line.done("14 tasks, 10 changed")
    assert untimed(line.render().plain).split() == ["✓", "provision", "Ts", "14", "tasks,", "10", "changed"]


def test_silent_shows_nothing(capsys):
    rep = Silent()
    steps(rep)
    rep.warn("x")
    assert capsys.readouterr() == ("", "")


def test_lines_running_at_once_end_on_their_own():
    rep, out = reporter(live=True)
    outer, inner = rep.begin("outer"), rep.begin("inner")  # two lines alike (no result yet): each is itself
    inner.done()
    assert rep._running == [outer]
    outer.done()
    assert rep._live is None


def two_bakes(rep: Reporter) -> Board:
    """Two runs interleaved on a board, as two images baking at once report."""
    board = Board(rep, ["base", "app"])
    base, app = board.lane("base"), board.lane("app")
    with board:
        app.show("waiting for base", running=False)
        base.show("planning")
        boot = base.begin("boot")
        base.detail("build instance: sandbox sshd on 127.0.0.1:5001")
        boot.done("connected over SSH")
        base.end(True, "baked ami-1 in 3.0s")
        app.show("planning")
        with pytest.raises(RuntimeError):
            with app.step("provision") as line:
                line.note("task 1 of 2: Mark the image")
                raise RuntimeError("task failed")
        app.end(False, "failed: task failed")
    return board


def test_a_board_prefixes_every_plain_line_with_its_run():
    rep, out = reporter(live=False)
    two_bakes(rep)
    assert untimed(out.getvalue()).splitlines() == [
        "[base] → boot",
        "[base]   build instance: sandbox sshd on 127.0.0.1:5001",
        "[base] ✓ boot (Ts): connected over SSH",
        "[base] ✓ baked ami-1 in Ts",
        "[app]  → provision",
        "[app]    task 1 of 2: Mark the image",
        "[app]  ✗ provision (Ts): task failed",
        "[app]  ✗ failed: task failed",
    ]


def test_a_board_draws_one_row_per_run_and_leaves_its_lines():
    rep, out = reporter(live=True)
    board = Board(rep, ["base", "app"])
    base, app = board.lane("base"), board.lane("app")
    app.show("waiting for base", running=False)
    base.show("planning")
    rows = [untimed(r.plain) for r in board._render().renderables]
    assert [r.split()[0] for r in rows] == ["[base]", "[app]"]
    assert rows[0].split()[2:] == ["planning"] and rows[1].split()[1:] == ["·", "waiting", "for", "base"]
    step = base.begin("provision")
    step.note("task 3 of 9: x")
    assert untimed(board._render().renderables[0].plain).split()[:4] == [
        "[base]",
        step.render().plain[0],
        "provision",
        "Ts",
    ]
    step.done()
    base.end(True, "baked ami-1")
    assert [untimed(r.plain).split()[0] for r in board._render().renderables] == [
        "[app]"
    ]  # an ended run leaves the board

    rep, out = reporter(live=True)
    board = two_bakes(rep)
    assert board._live is None
    printed = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())
    final = [
        untimed(line).split()
        for line in printed.replace("\r", "\n").splitlines()
        if line.split()[1:2] in (["✓"], ["✗"])
    ]
    assert final == [  # the rows are redrawn (spinner, "·"); what ends stays, once
        "[base] ✓ boot Ts connected over SSH".split(),
        "[base] ✓ baked ami-1 in Ts".split(),
        "[app] ✗ provision Ts task failed".split(),
        "[app] ✗ failed: task failed".split(),
    ]
    assert printed.count("[base]   build instance: sandbox sshd on 127.0.0.1:5001") == 1
