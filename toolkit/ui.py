"""Progress a person can watch: one line per step, with the time it took.

Toolkit functions take a ``Reporter`` and call it; they never print. On a
terminal a running step is one live line (a spinner, its elapsed time and its
latest note), redrawn in place and left as a ``✓`` or ``✗`` line when it ends.
When stdout is not a terminal, or in ``--json`` mode, every event is one plain
line instead, for CI logs; in ``--json`` mode they go to stderr so the last
line of stdout stays the JSON result.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.text import Text

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
LABEL_WIDTH = 10  # bake phases line up; longer labels (release steps) simply run on


class Reporter:
    """Writes progress lines; ``quiet`` drops everything but warnings.

    ``live`` (default: stdout is a terminal, not TERM=dumb, and not ``stderr``
    mode) draws steps in place; ``verbose`` asks callers to show their tools'
    own output too.
    """

    def __init__(self, stderr: bool = False, quiet: bool = False, live: bool | None = None, verbose: bool = False) -> None:
        self.console = Console(stderr=stderr, highlight=False, soft_wrap=True)
        self.quiet = quiet
        self.verbose = verbose
        terminal = self.console.is_terminal and not self.console.is_dumb_terminal and not stderr
        self.live = not quiet and (terminal if live is None else live)
        self._running: list[Line] = []
        self._live: Live | None = None

    def info(self, message: str) -> None:
        """A plain progress line."""
        if not self.quiet:
            self.console.print(escape(message))

    def detail(self, message: str) -> None:
        """A dim, indented line (a task, a test, a Packer message)."""
        if not self.quiet:
            self.console.print(f"  [dim]{escape(message)}[/dim]")

    def ok(self, message: str) -> None:
        """A step that finished well."""
        if not self.quiet:
            self.console.print(f"[green]✓[/green] {escape(message)}")

    def warn(self, message: str) -> None:
        """Something the user should know even when quiet."""
        self.console.print(f"[yellow]![/yellow] {escape(message)}")

    def begin(self, label: str, note: str = "") -> "Line":
        """Start a step's line; end it with ``done`` or ``fail``."""
        line = Line(self, label)
        if self.quiet:
            return line
        if self.live:
            self._running.append(line)
            if self._live is None:
                # Transient: a line that ends leaves the live region and is printed for good.
                self._live = Live(get_renderable=self._render, console=self.console, refresh_per_second=8, transient=True,
                                  redirect_stdout=False, redirect_stderr=False)
                self._live.start()
        else:
            self.console.print(f"→ {escape(label)}")
        if note:
            line.note(note)
        return line

    def record(self, label: str, seconds: float, summary: str = "") -> None:
        """A step that already ran, timed by the caller: only its ending line."""
        line = Line(self, label)
        line.started -= seconds
        line.done(summary or None)

    @contextlib.contextmanager
    def step(self, message: str) -> Iterator["Line"]:
        """Announce a step, time it, and report how long it took.

        The yielded line may get a ``"result"`` string to show at the end, and
        ``note()``s while it runs; an exception marks it failed.
        """
        line = self.begin(message)
        try:
            yield line
        except BaseException as exc:
            line.fail(_reason(exc))
            raise
        line.done(line.get("result"))

    def close(self) -> None:
        """Stop drawing; a line still running disappears (end it first)."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._running.clear()

    def _ended(self, line: "Line") -> None:
        if self.live:
            if line in self._running:
                self._running.remove(line)
            if not self._running:
                self.close()
            self.console.print(line.render())  # above the live region if another line still runs
        else:
            icon = "[green]✓[/green]" if line.ok else "[red]✗[/red]"
            summary = f": {escape(line.summary)}" if line.summary else ""
            self.console.print(f"{icon} {escape(line.label)} ({_took(line.elapsed())}){summary}")

    def _render(self) -> Group:
        return Group(*(line.render() for line in self._running))


class Line(dict):
    """One step's line. Set ``line["result"]`` (``step``) or pass a summary to ``done``."""

    __eq__ = object.__eq__  # a line is itself, not any line holding the same result
    __hash__ = object.__hash__

    def __init__(self, reporter: Reporter, label: str) -> None:
        super().__init__()
        self.reporter, self.label = reporter, label
        self.text = ""
        self.summary = ""
        self.ok: bool | None = None  # None while running
        self.started = time.monotonic()
        self.ended: float | None = None

    def note(self, text: str, plain: bool = True) -> None:
        """The step's latest news: redrawn in place on a terminal; a plain line elsewhere unless ``plain`` is False."""
        self.text = text
        if plain and not self.reporter.live and not self.reporter.quiet and self.ok is None:
            self.reporter.detail(text)

    def done(self, summary: str | None = None) -> None:
        """The step ended well."""
        self._end(True, summary)

    def fail(self, summary: str | None = None) -> None:
        """The step ended badly."""
        self._end(False, summary)

    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def _end(self, ok: bool, summary: str | None) -> None:
        if self.ok is not None:
            return
        self.ok, self.ended = ok, time.monotonic()
        self.summary = summary if summary is not None else (self.text if not ok else "")
        if not self.reporter.quiet:
            self.reporter._ended(self)

    def render(self) -> Text:
        """The line as drawn on a terminal."""
        if self.ok is None:
            icon = Text(SPINNER[int(time.monotonic() * 10) % len(SPINNER)], style="cyan")
            text = self.text
        else:
            icon = Text("✓", style="green") if self.ok else Text("✗", style="red")
            text = self.summary
        out = Text.assemble(icon, " ", (self.label.ljust(LABEL_WIDTH), "bold" if self.ok is None else ""), " ",
                            (_took(self.elapsed()).rjust(6), "dim"))
        if text:
            out.append("  ")
            out.append(text, style="dim" if self.ok is not False else "red")
        out.no_wrap, out.overflow = True, "ellipsis"
        return out


class Silent(Reporter):
    """A reporter that shows nothing (for tests and benchmarks)."""

    def __init__(self) -> None:
        super().__init__(quiet=True)

    def warn(self, message: str) -> None:
        pass


def _took(seconds: float) -> str:
    """``4.2s``, or ``3m07s`` past a minute."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(message.split())
