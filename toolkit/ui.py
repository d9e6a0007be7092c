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

    def __init__(
        self, stderr: bool = False, quiet: bool = False, live: bool | None = None, verbose: bool = False
    ) -> None:
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
            self._print(escape(message))

    def detail(self, message: str) -> None:
        """A dim, indented line (a task, a test, a Packer message)."""
        if not self.quiet:
            self._print(f"  [dim]{escape(message)}[/dim]")

    def ok(self, message: str) -> None:
        """A step that finished well."""
        if not self.quiet:
            self._print(f"[green]✓[/green] {escape(message)}")

    def warn(self, message: str) -> None:
        """Something the user should know even when quiet."""
        self._print(f"[yellow]![/yellow] {escape(message)}")

    def begin(self, label: str, note: str = "") -> "Line":
        """Start a step's line; end it with ``done`` or ``fail``."""
        line = Line(self, label)
        if self.quiet:
            return line
        if self.live:
            self._draw(line)
        else:
            self._print(f"→ {escape(label)}")
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
            self._undraw(line)
            self._print(line.render())  # above the live region if another line still runs
        else:
            icon = "[green]✓[/green]" if line.ok else "[red]✗[/red]"
            summary = f": {escape(line.summary)}" if line.summary else ""
            self._print(f"{icon} {escape(line.label)} ({_took(line.elapsed())}){summary}")

    def _print(self, what: "str | Text") -> None:
        """One line for good: rich markup, or a drawn ``Text``."""
        self.console.print(what)

    def _draw(self, line: "Line") -> None:
        """Show a running line in the live region."""
        self._running.append(line)
        if self._live is None:
            # Transient: a line that ends leaves the live region and is printed for good.
            self._live = _live(self.console, self._render)
            self._live.start()

    def _undraw(self, line: "Line") -> None:
        if line in self._running:
            self._running.remove(line)
        if not self._running:
            self.close()

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
        out = Text.assemble(
            icon,
            " ",
            (self.label.ljust(LABEL_WIDTH), "bold" if self.ok is None else ""),
            " ",
            (_took(self.elapsed()).rjust(6), "dim"),
        )
        if text:
            out.append("  ")
            out.append(text, style="dim" if self.ok is not False else "red")
        out.no_wrap, out.overflow = True, "ellipsis"
        return out


class Board:
    """Several runs at once (bakes of independent images), each reporting on its own ``Lane``.

    On a terminal each run is one live row: its running step's line, or what
    it waits for; everything a lane prints for good is prefixed with its name.
    Elsewhere every line is the plain line a single run prints, prefixed
    (``[app] → provision``), so a CI log can be grepped per run.
    """

    def __init__(self, reporter: Reporter, names: list[str]) -> None:
        self.reporter = reporter
        width = max((len(name) for name in names), default=0) + 2
        self.lanes = {name: Lane(self, name, width) for name in names}
        self._live: Live | None = None

    def lane(self, name: str) -> "Lane":
        return self.lanes[name]

    def __enter__(self) -> "Board":
        if self.reporter.live:
            self._live = _live(self.reporter.console, self._render)
            self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _render(self) -> Group:
        return Group(*(lane.row() for lane in list(self.lanes.values()) if lane.state != "ended"))


class Lane(Reporter):
    """One run of a ``Board``: a Reporter whose lines carry the run's name, and whose running step is its row."""

    def __init__(self, board: Board, name: str, width: int) -> None:
        parent = board.reporter
        self.console, self.quiet, self.verbose, self.live = parent.console, parent.quiet, parent.verbose, parent.live
        self._running: list[Line] = []
        self._live = None
        self.name = name
        self.prefix = f"[{name}]".ljust(width)
        self.current: Line | None = None
        self.state = "waiting"  # then running, then ended
        self.status = "waiting"  # what the row says while no step runs

    def show(self, status: str, running: bool = True) -> None:
        """What the row says between steps ("planning", "waiting for base"); ``running``: the run has started."""
        self.status = status
        if running:
            self.state = "running"

    def end(self, ok: bool | None, summary: str) -> None:
        """The run is over: its last line (if ``summary``), for good (``ok`` None: it never ran)."""
        self.state, self.current = "ended", None
        if summary and not self.quiet:
            icon = "-" if ok is None else "[green]✓[/green]" if ok else "[red]✗[/red]"
            self._print(f"{icon} {escape(summary)}")

    def close(self) -> None:
        """The board draws: a run's end only clears its row's step."""
        self.current = None

    def row(self) -> Text:
        """The run's row on the board."""
        step = self.current
        if step is not None:
            out = Text.assemble((self.prefix, "bold"), " ", step.render())
        else:
            icon = (
                Text(SPINNER[int(time.monotonic() * 10) % len(SPINNER)], style="cyan")
                if self.state == "running"
                else Text("·", style="dim")
            )
            out = Text.assemble((self.prefix, "bold"), " ", icon, " ", (self.status, "dim"))
        out.no_wrap, out.overflow = True, "ellipsis"
        return out

    def _print(self, what: "str | Text") -> None:
        if isinstance(what, Text):
            self.console.print(Text.assemble((self.prefix, "bold"), " ", what))
        else:
            self.console.print(f"[bold]{escape(self.prefix)}[/bold] {what}")

    def _draw(self, line: Line) -> None:
        self.current = line

    def _undraw(self, line: Line) -> None:
        if self.current is line:
            self.current = None


class Silent(Reporter):
    """A reporter that shows nothing (for tests and benchmarks)."""

    def __init__(self) -> None:
        super().__init__(quiet=True)

    def warn(self, message: str) -> None:
        pass


def _live(console: Console, render) -> Live:
    """A live region redrawn from ``render()``; transient: what ends in it is printed for good by its owner."""
    return Live(
        get_renderable=render,
        console=console,
        refresh_per_second=8,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )


def _took(seconds: float) -> str:
    """``4.2s``, or ``3m07s`` past a minute."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    # A reason of several lines (an app's own error lines) is printed whole by the command's error: its first line here.
    first, _, more = message.strip().partition("\n")
    return " ".join(first.split()) + (" …" if more.strip() else "")
