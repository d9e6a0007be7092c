"""A bake's progress: the events its steps print, and the lines a person sees.

The steps (provision, image tests, seal) run here, but their output reaches
Rodeo through Packer (its ``shell-local`` provisioner relays it,
``toolkit.bake.handoff``), so their only way back is their stdout. A step
prints an event as one line, ``PREFIX`` + JSON; ``toolkit.packer.run``
finds those lines in Packer's stream, turns Packer's
own messages into phase changes, and hands every event to ``Progress``,
which draws one line per phase on the ``Reporter``. Everything else Packer
says goes to the bake's ``packer.log`` (and to the screen with ``--verbose``).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:  # the steps import this module: no rich for them
    from toolkit.ui import Line, Reporter

PREFIX = "@rodeo "


@dataclass(frozen=True)
class Phase:
    """A phase began: render, boot, provision, verify, seal, snapshot, copy."""

    name: str


@dataclass(frozen=True)
class Note:
    """News about the running phase from Packer ("waiting for SSH"): shown in place, never a plain line."""

    text: str
    final: bool = False  # also the phase's summary when it ends ("connected over SSH")


@dataclass(frozen=True)
class Task:
    """An Ansible task started: the n-th of ``total`` (``approx``: the playbook includes tasks dynamically)."""

    n: int
    name: str
    total: int | None = None
    approx: bool = False


@dataclass(frozen=True)
class ImageTest:
    """An image test ended; the counts so far."""

    name: str
    outcome: str  # passed, failed, skipped
    passed: int
    failed: int
    total: int | None = None


@dataclass(frozen=True)
class Done:
    """A step ended well; ``summary`` is what it did."""

    phase: str
    summary: str


@dataclass(frozen=True)
class Failed:
    """A step failed; the reason (``failure.json`` holds it too)."""

    phase: str
    message: str
    hint: str = ""


@dataclass(frozen=True)
class Output:
    """A line of Packer's log that is not an event: kept in packer.log, shown only with ``--verbose``."""

    text: str


@dataclass(frozen=True)
class Ended:
    """Packer ended; when it failed, ``lines`` are the ones that say why."""

    ok: bool
    lines: tuple[str, ...] = ()


Event = Union[Phase, Note, Task, ImageTest, Done, Failed, Output, Ended]
KINDS: dict[str, type] = {
    "phase": Phase,
    "task": Task,
    "test": ImageTest,
    "done": Done,
    "failed": Failed,
}  # what steps print
_NAMES = {cls: name for name, cls in KINDS.items()}
_ESCAPES = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}  # JSON's short escapes


def encode(event: Any) -> str:
    """One line for ``event``: ``PREFIX`` and JSON that survives Packer's machine-readable stream.

    Packer turns a newline into the two characters ``\\n`` and keeps a
    backslash as it is, so every JSON escape that starts with a backslash
    is written as ``\\uXXXX`` (a backslash itself as ``\\u005c``).
    """
    text = json.dumps(
        {"event": _NAMES[type(event)], **dataclasses.asdict(event)}, ensure_ascii=True, separators=(",", ":")
    )
    return PREFIX + re.sub(r'\\(["\\/bfnrt])', lambda m: "\\u%04x" % ord(_ESCAPES[m.group(1)]), text)


def parse(text: str) -> Event | None:
    """The event a step printed in ``text``, or None when it is not one (or not one this version knows)."""
    text = text.strip()
    if not text.startswith(PREFIX):
        return None
    try:
        data = json.loads(text[len(PREFIX) :])
        cls = KINDS[data.pop("event")]
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def emit(event: Any, out=None) -> None:
    """Print ``event`` for Rodeo (a step's stdout reaches it through Packer)."""
    print(encode(event), file=out or sys.stdout, flush=True)


def task_text(event: Task) -> str:
    """``task 3 of 14: Name`` (``of ~14`` when approximate; no total once it is passed)."""
    total = ""
    if event.total and event.n <= event.total:
        total = f" of {'~' if event.approx else ''}{event.total}"
    return f"task {event.n}{total}: {event.name}"


def image_test_text(event: ImageTest) -> str:
    """``3 of 10 passed`` (and the failures so far), then the test that just ended (and how, unless it passed)."""
    of = f" of {event.total}" if event.total else ""
    failed = f", {event.failed} failed" if event.failed else ""
    how = "" if event.outcome == "passed" else f" {event.outcome}"
    return f"{event.passed}{of} passed{failed}; {event.name}{how}"


class Progress:
    """Shows a bake's events on a ``Reporter``: one line per phase, its latest news, its time.

    Call it with each event; ``begin`` starts a phase from Rodeo's side
    (render, the build host's boot). ``close`` ends whatever still runs.
    """

    def __init__(self, reporter: "Reporter") -> None:
        self.reporter = reporter
        self.phase: str | None = None
        self.line: Line | None = None
        self.summary = ""

    def begin(self, phase: str) -> None:
        """End the running phase well and start ``phase``'s line (nothing when it already runs)."""
        if phase == self.phase:
            return
        self._end_phase()
        self.phase, self.summary = phase, ""
        self.line = self.reporter.begin(phase) if phase else None

    def __call__(self, event: Event) -> None:
        if isinstance(event, Phase):
            self.begin(event.name)
        elif isinstance(event, Output):
            if self.reporter.verbose:
                self.reporter.detail(event.text)
        elif self.line is None:
            return
        elif isinstance(event, Note):
            self.line.note(event.text, plain=False)
            if event.final:
                self.summary = event.text
        elif isinstance(event, Task):
            self.line.note(task_text(event))
        elif isinstance(event, ImageTest):
            self.line.note(image_test_text(event))
        elif isinstance(event, Done):
            self.summary = event.summary
        elif isinstance(event, Ended):
            if event.ok:
                self.begin("")
            else:
                self.fail(event.lines)

    def record(self, phase: str, seconds: float, summary: str = "") -> None:
        """A phase that already ran, timed by the caller (render, before the cache look-up)."""
        self.begin("")
        self.reporter.record(phase, seconds, summary)

    def fail(self, lines: tuple[str, ...] = (), why: str | None = None) -> None:
        """Mark the running phase failed and show the lines that say why under it."""
        if self.line is not None:
            self.line.fail(why)
        self.line, self.phase = None, None
        for text in lines:
            self.reporter.detail(f"  {text}")

    def close(self, error: BaseException | None = None) -> None:
        """End the running phase (failed, saying why, after ``error``) and stop drawing."""
        if error is None:
            self.begin("")
        elif self.line is not None:
            self.fail(why="interrupted" if isinstance(error, KeyboardInterrupt) else _reason(error))
        self.reporter.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, kind, error, trace) -> None:
        self.close(error)

    def _end_phase(self) -> None:
        if self.line is not None:
            self.line.done(self.summary or None)


def _reason(error: BaseException) -> str:
    return " ".join((getattr(error, "message", None) or str(error) or type(error).__name__).split())
