"""The live stack's clock for what AWS does by the calendar: this machine's clock plus an offset a test may move.

Scheduled actions fire at times of day ("night" at 22:00 in Berlin); a test
cannot wait for the night, so the stack reads those times from this clock,
and ``set_to`` makes it any time at once. The offset is a file in the live
stack's folder (``OFFSET_FILE``, seconds as text), read at every tick; no
file is an offset of 0. Only what AWS does by the calendar reads it (the
scheduled actions, ``toolkit.local.scaler``): health checks, drains,
metrics and alarms keep this machine's clock, so moving it never makes an
instance healthy or a drain shorter. Moving it forward is time passing:
every action whose time it passes fires, as on AWS after that much time;
moving it back fires nothing until it reaches times not yet seen.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import datetime, timezone
from pathlib import Path

OFFSET_FILE = "clock-offset"


def offset(live_dir: Path) -> float:
    """Seconds the stack's clock runs ahead of this machine's (0 with no file, or one that does not hold a number)."""
    with contextlib.suppress(OSError, ValueError):
        return float((live_dir / OFFSET_FILE).read_text())
    return 0.0


def now(live_dir: Path, wall: float | None = None) -> datetime:
    """The stack's time (aware, UTC): this machine's (``wall``, default ``time.time()``) plus the offset."""
    seconds = (time.time() if wall is None else wall) + offset(live_dir)
    return datetime.fromtimestamp(seconds, timezone.utc)


def set_to(live_dir: Path, when: datetime) -> float:
    """Make the stack's clock read ``when`` (aware) now; the new offset in seconds."""
    if when.tzinfo is None:
        raise ValueError(f"{when!r} has no time zone: say which (the stack's clock is UTC)")
    seconds = when.timestamp() - time.time()
    tmp = live_dir / f".{OFFSET_FILE}.{os.getpid()}"
    tmp.write_text(f"{seconds:.6f}\n")
    tmp.replace(live_dir / OFFSET_FILE)  # the stack never reads half a number
    return seconds


def reset(live_dir: Path) -> None:
    """Back to this machine's clock."""
    with contextlib.suppress(FileNotFoundError):
        (live_dir / OFFSET_FILE).unlink()
