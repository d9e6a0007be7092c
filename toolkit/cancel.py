"""A run's stop switch, for bakes running in threads.

Only Python's main thread ever sees Ctrl-C (or the SIGTERM that ``tasks.py``
turns into it). When several bakes run at once (``toolkit.bake.parallel``),
the main thread sets a ``Cancel``, and each bake in its own thread stops:
its running Packer is told as a single bake's would be (``on_set``: SIGINT
to Packer's process group, from ``toolkit.packer.run``), and a bake between
steps stops at its next ``check``. Each then unwinds through its own clean-up
(build host, key pair, lock) in its own thread.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator


class Cancel:
    """Once set, stays set; every bake of the run sees it."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], None]] = {}

    def set(self) -> None:
        """Stop the run: call every registered callback.

        Calling it again calls them again (they must not mind): a second
        Ctrl-C that cut the first call short still reaches every bake.
        """
        with self._lock:
            self._event.set()
            callbacks = list(self._callbacks.values())
        for callback in callbacks:
            callback()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking when the run is stopped; True when it was."""
        return self._event.wait(seconds)

    def check(self) -> None:
        """Raise KeyboardInterrupt (as Ctrl-C would in a single bake) when the run was stopped."""
        if self._event.is_set():
            raise KeyboardInterrupt("interrupted")

    @contextlib.contextmanager
    def on_set(self, callback: Callable[[], None]) -> Iterator[None]:
        """Call ``callback`` when the run is stopped while this block runs (at once if it already was)."""
        key = id(callback)
        with self._lock:
            already = self._event.is_set()
            if not already:
                self._callbacks[key] = callback
        if already:
            callback()
        try:
            yield
        finally:
            with self._lock:
                self._callbacks.pop(key, None)
