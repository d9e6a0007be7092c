"""Bake progress events: the line a step prints, what Rodeo reads back through Packer, what a person sees."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from toolkit import progress
from toolkit.packer import run
from toolkit.progress import Done, Ended, Failed, ImageTest, Note, Output, Phase, Progress, Task
from toolkit.ui import Reporter


def through_packer(line: str, source: str = "amazon-ebs.app") -> str:
    """What a step's stdout line looks like in Packer's -machine-readable stream, read back as run.py reads it."""
    data = f"    {source}: {line}".replace(",", "%!(PACKER_COMMA)").replace("\r", "\\r").replace("\n", "\\n")
    kind, text = run.parse_line(f"1795795030,,ui,message,{data}\n")
    assert kind == "message"
    return run.SOURCE.sub("", text)


@pytest.mark.parametrize(
    "event",
    [
        Phase("provision"),
        Task(3, "App user exists, without a login shell", 14),
        Task(1, 'Quote " and backslash \\ and \\n literally', None, approx=True),
        Task(2, "Line one\nline two\r\tend", 2),
        Task(4, "Unicode: naïve café ✓", 9),
        ImageTest("test_health_answers", "passed", 5, 0, 6),
        ImageTest("test_x[a,b]", "failed", 2, 1, None),
        Done("seal", "no secret or bake key found (0 secret(s) scanned); bake key and host keys removed"),
        Failed(
            "provision",
            "Ansible task 'x' failed on localhost (delegated from build-host): rc 3: a | b",
            "fix playbooks/roles/r/tasks/main.yml:2",
        ),
    ],
)
def test_an_event_survives_packers_stream(event):
    line = progress.encode(event)
    assert "\n" not in line and "\\n" not in line and "\\r" not in line  # Packer would split or mangle those
    assert progress.parse(through_packer(line)) == event


@pytest.mark.parametrize(
    "text,expected",
    [
        ("TASK [x]", None),
        ("", None),
        ("@rodeo not json", None),
        ('@rodeo {"event":"nope","x":1}', None),  # a kind this version does not know
        ('@rodeo {"name":"provision"}', None),
        ('@rodeo {"event":"task","n":"x"}', None),  # fields missing
        ('@rodeo {"event":"phase","name":"seal","later":true}', Phase("seal")),  # a field this version does not know
        ('   @rodeo {"event":"done","phase":"verify","summary":"6 tests passed"}  ', Done("verify", "6 tests passed")),
    ],
)
def test_parse(text, expected):
    assert progress.parse(text) == expected


@pytest.mark.parametrize(
    "event,expected",
    [
        (Task(3, "Deploy user exists", 14), "task 3 of 14: Deploy user exists"),
        (Task(3, "Deploy user exists", 14, approx=True), "task 3 of ~14: Deploy user exists"),
        (Task(15, "One more", 14, approx=True), "task 15: One more"),  # past an approximate count: no total
        (Task(1, "First", None), "task 1: First"),
        (ImageTest("test_unit_file", "passed", 3, 0, 6), "3 of 6 passed; test_unit_file"),
        (ImageTest("test_health", "failed", 3, 1, 6), "3 of 6 passed, 1 failed; test_health failed"),
        (ImageTest("test_later", "skipped", 3, 1, None), "3 passed, 1 failed; test_later skipped"),
    ],
)
def test_what_a_line_says(event, expected):
    text = progress.task_text(event) if isinstance(event, Task) else progress.image_test_text(event)
    assert text == expected


def plain_reporter(verbose: bool = False) -> tuple[Reporter, io.StringIO]:
    out = io.StringIO()
    reporter = Reporter(live=False, verbose=verbose)
    reporter.console = Console(file=out, highlight=False, soft_wrap=True, color_system=None)
    return reporter, out


def shown(events, verbose: bool = False) -> list[str]:
    reporter, out = plain_reporter(verbose)
    with Progress(reporter) as show:
        show.record("render", 0.25, "app.pkr.hcl")
        show.begin("boot")
        for event in events:
            show(event)
    return [_untimed(line) for line in out.getvalue().splitlines()]


def _untimed(line: str) -> str:
    import re

    return re.sub(r"\(\d+\.\d+s\)", "(Ts)", line)


def test_plain_lines_one_per_event():
    events = [
        Output("==> amazon-ebs.app: Launching a source AWS instance..."),
        Phase("boot"),
        Note("waiting for SSH"),
        Note("connected over SSH", final=True),
        Phase("provision"),
        Task(1, "App group exists", 2),
        Task(2, "App user exists", 2),
        Output("    amazon-ebs.app: PLAY RECAP ok=2 changed=1"),
        Done("provision", "2 tasks, 1 changed"),
        Phase("verify"),
        ImageTest("test_a", "passed", 1, 0, 1),
        Done("verify", "1 tests passed"),
        Phase("snapshot"),
        Note("waiting for the AMI"),
        Phase("copy"),
        Note("to us-east-1", final=True),
        Ended(True),
    ]
    assert shown(events) == [
        "✓ render (Ts): app.pkr.hcl",
        "→ boot",
        "✓ boot (Ts): connected over SSH",  # Packer's notes are not lines of their own
        "→ provision",
        "  task 1 of 2: App group exists",
        "  task 2 of 2: App user exists",
        "✓ provision (Ts): 2 tasks, 1 changed",
        "→ verify",
        "  1 of 1 passed; test_a",
        "✓ verify (Ts): 1 tests passed",
        "→ snapshot",
        "✓ snapshot (Ts)",
        "→ copy",
        "✓ copy (Ts): to us-east-1",
    ]


def test_verbose_shows_packers_own_lines():
    lines = shown([Output("==> amazon-ebs.app: Launching a source AWS instance..."), Phase("provision")], verbose=True)
    assert "  ==> amazon-ebs.app: Launching a source AWS instance..." in lines


def test_a_failure_marks_its_phase_and_shows_why_under_it():
    events = [
        Phase("provision"),
        Task(1, "Deliberately failing step", 15),
        Ended(
            False,
            (
                "FAILED: 'Deliberately failing step' on build-host at playbooks/roles/base/tasks/main.yml:2",
                "  stderr: one",
            ),
        ),
    ]
    assert shown(events)[-4:] == [
        "  task 1 of 15: Deliberately failing step",
        "✗ provision (Ts): task 1 of 15: Deliberately failing step",
        "    FAILED: 'Deliberately failing step' on build-host at playbooks/roles/base/tasks/main.yml:2",
        "      stderr: one",
    ]


def test_an_interrupt_or_error_outside_packer_fails_the_running_phase():
    reporter, out = plain_reporter()
    with pytest.raises(KeyboardInterrupt):
        with Progress(reporter) as show:
            show.begin("boot")
            raise KeyboardInterrupt
    assert _untimed(out.getvalue().splitlines()[-1]) == "✗ boot (Ts): interrupted"
