"""Progress a person can watch: one line per step, with the time it took.

Toolkit functions take a ``Reporter`` and call it; they never print. In
``--json`` mode the reporter writes to stderr so the last line of stdout stays
the JSON result.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

from rich.console import Console
from rich.markup import escape


class Reporter:
    """Writes progress lines; ``quiet`` drops everything but warnings."""

    def __init__(self, stderr: bool = False, quiet: bool = False) -> None:
        self.console = Console(stderr=stderr, highlight=False, soft_wrap=True)
        self.quiet = quiet

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

    @contextlib.contextmanager
    def step(self, message: str) -> Iterator[dict]:
        """Announce a step, time it, and report how long it took.

        The yielded dict may get a ``"result"`` string to show at the end.
        """
        self.info(f"→ {message}")
        started = time.monotonic()
        box: dict = {}
        yield box
        took = time.monotonic() - started
        self.ok(f"{box.get('result', message)} ({took:.1f}s)")


class Silent(Reporter):
    """A reporter that shows nothing (for tests and benchmarks)."""

    def __init__(self) -> None:
        super().__init__(quiet=True)

    def warn(self, message: str) -> None:
        pass
